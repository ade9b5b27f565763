package openai

import (
	"strconv"
	"unicode/utf8"

	json "github.com/go-json-experiment/json/v1"
)

// AppendChunk appends the JSON encoding of c to dst without reflection,
// byte for byte what json.Marshal(c) returns: the struct tags' field order
// and omitempty rules, encoding/json's HTML-safe string escaping (<, >, &
// as \u003c, \u003e, \u0026; U+2028 and U+2029 as \u2028 and \u2029;
// each invalid UTF-8 byte as \ufffd, see invalidUTF8; control characters
// as \b, \f, \n, \r, \t or \u00XX), a nil slice as null.
//
// It covers the chunk shapes of ordinary streams: role, content,
// reasoning_content and reasoning_signature deltas, tool-call deltas,
// finish_reason and usage. For a chunk with anything else (a logprobs or
// refusal value) it appends nothing and reports false, and the caller
// encodes the chunk with encoding/json instead.
//
// TestChunkEncoderKnowsEveryField pins the fields and tags of the types it
// writes; a field added to them must be added here too (or make this
// function report false), or that test fails.
func AppendChunk(dst []byte, c *ChatChunk) ([]byte, bool) {
	for i := range c.Choices {
		ch := &c.Choices[i]
		if len(ch.Logprobs) != 0 || ch.Delta.Refusal != nil {
			return dst, false
		}
	}
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, c.ID)
	dst = append(dst, `,"object":`...)
	dst = appendJSONString(dst, c.Object)
	dst = append(dst, `,"created":`...)
	dst = strconv.AppendInt(dst, c.Created, 10)
	dst = append(dst, `,"model":`...)
	dst = appendJSONString(dst, c.Model)
	dst = append(dst, `,"choices":`...)
	if c.Choices == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range c.Choices {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendChunkChoice(dst, &c.Choices[i])
		}
		dst = append(dst, ']')
	}
	if u := c.Usage; u != nil {
		dst = append(dst, `,"usage":`...)
		dst = appendUsage(dst, u)
	}
	if c.SystemFingerprint != "" {
		dst = append(dst, `,"system_fingerprint":`...)
		dst = appendJSONString(dst, c.SystemFingerprint)
	}
	return append(dst, '}'), true
}

// appendChunkChoice writes a ChunkChoice whose Logprobs is empty.
func appendChunkChoice(dst []byte, ch *ChunkChoice) []byte {
	dst = append(dst, `{"index":`...)
	dst = strconv.AppendInt(dst, int64(ch.Index), 10)
	dst = append(dst, `,"delta":`...)
	dst = appendDelta(dst, &ch.Delta)
	dst = append(dst, `,"finish_reason":`...)
	if ch.FinishReason == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendJSONString(dst, *ch.FinishReason)
	}
	return append(dst, '}')
}

// appendDelta writes a Delta whose Refusal is nil. Every field is
// omitempty: a nil pointer or empty string or slice is left out, a pointer
// to "" is not.
func appendDelta(dst []byte, d *Delta) []byte {
	dst = append(dst, '{')
	if d.Role != "" {
		dst = append(dst, `"role":`...)
		dst = appendJSONString(dst, d.Role)
	}
	if d.Content != nil {
		dst = comma(dst)
		dst = append(dst, `"content":`...)
		dst = appendJSONString(dst, *d.Content)
	}
	if d.ReasoningContent != nil {
		dst = comma(dst)
		dst = append(dst, `"reasoning_content":`...)
		dst = appendJSONString(dst, *d.ReasoningContent)
	}
	if len(d.ToolCalls) != 0 {
		dst = comma(dst)
		dst = append(dst, `"tool_calls":[`...)
		for i := range d.ToolCalls {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendToolCall(dst, &d.ToolCalls[i])
		}
		dst = append(dst, ']')
	}
	// Refusal (between tool_calls and reasoning_signature) is nil here.
	if d.ReasoningSignature != nil {
		dst = comma(dst)
		dst = append(dst, `"reasoning_signature":`...)
		dst = appendJSONString(dst, *d.ReasoningSignature)
	}
	return append(dst, '}')
}

