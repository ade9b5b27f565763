package guard_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/guard"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/server"
	"tollgate.dev/tollgate/dataplane/translate/providers"
)

// fakeProvider is an OpenAI-compatible upstream that records what it
// received and answers by quoting the placeholders it was sent.
type fakeProvider struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newFakeProvider(t *testing.T) *fakeProvider {
	f := &fakeProvider{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.bodies = append(f.bodies, string(b))
		f.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/embeddings") {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,0.25]}],"model":"m","usage":{"prompt_tokens":3,"total_tokens":3}}`)
			return
		}
		if strings.Contains(string(b), `"stream":true`) {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, piece := range []string{"Write to ", "[EMA", "IL_1", "] now. See ["} {
				c, _ := json.Marshal(map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
					"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": piece}}}})
				io.WriteString(w, "data: "+string(c)+"\n\n")
			}
			io.WriteString(w, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n")
			return
		}
		answer := "ok"
		if strings.Contains(string(b), "[EMAIL_1]") {
			answer = "I will write to [EMAIL_1] about card [PAYMENT_CARD_1]."
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": answer}}},
			"usage": map[string]any{"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
		})
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeProvider) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.bodies...)
}

const secret = "tg-test-key"

// gateway serves one route whose primary target is external and whose
// fallback runs in the cluster.
func gateway(t *testing.T, dp *routetable.DataPolicy) (h http.Handler, external, local *fakeProvider) {
	external, local = newFakeProvider(t), newFakeProvider(t)
	sum := sha256.Sum256([]byte(secret))
	tbl := &routetable.Table{
		Providers: []routetable.Provider{
			{ID: "ai/openai", Namespace: "ai", Name: "openai", Type: routetable.ProviderOpenAICompatible, BaseURL: external.URL, Locality: routetable.LocalityExternal},
			{ID: "ai/vllm", Namespace: "ai", Name: "vllm", Type: routetable.ProviderOpenAICompatible, BaseURL: local.URL, Locality: routetable.LocalityInCluster},
		},
		Routes: []routetable.Route{{
			ID: "ai/chat", Namespace: "ai", Name: "chat", Model: "chat",
			Targets:    []routetable.Target{{Provider: "ai/openai", Model: "gpt", Weight: 1}},
			Fallbacks:  []routetable.Target{{Provider: "ai/vllm", Model: "llama"}},
			Retry:      routetable.Retry{Attempts: 1},
			DataPolicy: dp,
		}},
		Keys: []routetable.Key{{ID: "ai/app", Namespace: "ai", Name: "app", Hash: hex.EncodeToString(sum[:])}},
	}
	if err := tbl.Finalize(); err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{Translators: providers.For, Guard: guard.New(nil)})
	srv.SetTable(tbl)
	return srv.Handler(), external, local
}

func chat(t *testing.T, h http.Handler, content string) *httptest.ResponseRecorder {
	return post(t, h, map[string]any{"model": "chat", "messages": []any{map[string]any{"role": "user", "content": content}}})
}

func post(t *testing.T, h http.Handler, req map[string]any) *httptest.ResponseRecorder {
	body, _ := json.Marshal(req)
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(string(body)))
	r.Header.Set("Authorization", "Bearer "+secret)
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestServerSovereignOnly(t *testing.T) {
	h, external, local := gateway(t, &routetable.DataPolicy{Action: routetable.DataSovereignOnly, Detectors: []string{"PaymentCard"}})

	w := chat(t, h, "Summarise our refund policy.")
	if w.Code != http.StatusOK || len(external.received()) != 1 || len(local.received()) != 0 {
		t.Fatalf("clean request: %d %s; external %d, local %d", w.Code, w.Body, len(external.received()), len(local.received()))
	}
	if w.Header().Get("x-tollgate-data-findings") != "" {
		t.Errorf("findings header on a clean request: %q", w.Header().Get("x-tollgate-data-findings"))
	}

	w = chat(t, h, "Refund card 4111 1111 1111 1111 please.")
	if w.Code != http.StatusOK || len(external.received()) != 1 || len(local.received()) != 1 {
		t.Fatalf("request with a card: %d %s; external %d, local %d", w.Code, w.Body, len(external.received()), len(local.received()))
	}
	if got := w.Header().Get("x-tollgate-data-findings"); got != "PaymentCard=1" {
		t.Errorf("findings header = %q", got)
	}
}

