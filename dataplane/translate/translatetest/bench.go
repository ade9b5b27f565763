package translatetest

import (
	"bytes"
	"context"
	"io"
	"testing"

	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// BenchRequest measures canonical request -> upstream HTTP request.
func BenchRequest(b *testing.B, tr translate.Translator, req *openai.ChatRequest, target translate.Target) {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.ChatRequest(ctx, req, target); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchResponse measures an upstream body -> chat.completion.
func BenchResponse(b *testing.B, tr translate.Translator, body []byte, target translate.Target, meta translate.StreamMeta) {
	b.Helper()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.ChatResponse(body, target, meta); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchStream measures translating data, one whole stream per op, and
// reports chunks/op and ns/chunk, the cost per streamed token.
func BenchStream(b *testing.B, data []byte, open func(io.Reader) translate.ChunkReader) {
	b.Helper()
	chunks := 0
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := open(bytes.NewReader(data))
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
