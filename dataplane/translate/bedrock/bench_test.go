package bedrock

import (
	"io"
	"testing"

	"tollgate.dev/tollgate/dataplane/translate"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
)

// BenchmarkChatRequest measures canonical -> signed Converse HTTP request
// (translation, JSON encoding, SigV4) for a multi-turn tool conversation.
func BenchmarkChatRequest(b *testing.B) {
	req, target := loadRequestFixture(b, "testdata/requests/tools_roundtrip.in.json")
	tt.BenchRequest(b, testTranslator(), req, target)
}

// BenchmarkChatResponse measures Converse body -> chat.completion.
func BenchmarkChatResponse(b *testing.B) {
	tt.BenchResponse(b, New(), tt.ReadFile(b, "testdata/responses/tool_use.in.json"), translate.Target{Provider: testProvider()}, testMeta)
}

// BenchmarkChatStream measures translating one whole ConverseStream answer
// (a text block and three tool calls); chunks/op tells how many chunks that
// is, to read the per-chunk cost from ns/op and allocs/op.
func BenchmarkChatStream(b *testing.B) {
	tr, t := New(), translate.Target{Provider: testProvider()}
	tt.BenchStream(b, encodeStream(b, "testdata/streams/tool_calls.in.json"), func(r io.Reader) translate.ChunkReader { return tr.ChatStream(r, t, testMeta) })
}
