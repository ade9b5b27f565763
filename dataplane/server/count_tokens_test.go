package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"tollgate.dev/tollgate/dataplane/guard"
	"tollgate.dev/tollgate/dataplane/metering"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/server"
	"tollgate.dev/tollgate/dataplane/translate/providers"
)

const (
	countKey        = "tg-count-0123456789abcdefghijklmnopqrstuvwxyzAB"
	countGPTOnlyKey = "tg-count-gpt-only-0123456789abcdefghijklmnopqr"
	countPrivateKey = "tg-count-private-0123456789abcdefghijklmnopqrs"
	upstreamSecret  = "sk-ant-upstream-secret"
)

// upstreamCall is one request an upstream received.
type upstreamCall struct {
	path   string
	header http.Header
	body   map[string]any
}

// fakeUpstream records every request and answers it with answer.
type fakeUpstream struct {
	*httptest.Server
	mu    sync.Mutex
	calls []upstreamCall
}

func startUpstream(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *fakeUpstream {
	u := &fakeUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c := upstreamCall{path: r.URL.Path, header: r.Header.Clone()}
		_ = json.Unmarshal(b, &c.body)
		u.mu.Lock()
		u.calls = append(u.calls, c)
		u.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *fakeUpstream) take() []upstreamCall {
	u.mu.Lock()
	defer u.mu.Unlock()
	c := u.calls
	u.calls = nil
	return c
}

// anthropicAPI answers in Anthropic's documented wire format: the Token
// Counting API ({"input_tokens": N}) and a minimal Messages answer.
func anthropicAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/v1/messages/count_tokens":
		_, _ = io.WriteString(w, `{"input_tokens":1234}`)
	case "/v1/messages":
		_, _ = io.WriteString(w, `{"id":"msg_1","type":"message","role":"assistant","model":"claude-upstream-1",`+
			`"content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"type":"error","error":{"type":"not_found_error","message":"no such path"}}`)
	}
}

func overloaded(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(529)
	_, _ = io.WriteString(w, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
}

// geminiAPI answers in the Gemini API's documented wire format:
// models.countTokens ({"totalTokens": N, ...}).
func geminiAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path != "/v1beta/models/gemini-upstream-1:countTokens" {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":{"code":404,"message":"no such method","status":"NOT_FOUND"}}`)
		return
	}
	_, _ = io.WriteString(w, `{"totalTokens":321,"promptTokensDetails":[{"modality":"TEXT","tokenCount":321}]}`)
}

