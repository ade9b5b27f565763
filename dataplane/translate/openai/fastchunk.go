package openai

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"

	"tollgate.dev/tollgate/dataplane/schema/openai"
)

// fastChunk decodes the common chat.completion.chunk (text, reasoning,
// refusal, tool call or finish deltas; the envelope and annotations
// skipped) into w without reflection. It is the streaming hot path: one
// such event per generated token. Anything it does not handle exactly as
// encoding/json would (usage, errors, logprobs values, keys differing only
// in case, invalid UTF-8, odd numbers, malformed JSON) makes it return
// false, and the caller decodes the event with encoding/json instead; a
// differential fuzz test (FuzzFastChunk) holds the two to the same result.
//
// w.Choices must be empty (length 0) on entry; on false, w is garbage.
func fastChunk(data []byte, w *wireChunk) bool {
	p := parser{b: data}
	p.ws()
	seenChoices := false
	ok := p.object(func(key []byte) bool {
		switch string(key) {
		case "choices":
			// encoding/json merges a repeated array into stale elements;
			// leave that oddity to it.
			if seenChoices {
				return false
			}
			seenChoices = true
			return p.choices(w)
		case "system_fingerprint":
			// Repeated on every chunk: converted only when it changes.
			raw, set, ok := p.optBytes()
			w.SystemFingerprint.set = set
			if set && string(raw) != w.SystemFingerprint.v {
				w.SystemFingerprint.v = string(raw)
			}
			return ok
		case "usage", "error":
			return p.null()
		case "id", "object", "created", "model":
			// Where the envelope is, for spliceChunk.
			e := &w.envelope[envelopeIndex(key)]
			if e.end != 0 {
				w.envelopeRepeated = true
			}
			e.start = p.i
			ok := p.skip(0)
			e.end = p.i
			return ok
		}
		if foldsTo(key, chunkEnvelope...) {
			w.envelopeRepeated = true // encoding/json would read it as that key
		}
		return !foldsTo(key, "choices", "system_fingerprint", "usage", "error") && p.skip(0)
	})
	p.ws()
	return ok && p.i == len(p.b)
}

func (p *parser) choices(w *wireChunk) bool {
	p.ws()
	if !p.lit('[') {
		return false
	}
	return p.elements(func() bool {
		w.Choices = append(w.Choices, wireChunkChoice{})
		c := &w.Choices[len(w.Choices)-1]
		return p.object(func(key []byte) bool {
			switch string(key) {
			case "index":
				n, ok := p.smallInt()
				c.Index = n
				return ok
			case "delta":
				return p.delta(&c.Delta)
			case "finish_reason":
				v, set, ok := p.optString()
				c.FinishReason = optString{v: v, set: set}
				return ok
			case "logprobs":
				return p.null()
			}
			return !foldsTo(key, "index", "delta", "finish_reason", "logprobs") && p.skip(1)
		})
	})
}

func (p *parser) delta(d *wireDelta) bool {
	toolCalls := false
	return p.object(func(key []byte) bool {
		var f *optString
		switch string(key) {
		case "role":
			f = &d.Role
		case "content":
			f = &d.Content
		case "reasoning_content":
			f = &d.ReasoningContent
		case "reasoning":
			f = &d.Reasoning
		case "refusal":
			f = &d.Refusal
		case "reasoning_signature":
			f = &d.ReasoningSignature
		case "tool_calls":
			if toolCalls {
				return false // a repeated array merges in encoding/json
			}
			toolCalls = true
			return p.toolCalls(d)
		default:
			if foldsTo(key, "role", "content", "reasoning_content", "reasoning", "refusal", "reasoning_signature", "tool_calls") {
				return false
			}
			start := p.i
			if !p.skip(2) {
				return false
			}
			switch string(p.b[start:p.i]) {
			case "null", "[]", "{}", `""`:
			default:
				d.unmodelled = true
			}
			return true
		}
		v, set, ok := p.optString()
		*f = optString{v: v, set: set}
		return ok
	})
}

