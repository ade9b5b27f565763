package bedrock

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/eventstream"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
)

// checkFuzzStream drains a stream translator: it must never panic, must
// end within limit chunks, keep the ChunkReader contract, and end with
// io.EOF, a cut stream (io.ErrUnexpectedEOF) or an *openai.APIError with
// an HTTP error status: malformed input is a 502 like the other
// translators give, never a plain Go error.
func checkFuzzStream(t *testing.T, r io.Reader, limit int) {
	t.Helper()
	err := tt.FuzzStream(t, New().ChatStream(r, translate.Target{Provider: testProvider()}, testMeta), limit, contract)
	if !tt.KnownEnd(err) {
		t.Fatalf("stream ended with %T %v", err, err)
	}
	var ae *openai.APIError
	if errors.As(err, &ae) && (ae.Status < 400 || ae.Status > 599) {
		t.Fatalf("stream error with status %d", ae.Status)
	}
}

// FuzzStreamReader feeds arbitrary bytes to the stream translator. Most
// inputs fail the event-stream checksums early; FuzzStreamEvents reaches
// the event handling.
func FuzzStreamReader(f *testing.F) {
	for _, in := range fixtures(f, "streams") {
		f.Add(encodeStream(f, in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFuzzStream(t, bytes.NewReader(data), len(data)/16+2)
	})
}

// FuzzStreamEvents builds well-framed streams from fuzzed event types and
// payloads, so the JSON and state handling are exercised behind valid
// checksums. The input is a sequence of records "type\x00payload\x01".
func FuzzStreamEvents(f *testing.F) {
	f.Add([]byte("messageStart\x00{\"role\":\"assistant\"}\x01contentBlockDelta\x00{\"contentBlockIndex\":0,\"delta\":{\"text\":\"hi\"}}\x01messageStop\x00{\"stopReason\":\"end_turn\"}\x01metadata\x00{\"usage\":{\"inputTokens\":1,\"outputTokens\":2}}\x01"))
	f.Add([]byte("contentBlockStart\x00{\"contentBlockIndex\":1,\"start\":{\"toolUse\":{\"toolUseId\":\"a\",\"name\":\"f\"}}}\x01contentBlockDelta\x00{\"contentBlockIndex\":1,\"delta\":{\"toolUse\":{\"input\":\"{}\"}}}\x01contentBlockStop\x00{\"contentBlockIndex\":1}\x01contentBlockStart\x00{\"contentBlockIndex\":1,\"start\":{\"toolUse\":{\"toolUseId\":\"b\",\"name\":\"g\"}}}\x01messageStop\x00{\"stopReason\":\"tool_use\"}\x01metadata\x00{}\x01"))
	f.Add([]byte("contentBlockStart\x00{\"contentBlockIndex\":0,\"start\":{\"toolUse\":{\"toolUseId\":\"a\",\"name\":\"tollgate_json_response\"}}}\x01contentBlockStop\x00{\"contentBlockIndex\":0}\x01!throttlingException\x00{\"message\":\"x\"}\x01"))
	f.Add([]byte("contentBlockDelta\x00{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":{\"signature\":\"s\"}}}\x01metadata\x00{}\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var stream []byte
		records := bytes.Split(data, []byte{1})
		for _, rec := range records {
			typ, payload, _ := bytes.Cut(rec, []byte{0})
			if len(typ) > 255 {
				typ = typ[:255]
			}
			hs := []eventstream.Header{eventstream.StringHeader(":message-type", "event"), eventstream.StringHeader(":event-type", string(typ))}
			if len(typ) > 0 && typ[0] == '!' {
				hs = []eventstream.Header{eventstream.StringHeader(":message-type", "exception"), eventstream.StringHeader(":exception-type", string(typ[1:]))}
			}
			var err error
			stream, err = eventstream.AppendMessage(stream, &eventstream.Message{Headers: hs, Payload: payload})
			if err != nil {
				t.Fatal(err)
			}
		}
		checkFuzzStream(t, bytes.NewReader(stream), 2*len(records)+2)
	})
}

// FuzzChatResponse feeds arbitrary bodies to the Converse response parser:
// it must not panic, what it returns must marshal with valid JSON
// arguments for every tool call, and what it rejects is a 502 APIError.
func FuzzChatResponse(f *testing.F) {
	for _, in := range fixtures(f, "responses") {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := New().ChatResponse(body, translate.Target{Provider: testProvider()}, testMeta)
		if err != nil {
			var ae *openai.APIError
			if !errors.As(err, &ae) || ae.Status != 502 {
				t.Fatalf("error %T %v, want a 502 *openai.APIError", err, err)
			}
			return
		}
		if len(resp.Choices) != 1 || resp.Choices[0].FinishReason == "" {
			t.Fatalf("bad choices %+v", resp.Choices)
		}
		for _, tc := range resp.Choices[0].Message.ToolCalls {
			if !json.Valid([]byte(tc.Function.Arguments)) {
				t.Fatalf("tool call arguments are not JSON: %q", tc.Function.Arguments)
			}
		}
		if _, err := json.Marshal(resp); err != nil {
			t.Fatalf("response does not marshal: %v", err)
		}
	})
}

// FuzzBuildConverse feeds arbitrary canonical requests to the request
// builder: no panic, rejections are 400s, and accepted requests marshal.
func FuzzBuildConverse(f *testing.F) {
	for _, in := range fixtures(f, "requests") {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		var fx requestFixture
		if json.Unmarshal(b, &fx) == nil {
			rb, _ := json.Marshal(fx.Request)
			f.Add(rb)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req openai.ChatRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		out, err := BuildConverse(context.Background(), &req, target("anthropic.claude-sonnet-4"))
		if err != nil {
			var ae *openai.APIError
			if !errors.As(err, &ae) || ae.Status != 400 {
				t.Fatalf("rejection is not a 400: %v", err)
			}
			return
		}
		if len(out.Messages) == 0 || *out.InferenceConfig.MaxTokens < 1 {
			t.Fatalf("accepted invalid request: %+v", out)
		}
		if _, err := json.Marshal(out); err != nil {
			t.Fatalf("request does not marshal: %v", err)
		}
	})
}