// bedrockAPI answers in the Bedrock Runtime's documented wire format:
// CountTokens ({"inputTokens": N}).
func bedrockAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path != "/model/"+bedrockModel+"/count-tokens" {
		w.Header().Set("x-amzn-ErrorType", "UnknownOperationException")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"message":"no such operation"}`)
		return
	}
	_, _ = io.WriteString(w, `{"inputTokens":77}`)
}

// failing answers 500 in the error shape of the upstream's dialect.
func failing(body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, body)
	}
}

const (
	bedrockModel     = "anthropic.claude-sonnet-4-5-v1:0"
	awsAccessKey     = "AKIDCOUNTEXAMPLE"
	awsSecretKey     = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYCOUNTSECRET"
	geminiServerDown = `{"error":{"code":500,"message":"Internal error encountered.","status":"INTERNAL"}}`
	bedrockDown      = `{"message":"The server encountered an internal error."}`
)

type countGateway struct {
	h                    http.Handler
	anthropic, down, oai *fakeUpstream
	gemini, geminiDown   *fakeUpstream
	bedrock, bedrockDown *fakeUpstream
	metrics              *server.Metrics
}

// upstreams names every fake upstream for checkUpstreamCalls.
func (g *countGateway) upstreams() map[string]*fakeUpstream {
	return map[string]*fakeUpstream{"anthropic": g.anthropic, "down": g.down, "oai": g.oai,
		"gemini": g.gemini, "gemini-down": g.geminiDown, "bedrock": g.bedrock, "bedrock-down": g.bedrockDown}
}

// newCountGateway serves routes claude (an Anthropic target), claude-down
// (an Anthropic target whose API is overloaded), gpt (an OpenAI target),
// gemini and bedrock (targets of those types, Bedrock SigV4-signed) and
// gemini-down and bedrock-down (their counting APIs fail with 500) with the
// guard and metering dataplane.Run wires; the key countKey may send one
// request a minute.
func newCountGateway(t *testing.T) *countGateway {
	g := &countGateway{
		anthropic: startUpstream(t, anthropicAPI),
		down:      startUpstream(t, overloaded),
		oai: startUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
			t.Error("the OpenAI target has no counting API and must not be called")
			w.WriteHeader(http.StatusInternalServerError)
		}),
		gemini:      startUpstream(t, geminiAPI),
		geminiDown:  startUpstream(t, failing(geminiServerDown)),
		bedrock:     startUpstream(t, bedrockAPI),
		bedrockDown: startUpstream(t, failing(bedrockDown)),
	}
	tb := &routetable.Table{Keys: []routetable.Key{
		{ID: "team/app", Namespace: "team", Name: "app", Team: "t", Hash: server.HashKey(countKey), RequestsPerMinute: 1},
		{ID: "team/gpt-only", Namespace: "team", Name: "gpt-only", Hash: server.HashKey(countGPTOnlyKey), AllowedRoutes: []string{"team/gpt"}},
		{ID: "team/private", Namespace: "team", Name: "private", Hash: server.HashKey(countPrivateKey),
			DataPolicy: &routetable.DataPolicy{Action: routetable.DataSovereignOnly}},
	}}
	for _, p := range []struct {
		route, name, url string
		typ              routetable.ProviderType
		model            string
	}{
		{"claude", "anthropic", g.anthropic.URL, routetable.ProviderAnthropic, "claude-upstream-1"},
		{"claude-down", "anthropic-down", g.down.URL, routetable.ProviderAnthropic, "claude-upstream-1"},
		{"gpt", "openai", g.oai.URL, routetable.ProviderOpenAI, "gpt-upstream"},
		{"gemini", "gemini", g.gemini.URL, routetable.ProviderGemini, "gemini-upstream-1"},
		{"gemini-down", "gemini-down", g.geminiDown.URL, routetable.ProviderGemini, "gemini-upstream-1"},
		{"bedrock", "bedrock", g.bedrock.URL, routetable.ProviderBedrock, bedrockModel},
		{"bedrock-down", "bedrock-down", g.bedrockDown.URL, routetable.ProviderBedrock, bedrockModel},
	} {
		prov := routetable.Provider{ID: "team/" + p.name, Namespace: "team", Name: p.name, Type: p.typ,
			BaseURL: p.url, APIKey: upstreamSecret, Locality: routetable.LocalityExternal, Currency: "USD",
			Models: []routetable.Model{{Name: p.model, InputPrice: "1.00", OutputPrice: "1.00"}}}
		if p.typ == routetable.ProviderBedrock {
			prov.APIKey, prov.Region, prov.AWSAccessKeyID, prov.AWSSecretAccessKey = "", "us-east-1", awsAccessKey, awsSecretKey
		}
		tb.Providers = append(tb.Providers, prov)
		tb.Routes = append(tb.Routes, routetable.Route{ID: "team/" + p.route, Namespace: "team", Name: p.route, Model: p.route,
			Targets: []routetable.Target{{Provider: "team/" + p.name, Model: p.model, Weight: 1}}, Retry: routetable.Retry{Attempts: 1}})
	}
	if err := tb.Finalize(); err != nil {
		t.Fatal(err)
	}
	m := metering.New(metering.Options{Registerer: prometheus.NewRegistry(), Log: logr.Discard()})
	m.SetTable(tb)
	t.Cleanup(m.Close)
	g.metrics = server.NewMetrics(nil)
	s := server.New(server.Options{Translators: providers.For, Log: logr.Discard(), Guard: guard.New(nil),
		Meter: m, Metrics: g.metrics, MaxBodyBytes: 4096})
	if err := s.SetTable(tb); err != nil {
		t.Fatal(err)
	}
	g.h = s.Handler()
	return g
}

type countHeaders struct{ apiKey, bearer string }

func (g *countGateway) post(path string, h countHeaders, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	if h.apiKey != "" {
		req.Header.Set("x-api-key", h.apiKey)
	}
	if h.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+h.bearer)
	}
	rec := httptest.NewRecorder()
	g.h.ServeHTTP(rec, req)
	return rec
}

// countBody is a count request for model: a system prompt of 9 bytes and
// a user turn of 12, so the local estimate is (21+3)/4 = 6 tokens.
func countBody(model string) string {
	return `{"model":"` + model + `","system":"Be brief.","messages":[{"role":"user","content":"Hello, world"}]}`
}

func TestCountTokens(t *testing.T) {
	g := newCountGateway(t)
	for _, tc := range []struct {
		name     string
		auth     countHeaders
		body     string
		status   int
		errType  string // Anthropic error type, for errors
		answer   string // body, for 200s
		countBy  string // x-tollgate-token-count
		upstream string // which fake upstream is called ("" none)
		same     bool   // /v1/messages gives the same error for this body
	}{
		{name: "anthropic counts (x-api-key)", auth: countHeaders{apiKey: countKey}, body: countBody("claude"),
			status: 200, answer: `{"input_tokens":1234}`, countBy: "provider", upstream: "anthropic"},
		{name: "anthropic counts (bearer)", auth: countHeaders{bearer: countKey}, body: countBody("claude"),
			status: 200, answer: `{"input_tokens":1234}`, countBy: "provider", upstream: "anthropic"},
		{name: "max_tokens is accepted", auth: countHeaders{apiKey: countKey},
			body:   `{"model":"claude","max_tokens":100,"messages":[{"role":"user","content":"Hi"}]}`,
			status: 200, answer: `{"input_tokens":1234}`, countBy: "provider", upstream: "anthropic"},
		{name: "openai target is estimated", auth: countHeaders{apiKey: countKey}, body: countBody("gpt"),
			status: 200, answer: `{"input_tokens":6}`, countBy: "estimated"},
		{name: "failing counting API is estimated", auth: countHeaders{apiKey: countKey}, body: countBody("claude-down"),
			status: 200, answer: `{"input_tokens":6}`, countBy: "estimated", upstream: "down"},
		{name: "gemini counts", auth: countHeaders{apiKey: countKey}, body: countBody("gemini"),
			status: 200, answer: `{"input_tokens":321}`, countBy: "provider", upstream: "gemini"},
		{name: "failing gemini countTokens is estimated", auth: countHeaders{apiKey: countKey}, body: countBody("gemini-down"),
			status: 200, answer: `{"input_tokens":6}`, countBy: "estimated", upstream: "gemini-down"},
		{name: "bedrock counts", auth: countHeaders{apiKey: countKey}, body: countBody("bedrock"),
			status: 200, answer: `{"input_tokens":77}`, countBy: "provider", upstream: "bedrock"},
		{name: "failing bedrock CountTokens is estimated", auth: countHeaders{apiKey: countKey}, body: countBody("bedrock-down"),
			status: 200, answer: `{"input_tokens":6}`, countBy: "estimated", upstream: "bedrock-down"},
		{name: "sovereign-only data never leaves", auth: countHeaders{apiKey: countPrivateKey},
			body:   `{"model":"claude","messages":[{"role":"user","content":"mail jane.doe@example.com"}]}`,
			status: 200, answer: `{"input_tokens":7}`, countBy: "estimated"},
		{name: "not JSON", auth: countHeaders{apiKey: countKey}, body: `{"model":`,
			status: 400, errType: "invalid_request_error", same: true},
		{name: "no messages", auth: countHeaders{apiKey: countKey}, body: `{"model":"claude"}`,
			status: 400, errType: "invalid_request_error"},
		{name: "body too large", auth: countHeaders{apiKey: countKey}, body: countBody(strings.Repeat("x", 5000)),
			status: 413, errType: "request_too_large", same: true},
		{name: "unknown model", auth: countHeaders{apiKey: countKey}, body: countBody("nope"),
			status: 404, errType: "not_found_error", same: true},
		{name: "route not allowed for the key", auth: countHeaders{apiKey: countGPTOnlyKey}, body: countBody("claude"),
			status: 403, errType: "permission_error", same: true},
		{name: "no key", body: countBody("claude"), status: 401, errType: "authentication_error", same: true},
		{name: "wrong key", auth: countHeaders{apiKey: "tg-not-a-key"}, body: countBody("claude"),
			status: 401, errType: "authentication_error", same: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := g.post("/v1/messages/count_tokens", tc.auth, tc.body)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if out := rec.Body.String() + headerText(rec.Header()); strings.Contains(out, upstreamSecret) || strings.Contains(out, awsSecretKey) {
				t.Error("the provider credential is echoed")
			}
			if tc.status == 200 {
				if got := rec.Body.String(); got != tc.answer {
					t.Errorf("body %s, want %s", got, tc.answer)
				}
				if got := rec.Header().Get("x-tollgate-token-count"); got != tc.countBy {
					t.Errorf("x-tollgate-token-count = %q, want %q", got, tc.countBy)
				}
			} else {
				var e struct {
					Type  string `json:"type"`
					Error struct {
						Type    string `json:"type"`
						Message string `json:"message"`
					} `json:"error"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Type != "error" || e.Error.Type != tc.errType || e.Error.Message == "" {
					t.Errorf("not an Anthropic error of type %s: %s", tc.errType, rec.Body)
				}
				if tc.same {
					msg := g.post("/v1/messages", tc.auth, withMaxTokens(tc.body))
					if msg.Code != rec.Code || msg.Body.String() != rec.Body.String() {
						t.Errorf("/v1/messages answers %d %s, count_tokens %d %s", msg.Code, msg.Body, rec.Code, rec.Body)
					}
				}
			}
			checkUpstreamCalls(t, g, tc.upstream)
		})
	}
}