// toolCalls reads a tool_calls array (null leaves it nil, as encoding/json does).
func (p *parser) toolCalls(d *wireDelta) bool {
	p.ws()
	if p.word("null") {
		d.ToolCalls = nil
		return true
	}
	if !p.lit('[') {
		return false
	}
	if d.ToolCalls == nil {
		d.ToolCalls = []openai.ToolCall{}
	}
	return p.elements(func() bool {
		d.ToolCalls = append(d.ToolCalls, openai.ToolCall{})
		tc := &d.ToolCalls[len(d.ToolCalls)-1]
		return p.object(func(key []byte) bool {
			switch string(key) {
			case "index":
				p.ws()
				if p.word("null") {
					tc.Index = nil
					return true
				}
				n, ok := p.smallInt()
				tc.Index = &n
				return ok
			case "id":
				return p.keepString(&tc.ID)
			case "type":
				return p.keepString(&tc.Type)
			case "function":
				return p.object(func(key []byte) bool {
					switch string(key) {
					case "name":
						return p.keepString(&tc.Function.Name)
					case "arguments":
						return p.keepString(&tc.Function.Arguments)
					}
					return !foldsTo(key, "name", "arguments") && p.skip(4)
				})
			}
			return !foldsTo(key, "index", "id", "type", "function") && p.skip(3)
		})
	})
}

// keepString reads a string into *dst; null leaves *dst as it was, as
// encoding/json does for a string field.
func (p *parser) keepString(dst *string) bool {
	v, set, ok := p.optString()
	if set {
		*dst = v
	}
	return ok
}

// foldsTo reports whether key matches one of names case-insensitively:
// encoding/json would decode it into that field, so the fast path must not
// treat it as unknown.
func foldsTo(key []byte, names ...string) bool {
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return true
		}
	}
	return false
}

// parser is a strict JSON scanner over one value.
type parser struct {
	b []byte
	i int
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) lit(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) word(w string) bool {
	if len(p.b)-p.i >= len(w) && string(p.b[p.i:p.i+len(w)]) == w {
		p.i += len(w)
		return true
	}
	return false
}

// null accepts only a JSON null (after whitespace).
func (p *parser) null() bool {
	p.ws()
	return p.word("null")
}

// object parses {"key": value, ...}, calling field with each raw key (no
// escapes allowed) positioned before its value.
// elements reads the rest of an array whose '[' was just consumed, calling
// elem once per element (elem reads the element itself).
func (p *parser) elements(elem func() bool) bool {
	p.ws()
	if p.lit(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		p.ws()
		if p.lit(']') {
			return true
		}
		if !p.lit(',') {
			return false
		}
		p.ws()
	}
}

func (p *parser) object(field func(key []byte) bool) bool {
	p.ws()
	if !p.lit('{') {
		return false
	}
	p.ws()
	if p.lit('}') {
		return true
	}
	for {
		key, ok := p.rawKey()
		if !ok {
			return false
		}
		p.ws()
		if !p.lit(':') {
			return false
		}
		p.ws()
		if !field(key) {
			return false
		}
		p.ws()
		if p.lit('}') {
			return true
		}
		if !p.lit(',') {
			return false
		}
		p.ws()
	}
}

