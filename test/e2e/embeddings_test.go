package e2e

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/server"
	"tollgate.dev/tollgate/dataplane/translate/providers"
	"tollgate.dev/tollgate/test/fakeprovider"
)

// embeddingTypes lists the provider types with an embeddings API, with the
// upstream path and credential header their translator must use.
var embeddingTypes = []struct {
	typ        routetable.ProviderType
	path       string // suffix of the upstream request path
	authHeader string
	usage      bool // whether the provider reports token usage
}{
	{routetable.ProviderOpenAI, "/v1/embeddings", "Authorization", true},
	{routetable.ProviderAzureOpenAI, "/openai/deployments/emb-azureopenai/embeddings", "Api-Key", true},
	{routetable.ProviderGemini, "/v1beta/models/emb-gemini:batchEmbedContents", "X-Goog-Api-Key", false},
	{routetable.ProviderOllama, "/api/embed", "", true},
	{routetable.ProviderOpenAICompatible, "/v1/embeddings", "", true},
}

// noEmbeddingTypes have no embeddings API in Tollgate.
var noEmbeddingTypes = []routetable.ProviderType{routetable.ProviderAnthropic, routetable.ProviderBedrock}

// embeddingGateway is a data plane with one embeddings route per provider
// type ("emb-<type>" -> upstream model "emb-<type>"), each on its own fake
// provider.
func embeddingGateway(t *testing.T) (url string, fakes map[routetable.ProviderType]*fakeprovider.Server) {
	t.Helper()
	fakes = map[routetable.ProviderType]*fakeprovider.Server{}
	tbl := &routetable.Table{
		Keys: []routetable.Key{{ID: "team-a/app", Namespace: "team-a", Name: "app", Team: "a", Hash: server.HashKey(testKey)}},
	}
	types := append([]routetable.ProviderType(nil), noEmbeddingTypes...)
	for _, et := range embeddingTypes {
		types = append(types, et.typ)
	}
	for _, typ := range types {
		f := fakeprovider.Start(fakeprovider.Behavior{})
		t.Cleanup(f.Close)
		fakes[typ] = f
		name := strings.ToLower(string(typ))
		p := newProvider(typ, name, f.URL)
		p.Models = []routetable.Model{{Name: "emb-" + name, InputPrice: "0.02", Embeddings: true}}
		tbl.Providers = append(tbl.Providers, p)
		tbl.Routes = append(tbl.Routes, routetable.Route{ID: "team-a/emb-" + name, Namespace: "team-a", Name: "emb-" + name, Model: "emb-" + name,
			Targets: []routetable.Target{{Provider: "team-a/" + name, Model: "emb-" + name, Weight: 1}}, Retry: routetable.Retry{Attempts: 1}})
	}
	if err := tbl.Finalize(); err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{Translators: providers.For})
	if err := srv.SetTable(tbl); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL, fakes
}

func embClient(url string) openai.Client {
	return (&gateway{URL: url}).client(testKey)
}

func TestEmbeddingsEveryProvider(t *testing.T) {
	url, fakes := embeddingGateway(t)
	c := embClient(url)
	inputs := []string{"the quick brown fox", "jumps over the lazy dog"}
	for _, et := range embeddingTypes {
		model := "emb-" + strings.ToLower(string(et.typ))
		t.Run(string(et.typ), func(t *testing.T) {
			f := fakes[et.typ]
			f.Reset()
			resp, err := c.Embeddings.New(ctx(t), openai.EmbeddingNewParams{
				Model:      model,
				Input:      openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: inputs},
				Dimensions: openai.Int(4),
			})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Model != model || resp.Object != "list" || len(resp.Data) != len(inputs) {
				t.Fatalf("model=%q object=%q data=%d", resp.Model, resp.Object, len(resp.Data))
			}
			for i, in := range inputs {
				d := resp.Data[i]
				want := fakeprovider.Embedding(model, in, 4)
				if d.Index != int64(i) || d.Object != "embedding" || !equalVectors(d.Embedding, want) {
					t.Errorf("data[%d] = %+v, want index %d vector %v", i, d, i, want)
				}
			}
			if et.usage && (resp.Usage.PromptTokens == 0 || resp.Usage.TotalTokens != resp.Usage.PromptTokens) {
				t.Errorf("usage = %+v", resp.Usage)
			}
			reqs := f.Requests()
			if len(reqs) != 1 {
				t.Fatalf("provider saw %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPost || !strings.HasSuffix(r.Path, et.path) {
				t.Errorf("upstream %s %s, want POST ...%s", r.Method, r.Path, et.path)
			}
			if et.authHeader != "" && !strings.Contains(r.Header.Get(et.authHeader), "sk-provider-secret-") {
				t.Errorf("upstream %s header = %q", et.authHeader, r.Header.Get(et.authHeader))
			}
			if strings.Contains(string(r.Body), testKey) || strings.Contains(r.Header.Get("Authorization"), testKey) {
				t.Error("the client's gateway key reached the provider")
			}
		})
	}
}

