package metering_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/go-logr/logr"

	"tollgate.dev/tollgate/dataplane/metering"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/server"
	"tollgate.dev/tollgate/dataplane/translate/providers"
)

// countingUpstream answers every chat completion with 1000 prompt and 1000
// completion tokens and counts the calls.
type countingUpstream struct{ calls atomic.Int64 }

func (u *countingUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	u.calls.Add(1)
	body := `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000,"completion_tokens":1000,"total_tokens":2000}}`
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

func TestBudgetRefusedBeforeUpstream(t *testing.T) {
	const secret = "tg-test-0123456789abcdefghijklmnopqrstuvwxyzABCDEF"
	tb := &routetable.Table{
		Keys: []routetable.Key{{ID: "ns/app", Namespace: "ns", Name: "app", Team: "ml", Hash: server.HashKey(secret),
			Budget: &routetable.Budget{Amount: "0.01", Currency: "USD", Period: routetable.PeriodDaily}}},
		Providers: []routetable.Provider{{ID: "ns/openai", Namespace: "ns", Name: "openai", Type: routetable.ProviderOpenAI,
			BaseURL: "http://upstream.invalid/v1", APIKey: "sk-x", Currency: "USD",
			Models: []routetable.Model{{Name: "gpt-4o", InputPrice: "2.50", OutputPrice: "10.00"}}}},
		Routes: []routetable.Route{{ID: "ns/chat", Namespace: "ns", Name: "chat", Model: "chat",
			Targets: []routetable.Target{{Provider: "ns/openai", Model: "gpt-4o", Weight: 1}}, Retry: routetable.Retry{Attempts: 1}}},
	}
	if err := tb.Finalize(); err != nil {
		t.Fatal(err)
	}
	up := &countingUpstream{}
	m := metering.New(metering.Options{})
	m.SetTable(tb)
	s := server.New(server.Options{Translators: providers.For, Client: &http.Client{Transport: up}, Log: logr.Discard(), Meter: m})
	if err := s.SetTable(tb); err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	do := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
			strings.NewReader(`{"model":"chat","messages":[{"role":"user","content":"hello"}]}`))
		req.Header.Set("Authorization", "Bearer "+secret)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	// 1000 × 2.50 + 1000 × 10.00 per 1M = 0.0125: the first request is
	// admitted (nothing spent yet) and takes the key over its budget.
	if w := do(); w.Code != http.StatusOK {
		t.Fatalf("first request: %d %s", w.Code, w.Body)
	}
	w := do()
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("second request: %d %s", w.Code, w.Body)
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Error.Code != "budget_exceeded" || !strings.Contains(body.Error.Message, "spent 0.0125 of 0.01 USD") {
		t.Errorf("error = %+v", body.Error)
	}
	if w.Header().Get("Retry-After") == "" {
		t.Error("no Retry-After on a budget refusal")
	}
	if n := up.calls.Load(); n != 1 {
		t.Errorf("upstream called %d times, want 1: the refusal must come before any upstream call", n)
	}
}
