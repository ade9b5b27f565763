package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"testing"

	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/sse"
	"tollgate.dev/tollgate/dataplane/translate"
)

func readFile(b *testing.B, path string) []byte {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkChatRequest measures canonical -> Anthropic HTTP request
// (translation, JSON encoding, headers) for a multi-turn tool conversation.
func BenchmarkChatRequest(b *testing.B) {
	req, target := loadRequestFixture(b, "testdata/requests/tools_multi_turn.json")
	ctx := context.Background()
	tr := New()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.ChatRequest(ctx, req, target); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChatResponse measures Anthropic body -> chat.completion.
func BenchmarkChatResponse(b *testing.B) {
	body := readFile(b, "testdata/responses/tool_use.json")
	tr := New()
	t := translate.Target{Provider: testProvider()}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.ChatResponse(body, t, testMeta); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChatStream measures translating one whole stream (a text block
// and three parallel tool calls); chunks/op tells how many chunks that is,
// to read the per-chunk cost from ns/op and allocs/op.
func BenchmarkChatStream(b *testing.B) {
	data := readFile(b, "testdata/streams/tool_calls.sse")
	tr := New()
	t := translate.Target{Provider: testProvider()}
	chunks := 0
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := tr.ChatStream(bytes.NewReader(data), t, testMeta)
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			chunks++
		}
	}
	b.ReportMetric(float64(chunks)/float64(b.N), "chunks/op")
}

// BenchmarkParseMessagesRequest measures inbound /v1/messages parsing.
func BenchmarkParseMessagesRequest(b *testing.B) {
	body := readFile(b, "testdata/inbound/requests/tools_roundtrip.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMessagesRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMessagesResponse measures chat.completion -> Anthropic message.
func BenchmarkMessagesResponse(b *testing.B) {
	var resp openai.ChatResponse
	if err := json.Unmarshal(readFile(b, "testdata/inbound/responses/tool_calls_reasoning.json"), &resp); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		MessagesResponse(&resp, "claude")
	}
}

// BenchmarkMessagesStreamWriter measures encoding canonical chunks as
// Anthropic events (inbound streaming).
func BenchmarkMessagesStreamWriter(b *testing.B) {
	data := readFile(b, "testdata/inbound/streams/tools_thinking.jsonl")
	var chunks []*openai.ChatChunk
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var c openai.ChatChunk
		if err := json.Unmarshal(line, &c); err != nil {
			b.Fatal(err)
		}
		chunks = append(chunks, &c)
	}
	b.ReportAllocs()
	for b.Loop() {
		w := NewMessagesStreamWriter(sse.NewWriter(io.Discard), "msg_1", "claude")
		for _, c := range chunks {
			if err := w.WriteChunk(c); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(nil); err != nil {
			b.Fatal(err)
		}
	}
}
