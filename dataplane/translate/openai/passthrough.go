package openai

import (
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"

	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// passthroughBody is ChatBody built from the client's own bytes (req.Native)
// rather than from the struct: top-level members are copied as they came,
// in their order, except those the flavor's rules (see ChatBody) change —
// model, stream_options, max_tokens / max_completion_tokens, metadata,
// messages when a message must change, and tools when one has
// cache_control, which are written from the struct.
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
	raw := req.NativeBody(openai.DialectOpenAI)
	if len(raw) == 0 || !utf8.Valid(raw) {
		return nil, false
	}
	msgsChanged := len(msgs) != len(req.Messages) || (len(msgs) > 0 && &msgs[0] != &req.Messages[0])
	tools := toolsWithoutCacheControl(req.Tools)
	toolsChanged := len(tools) > 0 && &tools[0] != &req.Tools[0]
	out := make([]byte, 0, len(raw)+len(model)+64)
	out = append(out, '{')
	encoded := func(key string, v any) bool { // a member written from the struct
		b, err := json.Marshal(v)
		out = append(member(out, key), b...)
		return err == nil
	}
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
				return encoded("messages", msgs)
			}
		case "tools":
			if toolsChanged {
				return encoded("tools", tools)
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

// Dialect implements translate.NativeResponder: every flavor answers in
// OpenAI's Chat Completions shape.
func (t *Translator) Dialect() openai.Dialect { return openai.DialectOpenAI }

// ChatResponseBytes implements translate.NativeResponder: the answer as the
// client gets it, made from the upstream's own bytes with only the
// envelope (id, object, created, model) replaced by the gateway's stable
// values, as ChatResponse would set them. Everything else, fields
// Tollgate does not model included (annotations, audio, Azure's content
// filter results, usage details such as accepted_prediction_tokens),
// passes as the upstream wrote it.
//
// It applies only when the upstream's answer is already what ChatResponse
// would normalise it to, checked field by field with the types
// ChatResponse decodes: every choice has a message from role "assistant"
// with string (or null) content, one of OpenAI's four finish reasons
// ("tool_calls" whenever the message calls tools), tool calls with an id,
// type "function" and no index, no "reasoning" field to move, total_tokens
// filled in, no error object. Anything else — a modelled key given twice or
// in other case, a value of another type, array content, invalid UTF-8,
// malformed JSON — reports false, and the caller uses ChatResponse.
func (t *Translator) ChatResponseBytes(body []byte, _ translate.Target, meta translate.StreamMeta) ([]byte, *openai.Usage, bool) {
	if !utf8.Valid(body) {
		return nil, nil, false // ChatResponse would substitute U+FFFD; strict clients reject it raw
	}
	out := make([]byte, 0, len(body)+len(meta.ID)+len(meta.Model)+16)
	out = append(out, '{')
	var usage *openai.Usage
	choices := 0
	fs := fieldSet{names: responseFields}
	p := parser{b: body}
	ok := p.object(func(key []byte) bool {
		if !fs.add(key) {
			return false
		}
		start := p.i
		ok := true
		switch string(key) {
		case "choices":
			choices, ok = p.canonicalChoices()
		case "usage":
			if ok = p.skip(0); ok {
				usage, ok = decodeUsage(body[start:p.i])
			}
		case "error":
			ok = p.null()
		case "system_fingerprint", "service_tier":
			_, _, ok = p.optBytes()
		default:
			ok = p.skip(0)
		}
		switch string(key) {
		case "id", "object", "created", "model":
			return ok // written below from meta
		}
		out = append(member(out, string(key)), body[start:p.i]...)
		return ok
	})
	p.ws()
	if !ok || p.i != len(body) || choices == 0 {
		return nil, nil, false
	}
	out, err := jsontext.AppendQuote(member(out, "id"), meta.ID)
	if err != nil {
		return nil, nil, false
	}
	out = append(member(out, "object"), `"`+openai.ObjectChatCompletion+`"`...)
	out = strconv.AppendInt(member(out, "created"), meta.Created, 10)
	if out, err = jsontext.AppendQuote(member(out, "model"), meta.Model); err != nil {
		return nil, nil, false
	}
	return append(out, '}'), usage, true
}

// decodeUsage reads a usage object (or null) for the meter; a usage
// without total_tokens needs ChatResponse, which fills it in.
func decodeUsage(raw []byte) (*openai.Usage, bool) {
	if string(raw) == "null" {
		return nil, true
	}
	u := new(openai.Usage)
	if json.Unmarshal(raw, u) != nil || (u.TotalTokens == 0 && u.PromptTokens+u.CompletionTokens > 0) {
		return nil, false
	}
	return u, true
}

// The keys of each object ChatResponse decodes (wireResponse and what it
// holds), plus the envelope keys it replaces.
var (
	responseFields = []string{"id", "object", "created", "model", "choices", "usage", "error", "system_fingerprint", "service_tier"}
	choiceFields   = []string{"index", "message", "finish_reason", "logprobs"}
	messageFields  = []string{"role", "content", "name", "tool_calls", "tool_call_id", "reasoning_content", "reasoning_signature", "refusal", "reasoning"}
	toolCallFields = []string{"index", "id", "type", "function"}
	functionFields = []string{"name", "arguments"}
)

// fieldSet tracks the modelled keys of one JSON object. A key given
// twice, or one that matches a modelled name only when case is ignored,
// makes the object non-canonical: encoding/json would fold it onto the
// field or merge the two, a client's decoder might not.
type fieldSet struct {
	names []string
	seen  uint32
}

// add reports whether key may appear here: an unmodelled key, or a
// modelled one the first time.
func (f *fieldSet) add(key []byte) bool {
	for i, n := range f.names {
		if string(key) == n {
			if f.seen&(1<<i) != 0 {
				return false
			}
			f.seen |= 1 << i
			return true
		}
	}
	return !foldsTo(key, f.names...)
}

// optStr passes over a string or null.
func (p *parser) optStr() bool {
	_, _, ok := p.optBytes()
	return ok
}

// optInt passes over a non-negative int or null.
func (p *parser) optInt() bool {
	if p.null() {
		return true
	}
	_, ok := p.smallInt()
	return ok
}

// canonicalChoices passes over a choices array, reporting how many choices
// it holds and whether each is already in the form ChatResponse gives.
func (p *parser) canonicalChoices() (int, bool) {
	p.ws()
	if !p.lit('[') {
		return 0, false
	}
	n := 0
	ok := p.elements(func() bool {
		n++
		var finish []byte
		var hasFinish, calls bool
		fs := fieldSet{names: choiceFields}
		ok := p.object(func(key []byte) bool {
			if !fs.add(key) {
				return false
			}
			switch string(key) {
			case "index":
				return p.optInt()
			case "finish_reason":
				var ok bool
				finish, hasFinish, ok = p.optBytes()
				return ok
			case "message":
				var ok bool
				calls, ok = p.canonicalMessage()
				return ok
			}
			return p.skip(1)
		})
		if !ok || fs.seen&(1<<1) == 0 || !hasFinish {
			return false
		}
		switch string(finish) {
		case openai.FinishStop, openai.FinishLength, openai.FinishContentFilter:
			return !calls
		case openai.FinishToolCalls:
			return true
		}
		return false
	})
	return n, ok
}

// canonicalMessage passes over a choice's message, reporting whether it
// calls tools and whether it is in the form ChatResponse gives.
func (p *parser) canonicalMessage() (calls, ok bool) {
	assistant := false
	fs := fieldSet{names: messageFields}
	ok = p.object(func(key []byte) bool {
		if !fs.add(key) {
			return false
		}
		switch string(key) {
		case "role":
			role, _, ok := p.optBytes()
			assistant = string(role) == openai.RoleAssistant
			return ok
		case "content", "name", "tool_call_id", "reasoning_content", "reasoning_signature", "refusal":
			return p.optStr() // array content is left to ChatResponse
		case "reasoning":
			return p.null()
		case "tool_calls":
			if p.null() {
				return true
			}
			if !p.lit('[') {
				return false
			}
			return p.elements(func() bool {
				calls = true
				return p.canonicalToolCall()
			})
		}
		return p.skip(2)
	})
	return calls, ok && assistant
}

// canonicalToolCall passes over one tool call: it needs an id, type
// "function" and a function object, and no index (which only stream
// deltas carry).
func (p *parser) canonicalToolCall() bool {
	var id, typ []byte
	fs := fieldSet{names: toolCallFields}
	ok := p.object(func(key []byte) bool {
		if !fs.add(key) {
			return false
		}
		var ok bool
		switch string(key) {
		case "id":
			id, _, ok = p.optBytes()
		case "type":
			typ, _, ok = p.optBytes()
		case "function":
			ff := fieldSet{names: functionFields}
			ok = p.object(func(key []byte) bool {
				if !ff.add(key) {
					return false
				}
				if string(key) == "name" || string(key) == "arguments" {
					return p.optStr()
				}
				return p.skip(4)
			})
		case "index":
			ok = false
		default:
			ok = p.skip(3)
		}
		return ok
	})
	return ok && len(id) > 0 && string(typ) == "function" && fs.seen&(1<<3) != 0
}