func TestEmbeddingsSingleString(t *testing.T) {
	url, _ := embeddingGateway(t)
	c := embClient(url)
	for _, et := range embeddingTypes {
		model := "emb-" + strings.ToLower(string(et.typ))
		t.Run(string(et.typ), func(t *testing.T) {
			resp, err := c.Embeddings.New(ctx(t), openai.EmbeddingNewParams{
				Model: model,
				Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello")},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Data) != 1 || !equalVectors(resp.Data[0].Embedding, fakeprovider.Embedding(model, "hello", 0)) {
				t.Fatalf("data = %+v", resp.Data)
			}
		})
	}
}

// TestEmbeddingsBase64 asks for encoding_format base64 over plain HTTP (the
// SDK types hold float vectors only) and decodes what comes back: a base64
// string of little-endian float32s, or a float array for providers that
// only produce floats.
func TestEmbeddingsBase64(t *testing.T) {
	url, _ := embeddingGateway(t)
	for _, et := range embeddingTypes {
		model := "emb-" + strings.ToLower(string(et.typ))
		t.Run(string(et.typ), func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx(t), http.MethodPost, url+"/v1/embeddings",
				strings.NewReader(`{"model":"`+model+`","input":"hello","encoding_format":"base64"}`))
			req.Header.Set("Authorization", "Bearer "+testKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var out struct {
				Data []struct {
					Embedding json.RawMessage `json:"embedding"`
				} `json:"data"`
			}
			if err := json.Unmarshal(body, &out); err != nil || len(out.Data) != 1 {
				t.Fatalf("%s: %v", body, err)
			}
			want := fakeprovider.Embedding(model, "hello", 0)
			got, err := decodeEmbedding(out.Data[0].Embedding)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("got %d values, want %d", len(got), len(want))
			}
			for i := range want {
				if float32(got[i]) != float32(want[i]) {
					t.Errorf("[%d] = %v, want %v", i, got[i], want[i])
				}
			}
			if out.Data[0].Embedding[0] != '"' {
				t.Errorf("%s: the gateway answered floats to an encoding_format=base64 request", et.typ)
			}
		})
	}
}

func TestEmbeddingsUnsupportedProvider(t *testing.T) {
	url, fakes := embeddingGateway(t)
	c := embClient(url)
	for _, typ := range noEmbeddingTypes {
		t.Run(string(typ), func(t *testing.T) {
			_, err := c.Embeddings.New(ctx(t), openai.EmbeddingNewParams{
				Model: "emb-" + strings.ToLower(string(typ)),
				Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")},
			})
			var ae *openai.Error
			if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || ae.Code != "embeddings_unsupported" {
				t.Fatalf("err = %v, want 400 embeddings_unsupported", err)
			}
			if n := fakes[typ].Count(); n != 0 {
				t.Errorf("provider saw %d requests", n)
			}
		})
	}
}

func TestEmbeddingsErrors(t *testing.T) {
	url, fakes := embeddingGateway(t)
	c := embClient(url)
	newEmb := func(model string, in openai.EmbeddingNewParamsInputUnion) error {
		_, err := c.Embeddings.New(ctx(t), openai.EmbeddingNewParams{Model: model, Input: in})
		return err
	}
	status := func(err error) int {
		var ae *openai.Error
		if errors.As(err, &ae) {
			return ae.StatusCode
		}
		return 0
	}

	t.Run("token ids to Gemini", func(t *testing.T) {
		err := newEmb("emb-gemini", openai.EmbeddingNewParamsInputUnion{OfArrayOfTokens: []int64{1, 2, 3}})
		if status(err) != http.StatusBadRequest || fakes[routetable.ProviderGemini].Count() != 0 {
			t.Fatalf("err = %v, upstream requests %d", err, fakes[routetable.ProviderGemini].Count())
		}
	})
	t.Run("token ids to OpenAI pass", func(t *testing.T) {
		if err := newEmb("emb-openai", openai.EmbeddingNewParamsInputUnion{OfArrayOfTokens: []int64{1, 2, 3}}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unknown model", func(t *testing.T) {
		if err := newEmb("emb-nope", openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")}); status(err) != http.StatusNotFound {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("empty input", func(t *testing.T) {
		if err := newEmb("emb-openai", openai.EmbeddingNewParamsInputUnion{OfString: openai.String("")}); status(err) != http.StatusBadRequest {
			t.Fatalf("err = %v", err)
		}
	})
	for _, et := range embeddingTypes {
		model := "emb-" + strings.ToLower(string(et.typ))
		t.Run("upstream 429 "+string(et.typ), func(t *testing.T) {
			f := fakes[et.typ]
			f.SetBehavior(fakeprovider.Behavior{FailFirst: 1 << 30, FailStatus: http.StatusTooManyRequests, RetryAfter: 3})
			defer f.SetBehavior(fakeprovider.Behavior{})
			err := newEmb(model, openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")})
			var ae *openai.Error
			if !errors.As(err, &ae) || ae.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("err = %v, want 429", err)
			}
			if strings.Contains(ae.Message, "sk-provider-secret") {
				t.Errorf("error leaks the provider key: %s", ae.Message)
			}
		})
		t.Run("upstream 400 "+string(et.typ), func(t *testing.T) {
			f := fakes[et.typ]
			f.SetBehavior(fakeprovider.Behavior{FailFirst: 1 << 30, FailStatus: http.StatusBadRequest})
			defer f.SetBehavior(fakeprovider.Behavior{})
			err := newEmb(model, openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")})
			var ae *openai.Error
			if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || ae.Type != "invalid_request_error" {
				t.Fatalf("err = %v, want 400 invalid_request_error", err)
			}
		})
	}
}

// decodeEmbedding reads an embedding given as a float array or as base64
// little-endian float32s.
func decodeEmbedding(raw json.RawMessage) ([]float64, error) {
	var fs []float64
	if json.Unmarshal(raw, &fs) == nil {
		return fs, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(b)/4)
	for i := range out {
		out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
	}
	return out, nil
}

func equalVectors(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
