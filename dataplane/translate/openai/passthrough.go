package openai

import (
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"

	"tollgate.dev/tollgate/dataplane/schema/openai"
)

// passthroughBody is ChatBody built from the client's own bytes (req.Raw)
// rather than from the struct: top-level members are copied as they came,
// in their order, except those the flavor's rules (see ChatBody) change —
// model, stream_options, max_tokens / max_completion_tokens, metadata, and
// messages when a message must change, which are written from the struct.
// So fields Tollgate does not model (logit_bias, service_tier, prediction,
// store, a vLLM server's own sampling parameters...) reach the upstream,
// as they would if the client called it directly, and the prompt is not
// encoded again.
//
// It reports false when the bytes cannot be edited safely, and the caller
// encodes the struct instead: a key that matches a modelled field only
// when case is ignored (encoding/json decoded it; the upstream would not),
// a modelled key given twice, a key with escapes, invalid UTF-8 (which the
// struct holds as U+FFFD), nesting deeper than the scanner follows.
func (t *Translator) passthroughBody(req *openai.ChatRequest, msgs []openai.Message, model string) ([]byte, bool) {
	raw := req.Raw
	if len(raw) == 0 || !utf8.Valid(raw) {
		return nil, false
	}
	msgsChanged := len(msgs) != len(req.Messages) || (len(msgs) > 0 && &msgs[0] != &req.Messages[0])
	out := make([]byte, 0, len(raw)+len(model)+64)
	out = append(out, '{')
	var seen uint64
	p := parser{b: raw}
	ok := p.object(func(key []byte) bool {
		bit, modelled := chatFieldBits[string(key)]
		switch {
		case modelled && seen&bit != 0:
			return false
		case modelled:
			seen |= bit
		case foldsToChatField(key):
			return false
		}
		start := p.i
		if !p.skip(0) {
			return false
		}
		val := raw[start:p.i]
		switch string(key) {
		case "model":
			if t.flavor != FlavorAzure { // Azure names the deployment in the URL
				var err error
				if out, err = jsontext.AppendQuote(member(out, "model"), model); err != nil {
					return false
				}
			}
			return true
		case "stream_options":
			return true // set below from the struct
		case "max_tokens", "max_completion_tokens":
			if t.flavor == FlavorOpenAI {
				return true // set below from the struct
			}
		case "metadata":
			if t.flavor != FlavorOpenAI {
				return true
			}
		case "messages":
			if msgsChanged {
				b, err := json.Marshal(msgs)
				if err != nil {
					return false
				}
				out = append(member(out, "messages"), b...)
				return true
			}
		}
		out = append(member(out, string(key)), val...)
		return true
	})
	p.ws()
	if !ok || p.i != len(raw) {
		return nil, false
	}
	if t.flavor == FlavorOpenAI {
		if n := req.MaxOutputTokens(); req.MaxCompletionTokens != nil || req.MaxTokens != nil {
			out = strconv.AppendInt(member(out, "max_completion_tokens"), int64(n), 10)
		}
	}
	if req.Stream {
		out = append(member(out, "stream_options"), `{"include_usage":true}`...)
	}
	return append(out, '}'), true
}

// member appends the name of an object member (a plain ASCII key) and its
// colon, after a comma unless it is the first member.
func member(out []byte, key string) []byte {
	if len(out) > 1 {
		out = append(out, ',')
	}
	out = append(out, '"')
	out = append(out, key...)
	return append(out, '"', ':')
}

// chatFieldBits numbers the JSON names of ChatRequest's fields, to notice
// one given twice.
var chatFieldBits = func() map[string]uint64 {
	m := map[string]uint64{}
	t := reflect.TypeFor[openai.ChatRequest]()
	for i := range t.NumField() {
		if name := jsonName(t.Field(i)); name != "" && name != "-" {
			m[name] = 1 << len(m)
		}
	}
	if len(m) > 64 {
		panic("openai: ChatRequest has more fields than passthroughBody can track")
	}
	return m
}()

// foldsToChatField reports a key that is not a modelled field's name but
// equals one when case is ignored, as encoding/json matches names.
func foldsToChatField(key []byte) bool {
	for name := range chatFieldBits {
		if strings.EqualFold(string(key), name) {
			return true
		}
	}
	return false
}
