package bedrock

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"tollgate.dev/tollgate/dataplane/translate"
)

// BenchmarkChatRequest measures canonical -> signed Converse HTTP request
// (translation, JSON encoding, SigV4) for a multi-turn tool conversation.
func BenchmarkChatRequest(b *testing.B) {
	req, target := loadRequestFixture(b, "testdata/requests/tools_roundtrip.in.json")
	ctx := context.Background()
	tr := testTranslator()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.ChatRequest(ctx, req, target); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChatResponse measures Converse body -> chat.completion.
func BenchmarkChatResponse(b *testing.B) {
	body, err := os.ReadFile("testdata/responses/tool_use.in.json")
	if err != nil {
		b.Fatal(err)
	}
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

// BenchmarkChatStream measures translating one whole ConverseStream answer
// (a text block and three tool calls); chunks/op tells how many chunks that
// is, to read the per-chunk cost from ns/op and allocs/op.
func BenchmarkChatStream(b *testing.B) {
	data := encodeStream(b, "testdata/streams/tool_calls.in.json")
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