// rawKey reads a key without escapes (others fall back).
func (p *parser) rawKey() ([]byte, bool) {
	if !p.lit('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			k := p.b[start:p.i]
			p.i++
			return k, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// optString reads a string or null; strings are unescaped, and "assistant"
// is returned without allocating.
func (p *parser) optString() (string, bool, bool) {
	raw, set, ok := p.optBytes()
	if !set {
		return "", false, ok
	}
	if string(raw) == "assistant" {
		return "assistant", true, true
	}
	return string(raw), true, true
}

// optBytes reads a string or null. The bytes are the input's own when the
// string has no escapes, so a caller can compare before converting.
func (p *parser) optBytes() ([]byte, bool, bool) {
	p.ws()
	if p.word("null") {
		return nil, false, true
	}
	if !p.lit('"') {
		return nil, false, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			raw := p.b[start:p.i]
			p.i++
			return raw, true, true
		case c == '\\':
			return p.escapedString(start)
		case c < 0x20:
			return nil, false, false
		case c >= 0x80:
			r, n := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && n == 1 {
				return nil, false, false // encoding/json would substitute U+FFFD
			}
			p.i += n
			continue
		}
		p.i++
	}
	return nil, false, false
}

// escapedString finishes a string that has escapes, from its first byte.
func (p *parser) escapedString(start int) ([]byte, bool, bool) {
	out := make([]byte, 0, len(p.b)-start)
	out = append(out, p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return out, true, true
		case c < 0x20:
			return nil, false, false
		case c >= 0x80:
			r, n := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && n == 1 {
				return nil, false, false
			}
			out = append(out, p.b[p.i:p.i+n]...)
			p.i += n
			continue
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.b) {
			return nil, false, false
		}
		e := p.b[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return nil, false, false
			}
			if utf16.IsSurrogate(r) {
				// A valid pair decodes to one rune; anything else is what
				// encoding/json turns into U+FFFD: leave that to it.
				if !p.word(`\u`) {
					return nil, false, false
				}
				r2, ok := p.hex4()
				if !ok {
					return nil, false, false
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return nil, false, false
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, false, false
		}
	}
	return nil, false, false
}

func (p *parser) hex4() (rune, bool) {
	if len(p.b)-p.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	p.i += 4
	return r, true
}

// smallInt reads a non-negative integer of at most 9 digits, JSON grammar
// (no leading zeros); other numbers fall back.
func (p *parser) smallInt() (int, bool) {
	p.ws()
	start := p.i
	n := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		n = n*10 + int(p.b[p.i]-'0')
		p.i++
	}
	digits := p.i - start
	if digits == 0 || digits > 9 || (digits > 1 && p.b[start] == '0') {
		return 0, false
	}
	if p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		return 0, false
	}
	return n, true
}

// skip passes over any valid JSON value; depth bounds nesting.
func (p *parser) skip(depth int) bool {
	if depth > 64 {
		return false
	}
	p.ws()
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		return p.skipString()
	case c == '{':
		return p.object(func([]byte) bool { return p.skip(depth + 1) })
	case c == '[':
		p.i++
		p.ws()
		if p.lit(']') {
			return true
		}
		for {
			if !p.skip(depth + 1) {
				return false
			}
			p.ws()
			if p.lit(']') {
				return true
			}
			if !p.lit(',') {
				return false
			}
		}
	case c == 't':
		return p.word("true")
	case c == 'f':
		return p.word("false")
	case c == 'n':
		return p.word("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return false
}

// skipString passes over a string without decoding it. Its bytes are
// never used, so invalid UTF-8 (which encoding/json accepts) is accepted.
func (p *parser) skipString() bool {
	p.i++ // opening quote
	for p.i < len(p.b) {
		for p.i < len(p.b) && !stringSpecial[p.b[p.i]] {
			p.i++ // the bulk of a string, a table lookup per byte
		}
		if p.i >= len(p.b) {
			return false
		}
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return false
			}
			e := p.b[p.i+1]
			p.i += 2
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if _, ok := p.hex4(); !ok {
					return false
				}
			default:
				return false
			}
			continue
		}
		p.i++
	}
	return false
}

// stringSpecial marks the bytes that end the plain run of a JSON string:
// the closing quote, an escape, and control characters (invalid there).
var stringSpecial = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// number passes over a JSON number, strictly.
func (p *parser) number() bool {
	p.lit('-')
	switch {
	case p.lit('0'):
	case p.i < len(p.b) && p.b[p.i] >= '1' && p.b[p.i] <= '9':
		p.digits()
	default:
		return false
	}
	if p.lit('.') {
		if p.digits() == 0 {
			return false
		}
	}
	if p.lit('e') || p.lit('E') {
		if !p.lit('+') {
			p.lit('-')
		}
		if p.digits() == 0 {
			return false
		}
	}
	return true
}

func (p *parser) digits() int {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}
