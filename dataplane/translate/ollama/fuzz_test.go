package ollama

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
)

// FuzzStreamReader feeds arbitrary bytes to the NDJSON stream translator:
// it must never panic, must end, and must keep the ChunkReader contract.
func FuzzStreamReader(f *testing.F) {
	for _, in := range tt.Fixtures(f, "streams", ".ndjson") {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"message":{"tool_calls":[{"function":{"name":"","arguments":"{\"a\":1}"}}]},"done":true}`))
	f.Add([]byte(`{"error":{"message":"x"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := tt.FuzzStream(t, NewStreamReader(bytes.NewReader(data), testMeta), len(data)+10, contract)
		if !tt.KnownEnd(err) {
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
	})
}

// FuzzChatResponse feeds arbitrary bodies to the non-streaming parser.
func FuzzChatResponse(f *testing.F) {
	for _, in := range tt.Fixtures(f, "responses", ".json") {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := New().ChatResponse(body, translate.Target{}, testMeta)
		if err != nil {
			var ae *openai.APIError
			if !errors.As(err, &ae) || ae.Status < 400 {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		if len(resp.Choices) != 1 || resp.Choices[0].FinishReason == "" {
			t.Fatalf("bad response %+v", resp)
		}
		for _, tc := range resp.Choices[0].Message.ToolCalls {
			if tc.ID == "" || !json.Valid([]byte(tc.Function.Arguments)) {
				t.Fatalf("bad tool call %+v", tc)
			}
		}
	})
}

// FuzzChatRequest checks that any valid canonical request either
// translates to a JSON body with an explicit stream flag or is a 400.
func FuzzChatRequest(f *testing.F) {
	for _, in := range tt.Fixtures(f, "requests", ".json") {
		raw, _ := tt.LoadRequestFixture(f, in, testProvider())
		rb, _ := json.Marshal(tt.DecodeRequest(f, in, raw))
		f.Add(rb)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req openai.ChatRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		hr, err := New().ChatRequest(context.Background(), &req, translate.Target{Provider: testProvider(), Model: "m", Media: fakeMedia{}})
		if err != nil {
			var ae *openai.APIError
			if !errors.As(err, &ae) || ae.Status != 400 {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		out, _ := io.ReadAll(hr.Body)
		var m map[string]json.RawMessage
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("body is not JSON: %v", err)
		}
		if _, ok := m["stream"]; !ok {
			t.Fatal("stream not sent")
		}
	})
}
