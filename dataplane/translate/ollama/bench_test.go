package ollama

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"tollgate.dev/tollgate/dataplane/translate"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
)

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
	tr, t := New(), translate.Target{Provider: testProvider()}
	tt.BenchStream(b, ndjsonStream(200), func(r io.Reader) translate.ChunkReader { return tr.ChatStream(r, t, testMeta) })
}

// BenchmarkChatRequest measures canonical -> /api/chat request for a
// multi-turn tool conversation.
func BenchmarkChatRequest(b *testing.B) {
	req, target := loadRequestFixture(b, "testdata/requests/tools_multi_turn.json")
	tt.BenchRequest(b, New(), req, target)
}

// BenchmarkChatResponse measures a non-streaming answer with tool calls.
func BenchmarkChatResponse(b *testing.B) {
	tt.BenchResponse(b, New(), tt.ReadFile(b, "testdata/responses/tool_calls_thinking.json"), translate.Target{Provider: testProvider()}, testMeta)
}