// withMaxTokens makes a count body a Messages body.
func withMaxTokens(body string) string {
	if !strings.HasPrefix(body, `{"model":"`) {
		return body
	}
	return `{"max_tokens":10,` + body[1:]
}

func headerText(h http.Header) string {
	var b strings.Builder
	_ = h.Write(&b)
	return b.String()
}

// checkUpstreamCalls checks that only the named upstream was called, once,
// and that it saw its provider's documented counting request with the
// provider's credential and the target model.
func checkUpstreamCalls(t *testing.T, g *countGateway, want string) {
	t.Helper()
	for name, u := range g.upstreams() {
		calls := u.take()
		if name != want {
			if len(calls) > 0 {
				t.Errorf("upstream %s called: %+v", name, calls)
			}
			continue
		}
		if len(calls) != 1 {
			t.Fatalf("upstream %s called %d times, want once", name, len(calls))
		}
		switch name {
		case "gemini", "gemini-down":
			checkGeminiCount(t, calls[0])
		case "bedrock", "bedrock-down":
			checkBedrockCount(t, calls[0])
		default:
			checkAnthropicCount(t, calls[0])
		}
	}
}

// checkKeyed checks the path of a call and that it carries the provider's
// key in keyHeader and no client credential.
func checkKeyed(t *testing.T, c upstreamCall, path, keyHeader string) {
	t.Helper()
	if c.path != path {
		t.Errorf("path %s, want %s", c.path, path)
	}
	if got := c.header.Get(keyHeader); got != upstreamSecret {
		t.Errorf("%s %q, want the provider's credential", keyHeader, got)
	}
	for _, h := range []string{"Authorization", "x-api-key"} {
		if h != keyHeader && c.header.Get(h) != "" {
			t.Errorf("the client's %s header reached the provider", h)
		}
	}
}

