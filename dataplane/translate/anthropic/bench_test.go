package anthropic

import (
	"bytes"
	"io"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/sse"
	"tollgate.dev/tollgate/dataplane/translate"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
)

// BenchmarkChatRequest measures canonical -> Anthropic HTTP request
// (translation, JSON encoding, headers) for a multi-turn tool conversation.
func BenchmarkChatRequest(b *testing.B) {
	req, target := loadRequestFixture(b, "testdata/requests/tools_multi_turn.json")
	tt.BenchRequest(b, New(), req, target)
}

// BenchmarkChatResponse measures Anthropic body -> chat.completion.
func BenchmarkChatResponse(b *testing.B) {
	tt.BenchResponse(b, New(), tt.ReadFile(b, "testdata/responses/tool_use.json"), translate.Target{Provider: testProvider()}, testMeta)
}

// BenchmarkChatStream measures translating one whole stream (a text block
// and three parallel tool calls); chunks/op tells how many chunks that is,
// to read the per-chunk cost from ns/op and allocs/op.
func BenchmarkChatStream(b *testing.B) {
	tr, t := New(), translate.Target{Provider: testProvider()}
	tt.BenchStream(b, tt.ReadFile(b, "testdata/streams/tool_calls.sse"), func(r io.Reader) translate.ChunkReader { return tr.ChatStream(r, t, testMeta) })
}

// BenchmarkParseMessagesRequest measures inbound /v1/messages parsing.
func BenchmarkParseMessagesRequest(b *testing.B) {
	body := tt.ReadFile(b, "testdata/inbound/requests/tools_roundtrip.json")
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
	if err := json.Unmarshal(tt.ReadFile(b, "testdata/inbound/responses/tool_calls_reasoning.json"), &resp); err != nil {
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
	data := tt.ReadFile(b, "testdata/inbound/streams/tools_thinking.jsonl")
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
