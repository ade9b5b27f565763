package openai

import (
	"bytes"
	"context"
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

var testMeta = translate.StreamMeta{ID: "chatcmpl-tollgate-1", Created: 1700000000, Model: "gpt-public"}

// contract is the ChunkReader contract for OpenAI streams, which may carry
// several choices (n) and send usage only when asked.
var contract = tt.Contract{Meta: testMeta}

func testProvider() *routetable.Provider {
	return &routetable.Provider{ID: "ai/openai", Namespace: "ai", Name: "openai", Type: routetable.ProviderOpenAI,
		BaseURL: "https://api.openai.com", APIKey: "sk-test-key", Locality: routetable.LocalityExternal}
}

// flavorOf picks the translator from a fixture's name prefix: azure_,
// compat_, else OpenAI.
func flavorOf(path string) *Translator {
	base := filepath.Base(path)
	switch {
	case strings.HasPrefix(base, "azure_"):
		return NewAzure()
	case strings.HasPrefix(base, "compat_"):
		return NewCompatible()
	}
	return NewOpenAI()
}

// loadRequestFixture reads a fixture; the request goes through
// ParseChatRequest, as it does in the proxy.
func loadRequestFixture(t testing.TB, path string) (*openai.ChatRequest, translate.Target) {
	t.Helper()
	raw, target := tt.LoadRequestFixture(t, path, testProvider())
	req, aerr := ParseChatRequest(raw)
	if aerr != nil {
		t.Fatalf("%s: ParseChatRequest: %v", path, aerr)
	}
	return req, target
}

func TestRequestGolden(t *testing.T) {
	for _, in := range tt.Fixtures(t, "requests", ".json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			req, target := loadRequestFixture(t, in)
			before, _ := json.Marshal(req)
			hr, err := flavorOf(in).ChatRequest(context.Background(), req, target)
			if err != nil {
				t.Fatalf("ChatRequest: %v", err)
			}
			if after, _ := json.Marshal(req); !bytes.Equal(before, after) {
				t.Fatal("ChatRequest mutated the canonical request")
			}
			tt.CheckJSON(t, tt.GoldenPath(in, ".json"), tt.RequestGolden(t, hr))
		})
	}
}

func TestResponseGolden(t *testing.T) {
	for _, in := range tt.Fixtures(t, "responses", ".json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			resp, err := flavorOf(in).ChatResponse(tt.ReadFile(t, in), translate.Target{Provider: testProvider()}, testMeta)
			if err != nil {
				t.Fatalf("ChatResponse: %v", err)
			}
			tt.CheckJSON(t, tt.GoldenPath(in, ".json"), resp)
		})
	}
}

func collectStream(t testing.TB, tr *Translator, r io.Reader) tt.StreamResult {
	t.Helper()
	return tt.Collect(t, tr.ChatStream(r, translate.Target{Provider: testProvider()}, testMeta))
}

func TestStreamGolden(t *testing.T) {
	for _, in := range tt.Fixtures(t, "streams", ".sse") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			res := collectStream(t, flavorOf(in), bytes.NewReader(tt.ReadFile(t, in)))
			contract.Check(t, res.Chunks, res.Clean())
			tt.CheckJSON(t, tt.GoldenPath(in, ".json"), res)
		})
	}
}

func TestStreamRandomSplits(t *testing.T) {
	for _, in := range tt.Fixtures(t, "streams", ".sse") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			tr := flavorOf(in)
			tt.CheckSplits(t, tt.ReadFile(t, in), func(r io.Reader) tt.StreamResult { return collectStream(t, tr, r) })
		})
	}
}

func TestStreamIsLazy(t *testing.T) {
	tt.CheckLazy(t, tt.ReadFile(t, "testdata/streams/text.sse"), func(r io.Reader) translate.ChunkReader {
		return NewOpenAI().ChatStream(r, translate.Target{Provider: testProvider()}, testMeta)
	})
}
