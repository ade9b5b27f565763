package anthropic

import (
	"bytes"
	"io"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"

	wire "tollgate.dev/tollgate/dataplane/schema/anthropic"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/sse"
	"tollgate.dev/tollgate/dataplane/translate"
)

// Native passthrough: a client of the Messages API routed to an Anthropic
// provider gets Anthropic end to end. The request goes out as the client's
// own body (model replaced), with the client's anthropic-beta features,
// and answers and events come back as Anthropic sent them (id and model
// replaced), so whatever the canonical form does not model — cache_control
// and so prompt caching, top_k, documents and citations, redacted thinking
// — works through the gateway as it does directly.

var (
	_ translate.NativeResponder = Translator{}
	_ translate.NativeStreamer  = Translator{}
)

// Dialect implements translate.NativeResponder and NativeStreamer.
func (Translator) Dialect() openai.Dialect { return openai.DialectAnthropic }

// nativeBody is the client's Messages body for upstream model, or nil when
// the request has none (another dialect, a data policy, an edited struct)
// or it cannot be edited (no exact "model" member, invalid JSON).
func nativeBody(req *openai.ChatRequest, model string) []byte {
	raw := req.NativeBody(openai.DialectAnthropic)
	if raw == nil {
		return nil
	}
	found := false
	out, err := translate.EditObject(raw, func(name string, val jsontext.Value) jsontext.Value {
		if name == "model" {
			found = true
			return translate.Quote(model)
		}
		return val
	})
	if err != nil || !found {
		return nil
	}
	return out
}

// betaHeader joins the provider's configured anthropic-beta features with
// the client's, each once.
func betaHeader(provider, client string) string {
	if client == "" {
		return provider
	}
	seen := map[string]bool{}
	var out []string
	for _, list := range []string{provider, client} {
		for f := range strings.SplitSeq(list, ",") {
			if f = strings.TrimSpace(f); f != "" && !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return strings.Join(out, ",")
}

// ChatResponseBytes implements translate.NativeResponder: the Messages
// answer with the gateway's message id and the model the client asked for,
// as the canonical path would set them, and everything else as Anthropic
// wrote it. Anything but a valid message object with usage goes through
// ChatResponse.
func (Translator) ChatResponseBytes(body []byte, _ translate.Target, meta translate.StreamMeta) ([]byte, *openai.Usage, bool) {
	var usage *openai.Usage
	isMessage := false
	out, err := translate.EditObject(body, func(name string, val jsontext.Value) jsontext.Value {
		switch name {
		case "id":
			return translate.Quote(messageID(meta.ID))
		case "model":
			return translate.Quote(meta.Model)
		case "type":
			isMessage = string(val) == `"message"`
		case "usage":
			var u wire.Usage
			if json.Unmarshal(val, &u) == nil {
				usage = ConvertUsage(u)
			}
		}
		return val
	})
	if err != nil || !isMessage || usage == nil {
		return nil, nil, false
	}
	return out, usage, true
}

// ChatStreamNative implements translate.NativeStreamer.
func (Translator) ChatStreamNative(body io.Reader, _ translate.Target, meta translate.StreamMeta) translate.EventReader {
	return &nativeStream{src: sse.NewReader(body, 0), meta: meta}
}

// nativeStream forwards an Anthropic event stream. It reads each event's
// type and usage (for metering), replaces message_start's id and model,
// and checks the stream's shape: message_start first, message_stop last,
// error events and malformed data ending it as the canonical reader does.
type nativeStream struct {
	src     *sse.Reader
	meta    translate.StreamMeta
	err     error
	started bool
	usage   wire.Usage
	counted bool
}

// nativeEvent is the part of an event the gateway reads.
type nativeEvent struct {
	Type    string `json:"type"`
	Message *struct {
		Usage wire.Usage `json:"usage"`
	} `json:"message"`
	Usage *wire.DeltaUsage  `json:"usage"`
	Error *wire.ErrorDetail `json:"error"`
}

func (s *nativeStream) fail(err error) (string, []byte, error) {
	s.err = err
	return "", nil, err
}

// Next implements translate.EventReader.
func (s *nativeStream) Next() (string, []byte, error) {
	for s.err == nil {
		ev, err := s.src.Next()
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // no message_stop
		}
		if err != nil {
			return s.fail(err)
		}
		if len(ev.Data) == 0 {
			continue
		}
		var e nativeEvent
		if json.Unmarshal(ev.Data, &e) != nil {
			return s.fail(upstreamMalformed("malformed stream event"))
		}
		data := ev.Data
		switch e.Type {
		case wire.EventMessageStart:
			if s.started || e.Message == nil {
				return s.fail(upstreamMalformed("unexpected message_start"))
			}
			s.started, s.counted, s.usage = true, true, e.Message.Usage
			if data, err = s.envelope(data); err != nil {
				return s.fail(upstreamMalformed("malformed message_start"))
			}
		case wire.EventError:
			return s.fail(streamError(e.Error))
		case "ping":
		default:
			if !s.started {
				return s.fail(upstreamMalformed("stream did not open with message_start"))
			}
			if e.Type == wire.EventMessageDelta && e.Usage != nil {
				s.counted = true
				mergeDeltaUsage(&s.usage, e.Usage)
			}
			if e.Type == wire.EventMessageStop {
				s.err = io.EOF // forward this one; the next call ends
			}
		}
		name := ev.Type
		if name == "" {
			name = e.Type
		}
		if bytes.IndexByte(data, '\n') >= 0 { // multi-line data: one line per event on the way out
			var b bytes.Buffer
			if json.Compact(&b, data) != nil {
				return s.fail(upstreamMalformed("malformed stream event"))
			}
			data = b.Bytes()
		}
		return name, data, nil
	}
	return "", nil, s.err
}

// envelope replaces message_start's message id and model.
func (s *nativeStream) envelope(data []byte) ([]byte, error) {
	return translate.EditObject(data, func(name string, val jsontext.Value) jsontext.Value {
		if name != "message" {
			return val
		}
		msg, err := translate.EditObject(val, func(name string, val jsontext.Value) jsontext.Value {
			switch name {
			case "id":
				return translate.Quote(messageID(s.meta.ID))
			case "model":
				return translate.Quote(s.meta.Model)
			}
			return val
		})
		if err != nil {
			return nil
		}
		return msg
	})
}

// Usage implements translate.EventReader.
func (s *nativeStream) Usage() *openai.Usage {
	if !s.counted {
		return nil
	}
	return ConvertUsage(s.usage)
}

// ErrorEvent implements translate.EventReader: Anthropic's error event.
func (s *nativeStream) ErrorEvent(err error) (string, []byte) {
	b, _ := json.Marshal(wire.ErrorResponse{Type: wire.EventError, Error: streamErrorDetail(err)})
	return wire.EventError, b
}
