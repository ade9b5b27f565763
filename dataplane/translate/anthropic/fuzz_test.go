package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"

	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/sse"
)

// FuzzStreamReader feeds arbitrary bytes to the stream translator: it must
// never panic, must end, and must keep the ChunkReader contract it can
// check locally (envelope, one finish_reason, tool index/header rules).
func FuzzStreamReader(f *testing.F) {
	for _, in := range fixtures(f, "streams", ".sse") {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":7,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"x\"}}\n\n"))
	f.Add([]byte("data: {\"type\":\"message_stop\"}\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewStreamReader(bytes.NewReader(data), testMeta)
		finishes := 0
		headers := map[int]bool{}
		for i := 0; ; i++ {
			if i > len(data)+10 {
				t.Fatalf("more chunks (%d) than input bytes", i)
			}
			c, err := r.Next()
			if err != nil {
				var ae *openai.APIError
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &ae) && !errors.Is(err, sse.ErrEventTooLarge) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				if err == io.EOF && finishes != 1 {
					t.Fatalf("clean end with %d finish reasons", finishes)
				}
				return
			}
			if c.ID != testMeta.ID || c.Object != openai.ObjectChatCompletionChunk {
				t.Fatalf("bad envelope %+v", c)
			}
			if _, err := json.Marshal(c); err != nil {
				t.Fatalf("chunk does not marshal: %v", err)
			}
			for _, ch := range c.Choices {
				if ch.FinishReason != nil {
					finishes++
				}
				for _, tc := range ch.Delta.ToolCalls {
					if tc.Index == nil || *tc.Index < 0 {
						t.Fatalf("tool call without valid index: %+v", tc)
					}
					if tc.Function.Name != "" {
						if headers[*tc.Index] {
							t.Fatalf("tool %d header repeated", *tc.Index)
						}
						headers[*tc.Index] = true
					}
				}
			}
			if finishes > 1 {
				t.Fatal("more than one finish_reason")
			}
		}
	})
}

// FuzzParseMessagesRequest feeds arbitrary bodies to the inbound parser: it
// must never panic, rejections must be 400s, and an accepted request must
// be translatable outbound again without panicking.
func FuzzParseMessagesRequest(f *testing.F) {
	for _, in := range fixtures(f, "inbound/requests", ".json") {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":[{"type":"image","source":{"type":"url","url":"https://a/b"}}]}]}]}`))
	f.Add([]byte(`{"model":"m","max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"b","input":[1,2]}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, aerr := ParseMessagesRequest(body)
		if aerr != nil {
			if aerr.Status != 400 {
				t.Fatalf("rejection with status %d", aerr.Status)
			}
			return
		}
		if req.Model == "" || req.MaxOutputTokens() < 1 {
			t.Fatalf("accepted invalid request: %+v", req)
		}
		for _, m := range req.Messages {
			switch m.Role {
			case openai.RoleSystem, openai.RoleUser, openai.RoleAssistant, openai.RoleTool:
			default:
				t.Fatalf("bad role %q", m.Role)
			}
		}
		if _, err := json.Marshal(req); err != nil {
			t.Fatalf("canonical request does not marshal: %v", err)
		}
		out, err := BuildRequest(req, "claude", testProvider())
		if err == nil {
			if _, err := json.Marshal(out); err != nil {
				t.Fatalf("outbound request does not marshal: %v", err)
			}
		}
	})
}