func checkAnthropicCount(t *testing.T, c upstreamCall) {
	t.Helper()
	checkKeyed(t, c, "/v1/messages/count_tokens", "x-api-key")
	if got := c.header.Get("anthropic-version"); got != "2023-06-01" {
		t.Errorf("anthropic-version %q", got)
	}
	if c.body["model"] != "claude-upstream-1" {
		t.Errorf("model %v, want the target model", c.body["model"])
	}
	for _, f := range []string{"max_tokens", "stream", "temperature"} {
		if _, ok := c.body[f]; ok {
			t.Errorf("count_tokens body carries %s: %v", f, c.body)
		}
	}
	if len(c.body["messages"].([]any)) != 1 {
		t.Errorf("messages %v", c.body["messages"])
	}
}

// checkGeminiCount checks a models.countTokens request: the target model in
// the path and in generateContentRequest, the key in x-goog-api-key.
func checkGeminiCount(t *testing.T, c upstreamCall) {
	t.Helper()
	checkKeyed(t, c, "/v1beta/models/gemini-upstream-1:countTokens", "x-goog-api-key")
	gcr, _ := c.body["generateContentRequest"].(map[string]any)
	if len(c.body) != 1 || gcr == nil {
		t.Fatalf("body is not {generateContentRequest}: %v", c.body)
	}
	if gcr["model"] != "models/gemini-upstream-1" {
		t.Errorf("model %v, want models/gemini-upstream-1", gcr["model"])
	}
	if contents, _ := gcr["contents"].([]any); len(contents) != 1 || gcr["systemInstruction"] == nil {
		t.Errorf("prompt %v", gcr)
	}
}