func TestServerRedact(t *testing.T) {
	h, external, _ := gateway(t, &routetable.DataPolicy{Action: routetable.DataRedact})
	w := chat(t, h, "Mail jane.doe@example.com that card 4111 1111 1111 1111 was refunded; key AKIAIOSFODNN7EXAMPLE.")
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	got := external.received()
	if len(got) != 1 {
		t.Fatalf("external received %d requests", len(got))
	}
	for _, v := range []string{"jane.doe@example.com", "4111", "AKIAIOSFODNN7EXAMPLE"} {
		if strings.Contains(got[0], v) {
			t.Errorf("the external provider received %q: %s", v, got[0])
		}
	}
	// The answer has the e-mail address back; the card stays masked.
	if !strings.Contains(w.Body.String(), "I will write to jane.doe@example.com about card [PAYMENT_CARD_1].") {
		t.Errorf("answer: %s", w.Body)
	}
	if h := w.Header().Get("x-tollgate-data-findings"); h != "AWSAccessKey=1,Email=1,PaymentCard=1" {
		t.Errorf("findings header = %q", h)
	}
}

func TestServerRefuse(t *testing.T) {
	h, external, local := gateway(t, &routetable.DataPolicy{Action: routetable.DataRefuse, Detectors: []string{"APIKey"}})
	w := chat(t, h, "Why does sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vW7yZ fail?")
	if w.Code != http.StatusBadRequest || len(external.received())+len(local.received()) != 0 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	json.Unmarshal(w.Body.Bytes(), &e)
	if e.Error.Code != guard.CodeSensitiveData || strings.Contains(w.Body.String(), "Ab3dE5") || !strings.Contains(e.Error.Message, "APIKey=1") {
		t.Errorf("refusal: %s", w.Body)
	}
}

func TestServerRedactStream(t *testing.T) {
	h, external, _ := gateway(t, &routetable.DataPolicy{Action: routetable.DataRedact})
	w := post(t, h, map[string]any{"model": "chat", "stream": true,
		"messages": []any{map[string]any{"role": "user", "content": "Mail jane.doe@example.com"}}})
	if w.Code != http.StatusOK || strings.Contains(strings.Join(external.received(), ""), "jane.doe") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var text strings.Builder
	for _, line := range strings.Split(w.Body.String(), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Delta struct{ Content *string }
			}
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("%v: %s", err, data)
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				text.WriteString(*ch.Delta.Content)
			}
		}
	}
	if text.String() != "Write to jane.doe@example.com now. See [" { // the trailing "[" is held back, then flushed at finish
		t.Errorf("streamed text = %q\n%s", text.String(), w.Body)
	}
}

// TestServerEmbeddings checks that embeddings inputs get the same policy as
// prompts: redacted before they leave, or kept in the cluster.
func TestServerEmbeddings(t *testing.T) {
	embed := func(h http.Handler, input any) *httptest.ResponseRecorder {
		b, _ := json.Marshal(map[string]any{"model": "chat", "input": input})
		r := httptest.NewRequest("POST", "/v1/embeddings", strings.NewReader(string(b)))
		r.Header.Set("Authorization", "Bearer "+secret)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	t.Run("redact", func(t *testing.T) {
		h, external, _ := gateway(t, &routetable.DataPolicy{Action: routetable.DataRedact})
		for _, input := range []any{"Mail jane.doe@example.com", []string{"plain", "Mail jane.doe@example.com"}} {
			w := embed(h, input)
			if w.Code != http.StatusOK || !strings.Contains(w.Header().Get("x-tollgate-data-findings"), "Email=1") {
				t.Fatalf("%d %q %s", w.Code, w.Header().Get("x-tollgate-data-findings"), w.Body)
			}
		}
		got := strings.Join(external.received(), "\n")
		if strings.Contains(got, "jane.doe") || !strings.Contains(got, `"input":"Mail [EMAIL_1]"`) || !strings.Contains(got, `"input":["plain","Mail [EMAIL_1]"]`) {
			t.Fatalf("the provider received:\n%s", got)
		}
	})
	t.Run("sovereign only", func(t *testing.T) {
		h, external, local := gateway(t, &routetable.DataPolicy{Action: routetable.DataSovereignOnly})
		if w := embed(h, "card 4111 1111 1111 1111"); w.Code != http.StatusOK {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		if w := embed(h, "nothing to see"); w.Code != http.StatusOK {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		if len(local.received()) != 1 || len(external.received()) != 1 || strings.Contains(external.received()[0], "4111") {
			t.Fatalf("local got %d, external got %d: the card must stay in the cluster and the clean input go out", len(local.received()), len(external.received()))
		}
	})
	t.Run("refuse", func(t *testing.T) {
		h, external, _ := gateway(t, &routetable.DataPolicy{Action: routetable.DataRefuse})
		if w := embed(h, "key AKIAIOSFODNN7EXAMPLE"); w.Code != http.StatusBadRequest || strings.Contains(w.Body.String(), "AKIA") {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		if len(external.received()) != 0 {
			t.Fatal("a refused input reached the provider")
		}
	})
}
