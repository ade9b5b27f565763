package ollama

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"testing"

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

// ndjsonStream is an /api/chat stream of n content lines as Ollama sends them.
func ndjsonStream(n int) []byte {
	var buf bytes.Buffer
	for i := range n {
		fmt.Fprintf(&buf, "{\"model\":\"llama3.2:3b\",\"created_at\":\"2025-01-01T00:00:00.123456789Z\",\"message\":{\"role\":\"assistant\",\"content\":\" token%d\"},\"done\":false}\n", i)
	}
	buf.WriteString(`{"model":"llama3.2:3b","created_at":"2025-01-01T00:00:01Z","message":{"role":"assistant","content":""},"done_reason":"stop","done":true,"total_duration":1,"load_duration":1,"prompt_eval_count":26,"prompt_eval_duration":1,"eval_count":200,"eval_duration":1}` + "\n")
	return buf.Bytes()
}

// BenchmarkStream measures NDJSON -> chunks per streamed token.
func BenchmarkStream(b *testing.B) {
	data := ndjsonStream(200)
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
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(chunks), "ns/chunk")
	b.ReportMetric(float64(chunks)/float64(b.N), "chunks/op")
}

// BenchmarkChatRequest measures canonical -> /api/chat request for a
// multi-turn tool conversation.
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

// BenchmarkChatResponse measures a non-streaming answer with tool calls.
func BenchmarkChatResponse(b *testing.B) {
	body := readFile(b, "testdata/responses/tool_calls_thinking.json")
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
