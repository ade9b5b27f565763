package ollama

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
)

var testMeta = translate.StreamMeta{ID: "chatcmpl-tollgate-1", Created: 1700000000, Model: "local-llm"}

// contract is the ChunkReader contract for Ollama: one choice, usage
// always sent at the end.
var contract = tt.Contract{Meta: testMeta, OneChoice: true, RequireUsage: true}

func testProvider() *routetable.Provider {
	return &routetable.Provider{ID: "ai/ollama", Namespace: "ai", Name: "ollama", Type: routetable.ProviderOllama,
		BaseURL: "http://ollama.ai.svc:11434/", Locality: routetable.LocalityInCluster}
}

// fakeMedia serves one known image URL.
type fakeMedia struct{}

func (fakeMedia) Fetch(_ context.Context, url string) (string, []byte, error) {
	if url == "https://example.com/cat.png" {
		return "image/png", []byte("\x89PNG fake"), nil
	}
	return "", nil, fmt.Errorf("fetch %s: status 404", url)
}

func loadRequestFixture(t testing.TB, path string) (*openai.ChatRequest, translate.Target) {
	t.Helper()
	raw, target := tt.LoadRequestFixture(t, path, testProvider())
	target.Media = fakeMedia{}
	return tt.DecodeRequest(t, path, raw), target
}

func TestRequestGolden(t *testing.T) {
	for _, in := range tt.Fixtures(t, "requests", ".json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			req, target := loadRequestFixture(t, in)
			before, _ := json.Marshal(req)
			hr, err := New().ChatRequest(context.Background(), req, target)
			if err != nil {
				t.Fatalf("ChatRequest: %v", err)
			}
			if after, _ := json.Marshal(req); !bytes.Equal(before, after) {
				t.Fatal("ChatRequest mutated the canonical request")
			}
			got := tt.RequestGolden(t, hr)
			if body, _ := got["body"].(map[string]any); body == nil {
				t.Fatalf("body is not a JSON object: %v", got["body"])
			} else if _, ok := body["stream"]; !ok {
				t.Fatal("stream must always be sent: Ollama streams by default")
			}
			tt.CheckJSON(t, tt.GoldenPath(in, ".json"), got)
		})
	}
}

func TestResponseGolden(t *testing.T) {
	for _, in := range tt.Fixtures(t, "responses", ".json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			resp, err := New().ChatResponse(tt.ReadFile(t, in), translate.Target{Provider: testProvider()}, testMeta)
			if err != nil {
				t.Fatalf("ChatResponse: %v", err)
			}
			tt.CheckJSON(t, tt.GoldenPath(in, ".json"), resp)
		})
	}
}

func collectStream(t testing.TB, r io.Reader) tt.StreamResult {
	t.Helper()
	return tt.Collect(t, New().ChatStream(r, translate.Target{Provider: testProvider()}, testMeta))
}

func TestStreamGolden(t *testing.T) {
	for _, in := range tt.Fixtures(t, "streams", ".ndjson") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			res := collectStream(t, bytes.NewReader(tt.ReadFile(t, in)))
			checkStreamContract(t, res.Chunks, res.Clean())
			tt.CheckJSON(t, tt.GoldenPath(in, ".json"), res)
		})
	}
}

// checkStreamContract asserts translate.ChunkReader's rules and Ollama's
// own: thinking never in content, tool arguments whole JSON in one delta.
func checkStreamContract(t testing.TB, chunks []*openai.ChatChunk, clean bool) {
	t.Helper()
	contract.Check(t, chunks, clean)
	for i, c := range chunks {
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil && strings.Contains(*ch.Delta.Content, "<think>") {
				t.Fatalf("chunk %d: thinking in content", i)
			}
			for _, tc := range ch.Delta.ToolCalls {
				if !json.Valid([]byte(tc.Function.Arguments)) {
					t.Fatalf("chunk %d: arguments %q are not JSON", i, tc.Function.Arguments)
				}
			}
		}
	}
}

func TestStreamRandomSplits(t *testing.T) {
	for _, in := range tt.Fixtures(t, "streams", ".ndjson") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			tt.CheckSplits(t, tt.ReadFile(t, in), func(r io.Reader) tt.StreamResult { return collectStream(t, r) })
		})
	}
}

func TestStreamIsLazy(t *testing.T) {
	tt.CheckLazy(t, tt.ReadFile(t, "testdata/streams/text.ndjson"), func(r io.Reader) translate.ChunkReader {
		return New().ChatStream(r, translate.Target{Provider: testProvider()}, testMeta)
	})
}
