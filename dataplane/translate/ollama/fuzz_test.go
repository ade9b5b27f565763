package ollama

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"

	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// FuzzStreamReader feeds arbitrary bytes to the NDJSON stream translator:
// it must never panic, must end, and must keep the ChunkReader contract.
func FuzzStreamReader(f *testing.F) {
	for _, in := range fixtures(f, "streams", ".ndjson") {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"message":{"tool_calls":[{"function":{"name":"","arguments":"{\"a\":1}"}}]},"done":true}`))
	f.Add([]byte(`{"error":{"message":"x"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewStreamReader(bytes.NewReader(data), testMeta)
		var chunks []*openai.ChatChunk
		for i := 0; ; i++ {
			if i > len(data)+10 {
				t.Fatalf("more chunks (%d) than input bytes", i)
			}
			c, err := r.Next()
			if err != nil {
				var ae *openai.APIError
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &ae) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				checkStreamContract(t, chunks, err == io.EOF)
				return
			}
			if _, err := json.Marshal(c); err != nil {
				t.Fatalf("chunk does not marshal: %v", err)
			}
			chunks = append(chunks, c)
		}
	})
}

// FuzzChatResponse feeds arbitrary bodies to the non-streaming parser.
func FuzzChatResponse(f *testing.F) {
	for _, in := range fixtures(f, "responses", ".json") {
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
	for _, in := range fixtures(f, "requests", ".json") {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		var fx requestFixture
		if err := json.Unmarshal(b, &fx); err != nil {
			f.Fatal(err)
		}
		rb, _ := json.Marshal(fx.Request)
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