// checkBedrockCount checks a CountTokens request: the target model in the
// path, a SigV4 signature with the provider's access key and region, and
// the Converse prompt under input.converse.
func checkBedrockCount(t *testing.T, c upstreamCall) {
	t.Helper()
	if c.path != "/model/"+bedrockModel+"/count-tokens" {
		t.Errorf("path %s", c.path)
	}
	auth := c.header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+awsAccessKey+"/") || !strings.Contains(auth, "/us-east-1/bedrock/aws4_request") ||
		c.header.Get("X-Amz-Date") == "" {
		t.Errorf("not SigV4-signed for the provider: Authorization %q", auth)
	}
	if strings.Contains(headerText(c.header), awsSecretKey) || c.header.Get("x-api-key") != "" {
		t.Error("a secret or the client's credential reached the provider")
	}
	input, _ := c.body["input"].(map[string]any)
	conv, _ := input["converse"].(map[string]any)
	if len(c.body) != 1 || len(input) != 1 || conv == nil {
		t.Fatalf("body is not {input: {converse}}: %v", c.body)
	}
	if msgs, _ := conv["messages"].([]any); len(msgs) != 1 || conv["system"] == nil {
		t.Errorf("prompt %v", conv)
	}
	if _, ok := conv["inferenceConfig"]; ok {
		t.Errorf("count body carries inferenceConfig: %v", conv)
	}
}

// TestCountTokensIsFree checks that counting consumes no request budget
// (the key may send one request a minute) and is counted in
// tollgate_requests_total with the target that answered.
func TestCountTokensIsFree(t *testing.T) {
	g := newCountGateway(t)
	for range 3 {
		if rec := g.post("/v1/messages/count_tokens", countHeaders{apiKey: countKey}, countBody("claude")); rec.Code != 200 {
			t.Fatalf("count: %d %s", rec.Code, rec.Body)
		}
	}
	g.anthropic.take()
	rec := g.post("/v1/messages", countHeaders{apiKey: countKey}, withMaxTokens(countBody("claude")))
	if rec.Code != 200 {
		t.Fatalf("the Messages request after three counts was refused: %d %s", rec.Code, rec.Body)
	}
	if rec := g.post("/v1/messages", countHeaders{apiKey: countKey}, withMaxTokens(countBody("claude"))); rec.Code != 429 {
		t.Errorf("the second Messages request within the minute got %d, want 429 (is the limit enforced at all?)", rec.Code)
	}
	g.anthropic.take()
	var counted dto.Metric
	if err := g.metrics.Requests.WithLabelValues("team", "app", "t", "claude", "anthropic", "claude-upstream-1", "200").Write(&counted); err != nil {
		t.Fatal(err)
	}
	if counted.GetCounter().GetValue() != 4 { // three counts, one message
		t.Errorf("tollgate_requests_total = %v, want 4", counted.GetCounter().GetValue())
	}
}