// comma separates a field from the one before it, unless it is the first
// of its object: every value written ends in '"' or ']', never '{'.
func comma(dst []byte) []byte {
	if dst[len(dst)-1] != '{' {
		dst = append(dst, ',')
	}
	return dst
}

func appendToolCall(dst []byte, tc *ToolCall) []byte {
	dst = append(dst, '{')
	if tc.Index != nil {
		dst = append(dst, `"index":`...)
		dst = strconv.AppendInt(dst, int64(*tc.Index), 10)
		dst = append(dst, ',')
	}
	if tc.ID != "" {
		dst = append(dst, `"id":`...)
		dst = appendJSONString(dst, tc.ID)
		dst = append(dst, ',')
	}
	if tc.Type != "" {
		dst = append(dst, `"type":`...)
		dst = appendJSONString(dst, tc.Type)
		dst = append(dst, ',')
	}
	dst = append(dst, `"function":{`...)
	if tc.Function.Name != "" {
		dst = append(dst, `"name":`...)
		dst = appendJSONString(dst, tc.Function.Name)
		dst = append(dst, ',')
	}
	dst = append(dst, `"arguments":`...)
	dst = appendJSONString(dst, tc.Function.Arguments)
	return append(dst, '}', '}')
}

func appendUsage(dst []byte, u *Usage) []byte {
	dst = append(dst, `{"prompt_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.PromptTokens), 10)
	dst = append(dst, `,"completion_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.CompletionTokens), 10)
	dst = append(dst, `,"total_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.TotalTokens), 10)
	if p := u.PromptTokensDetails; p != nil {
		dst = append(dst, `,"prompt_tokens_details":{"cached_tokens":`...)
		dst = strconv.AppendInt(dst, int64(p.CachedTokens), 10)
		if p.CacheWriteTokens != 0 {
			dst = append(dst, `,"cache_write_tokens":`...)
			dst = strconv.AppendInt(dst, int64(p.CacheWriteTokens), 10)
		}
		if p.AudioTokens != 0 {
			dst = append(dst, `,"audio_tokens":`...)
			dst = strconv.AppendInt(dst, int64(p.AudioTokens), 10)
		}
		dst = append(dst, '}')
	}
	if d := u.CompletionTokensDetails; d != nil {
		dst = append(dst, `,"completion_tokens_details":{"reasoning_tokens":`...)
		dst = strconv.AppendInt(dst, int64(d.ReasoningTokens), 10)
		if d.AudioTokens != 0 {
			dst = append(dst, `,"audio_tokens":`...)
			dst = strconv.AppendInt(dst, int64(d.AudioTokens), 10)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// jsonSafe marks the ASCII bytes encoding/json copies into a string
// unescaped with HTML escaping on (its htmlSafeSet): everything from 0x20
// to 0x7f except ", \, <, > and &.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = true
	}
	t['"'], t['\\'], t['<'], t['>'], t['&'] = false, false, false, false, false
	return t
}()

const hexDigits = "0123456789abcdef"

// invalidUTF8 is what encoding/json writes for each byte of a string that
// is not valid UTF-8: the escape \ufffd, or with GOEXPERIMENT=jsonv2
// (encoding/json on the v2 implementation) U+FFFD itself. Asked once
// instead of assumed, so appendJSONString matches json.Marshal in both
// builds; the tests and FuzzChunkEncoding pass in both.
var invalidUTF8 = func() string {
	b, err := json.Marshal("\xff")
	if err != nil || len(b) < 2 {
		return `\ufffd`
	}
	return string(b[1 : len(b)-1])
}()

// appendJSONString appends s as a JSON string exactly as encoding/json
// writes a string with HTML escaping on (json.Marshal, json.Encoder by
// default): its appendString, with invalidUTF8 for each invalid byte.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if jsonSafe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default: // other control characters, <, >, &
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 { // invalid UTF-8: one replacement per byte
			dst = append(dst, s[start:i]...)
			dst = append(dst, invalidUTF8...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
