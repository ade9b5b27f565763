package openai

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"tollgate.dev/tollgate/dataplane/translate"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
)

// passthroughStream is a typical OpenAI stream of n content chunks, as
// api.openai.com sends them (envelope, fingerprint, logprobs null).
func passthroughStream(n int) []byte {
	var buf bytes.Buffer
	const env = `{"id":"chatcmpl-AbCdEf0123456789","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_0aa8d3e20b",`
	fmt.Fprintf(&buf, "data: %s\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n", env)
	for i := range n {
		fmt.Fprintf(&buf, "data: %s\"choices\":[{\"index\":0,\"delta\":{\"content\":\" token%d\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n", env, i)
	}
	fmt.Fprintf(&buf, "data: %s\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n", env)
	fmt.Fprintf(&buf, "data: %s\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n", env, n, n+12)
	buf.WriteString("data: [DONE]\n\n")
	return buf.Bytes()
}

// BenchmarkStreamPassthrough measures the hot path: an OpenAI stream read
// and normalised chunk by chunk. ns/chunk and allocs/chunk are the cost
// the gateway adds per streamed token (SSE framing and JSON decoding; the
// proxy's encoding to the client is not included).
func BenchmarkStreamPassthrough(b *testing.B) {
	benchStream(b, passthroughStream(200))
}

// BenchmarkStreamToolCalls measures a stream with parallel tool calls.
func BenchmarkStreamToolCalls(b *testing.B) {
	benchStream(b, tt.ReadFile(b, "testdata/streams/tool_calls_parallel.sse"))
}

func benchStream(b *testing.B, data []byte) {
	tr, t := NewOpenAI(), translate.Target{Provider: testProvider()}
	tt.BenchStream(b, data, func(r io.Reader) translate.ChunkReader { return tr.ChatStream(r, t, testMeta) })
}

// BenchmarkParseChatRequest measures the inbound front door.
func BenchmarkParseChatRequest(b *testing.B) {
	body := tt.ReadFile(b, "testdata/parse/tools_multi_turn.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseChatRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChatRequest measures canonical -> upstream HTTP request for each
// flavor (body encoding, URL, headers).
func BenchmarkChatRequest(b *testing.B) {
	req, aerr := ParseChatRequest(tt.ReadFile(b, "testdata/parse/tools_multi_turn.json"))
	if aerr != nil {
		b.Fatal(aerr)
	}
	for _, tr := range []*Translator{NewOpenAI(), NewAzure(), NewCompatible()} {
		b.Run(tr.Flavor().String(), func(b *testing.B) {
			tt.BenchRequest(b, tr, req, translate.Target{Provider: testProvider(), Model: "gpt-4o"})
		})
	}
}

// BenchmarkChatResponse measures a non-streaming answer with tool calls.
func BenchmarkChatResponse(b *testing.B) {
	tt.BenchResponse(b, NewOpenAI(), tt.ReadFile(b, "testdata/responses/tool_calls.json"), translate.Target{Provider: testProvider()}, testMeta)
}
