package openai

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

func TestError(t *testing.T) {
	now = func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	defer func() { now = time.Now }()
	tests := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		wantStatus int
		wantType   string
		wantCode   string
		wantMsg    string
		retry      time.Duration
		retryable  bool
	}{
		{name: "openai 429 with retry-after-ms", status: 429, header: http.Header{"Retry-After": {"2"}, "Retry-After-Ms": {"1500"}},
			body:       `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			wantStatus: 429, wantType: "requests", wantCode: "rate_limit_exceeded", wantMsg: "Rate limit reached", retry: 1500 * time.Millisecond, retryable: true},
		{name: "azure content filter 400", status: 400,
			body:       `{"error":{"message":"The response was filtered","type":null,"param":"prompt","code":"content_filter","status":400}}`,
			wantStatus: 400, wantType: openai.TypeInvalidRequest, wantCode: "content_filter", wantMsg: "The response was filtered"},
		{name: "vllm numeric code", status: 400, body: `{"object":"error","message":"max_tokens too large","type":"BadRequestError","param":null,"code":400}`,
			wantStatus: 400, wantType: "BadRequestError", wantCode: "400", wantMsg: "max_tokens too large"},
		{name: "string error", status: 500, body: `{"error":"model crashed"}`,
			wantStatus: 500, wantType: openai.TypeServer, wantMsg: "model crashed", retryable: true},
		{name: "azure apim", status: 401, body: `{"statusCode":401,"message":"Access denied due to invalid subscription key."}`,
			wantStatus: 401, wantType: openai.TypeAuthentication, wantMsg: "Access denied due to invalid subscription key."},
		{name: "html 502 with date retry-after", status: 502, header: http.Header{"Retry-After": {"Thu, 01 Jan 2026 00:00:30 GMT"}},
			body:       "<html><head><style>x{}</style></head><body><h1>502 Bad Gateway</h1>\n<p>nginx</p></body></html>",
			wantStatus: 502, wantType: openai.TypeServer, wantMsg: "upstream returned 502 Bad Gateway: 502 Bad Gateway nginx", retry: 30 * time.Second, retryable: true},
		{name: "key echoed", status: 401, body: `{"error":{"message":"Incorrect API key provided: sk-proj-abcdefghijkl1234.","type":"invalid_request_error","code":"invalid_api_key"}}`,
			wantStatus: 401, wantType: openai.TypeInvalidRequest, wantCode: "invalid_api_key", wantMsg: "Incorrect API key provided: [redacted]."},
		{name: "non-error status", status: 302, body: ``, wantStatus: 502, wantType: openai.TypeServer, wantMsg: "upstream returned 302 Found", retryable: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := NewOpenAI().Error(tc.status, tc.header, []byte(tc.body))
			code := ""
			if e.Code != nil {
				code = *e.Code
			}
			if e.Status != tc.wantStatus || e.Type != tc.wantType || code != tc.wantCode || e.Message != tc.wantMsg ||
				e.RetryAfter != tc.retry || e.Retryable != tc.retryable {
				t.Fatalf("got %+v code %q", e, code)
			}
		})
	}
}

func TestChatResponseErrors(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
	}{
		{"not json", `<html>`, 502},
		{"no choices", `{"id":"x","choices":[]}`, 502},
		{"error in 200", `{"error":{"message":"overloaded","type":"server_error"}}`, 502},
		{"error in 200 with code", `{"error":{"message":"bad","code":400}}`, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewCompatible().ChatResponse([]byte(tc.body), translate.Target{}, testMeta)
			var ae *openai.APIError
			if !errors.As(err, &ae) || ae.Status != tc.status {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestEmbeddings(t *testing.T) {
	ctx := context.Background()
	req, aerr := ParseEmbeddingRequest([]byte(`{"model":"emb","input":["a","b"],"dimensions":256,"encoding_format":"float"}`))
	if aerr != nil {
		t.Fatal(aerr)
	}
	p := testProvider()
	p.BaseURL, p.APIKey, p.APIVersion = "https://res.openai.azure.com/", "azkey", ""
	hr, err := NewAzure().EmbeddingRequest(ctx, req, translate.Target{Provider: p, Model: "emb-deploy"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hr.Body)
	if hr.URL.String() != "https://res.openai.azure.com/openai/deployments/emb-deploy/embeddings?api-version="+DefaultAzureAPIVersion ||
		hr.Header.Get("api-key") != "azkey" || strings.Contains(string(body), `"model"`) {
		t.Fatalf("azure embeddings request %s %v %s", hr.URL, hr.Header, body)
	}
	hr, err = NewOpenAI().EmbeddingRequest(ctx, req, translate.Target{Provider: testProvider(), Model: "text-embedding-3-small"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(hr.Body)
	if hr.URL.String() != "https://api.openai.com/v1/embeddings" || !strings.Contains(string(body), `"model":"text-embedding-3-small"`) {
		t.Fatalf("openai embeddings request %s %s", hr.URL, body)
	}

	up := `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1, -2e-3]},{"index":1,"embedding":"AAAAAA=="}],"model":"text-embedding-3-small","usage":{"prompt_tokens":4,"total_tokens":4}}`
	resp, err := NewOpenAI().EmbeddingResponse([]byte(up), translate.Target{Model: "text-embedding-3-small"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(resp)
	want := `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-2e-3]},{"object":"embedding","index":1,"embedding":"AAAAAA=="}],"model":"text-embedding-3-small","usage":{"prompt_tokens":4,"completion_tokens":0,"total_tokens":4}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	for _, bad := range []string{`nope`, `{"data":[{"embedding":{}}]}`, `{"error":"x"}`, `{}`} {
		if _, err := NewOpenAI().EmbeddingResponse([]byte(bad), translate.Target{}); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestChatRequestErrors(t *testing.T) {
	req := &openai.ChatRequest{Model: "m", Messages: []openai.Message{{Role: "user", Content: openai.TextContent("x")}}}
	if _, err := NewOpenAI().ChatRequest(context.Background(), req, translate.Target{}); !errors.Is(err, ErrNoProvider) {
		t.Fatalf("no provider: %v", err)
	}
	if _, err := NewAzure().ChatRequest(context.Background(), req, translate.Target{Provider: testProvider()}); err == nil {
		t.Fatal("azure without deployment accepted")
	}
	p := testProvider()
	p.BaseURL = "http://bad host\x7f/"
	_, err := NewOpenAI().ChatRequest(context.Background(), req, translate.Target{Provider: p, Model: "m"})
	if err == nil || strings.Contains(err.Error(), "bad host") {
		t.Fatalf("bad URL: %v", err)
	}
}

func TestParseChatRequestErrors(t *testing.T) {
	tests := []struct{ body, param, code string }{
		{``, "", CodeInvalidJSON},
		{`[]`, "", CodeInvalidType},
		{`{"messages":[{"role":"user","content":"x"}]}`, "model", CodeMissingParameter},
		{`{"model":"m","messages":[]}`, "messages", CodeEmptyArray},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"bot","content":"y"}]}`, "messages[1].role", CodeInvalidValue},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":1}]}]}`, "messages[0].content[0].text", CodeInvalidType},
		{`{"model":"m","messages":[{"role":"tool","tool_call_id":"nope","content":"r"}]}`, "messages[0].tool_call_id", CodeInvalidValue},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":3}`, "temperature", CodeDecimalAboveMax},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}`, "stream_options", CodeInvalidValue},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"bad name"}}]}`, "tools[0].function.name", CodeInvalidValue},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]}`, "stop", CodeArrayTooLong},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"persistent"}}]}]}`, "messages[0].content[0].cache_control", CodeInvalidValue},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":"ephemeral"}]}]}`, "messages[0].content[0].cache_control", CodeInvalidValue},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":null}]}]}`, "messages[0].content[0].cache_control", CodeInvalidValue},
		{`{"model":"m","messages":[{"role":"system","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral","ttl":"2h"}}]}]}`, "messages[0].content[0].cache_control", CodeInvalidValue},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"Type":"ephemeral"}}]}]}`, "messages[0].content[0].cache_control", CodeInvalidValue},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral","scope":"org"}}]}]}`, "messages[0].content[0].cache_control", CodeInvalidValue},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"},"cache_control":{}}]}`, "tools[0].cache_control", CodeInvalidValue},
	}
	for _, tc := range tests {
		_, aerr := ParseChatRequest([]byte(tc.body))
		if aerr == nil {
			t.Errorf("%s: accepted", tc.body)
			continue
		}
		param, code := "", ""
		if aerr.Param != nil {
			param = *aerr.Param
		}
		if aerr.Code != nil {
			code = *aerr.Code
		}
		if aerr.Status != 400 || param != tc.param || code != tc.code {
			t.Errorf("%s: got %d %q %q %q", tc.body, aerr.Status, param, code, aerr.Message)
		}
	}
}

// TestCacheControlNeverSentUpstream holds prompt-caching markers (Anthropic's
// cache_control, accepted on parts and tools) to the OpenAI family: the
// parser accepts them, and no flavor sends them, whether the body is the
// client's own (passthrough) or re-encoded from the struct.
func TestCacheControlNeverSentUpstream(t *testing.T) {
	bodies := []string{
		`{"model":"m","messages":[{"role":"system","content":[{"type":"text","text":"sys","cache_control":{"type":"ephemeral"}}]},{"role":"user","content":"x"}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"https://x/y.png"},"cache_control":{"type":"ephemeral","ttl":"1h"}}]}],"logit_bias":{"1":2}}`,
		`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"g"},"cache_control":{"type":"ephemeral","ttl":"5m"}}],"store":true}`,
		`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"r","cache_control":{"type":"ephemeral"}}]}],"tools":[{"type":"function","function":{"name":"f"},"cache_control":{"type":"ephemeral"}}],"stream":true}`,
	}
	for i, body := range bodies {
		req, aerr := ParseChatRequest([]byte(body))
		if aerr != nil {
			t.Fatalf("body %d rejected: %v", i, aerr)
		}
		if !strings.Contains(string(mustMarshal(t, req)), "cache_control") {
			t.Fatalf("body %d: the canonical form lost cache_control", i)
		}
		for _, native := range []bool{true, false} {
			r := *req
			if !native {
				r.Native = nil
			}
			for _, tr := range []*Translator{NewOpenAI(), NewAzure(), NewCompatible()} {
				b, err := tr.ChatBody(&r, "target")
				if err != nil {
					t.Fatalf("body %d %s: %v", i, tr.Flavor(), err)
				}
				if strings.Contains(string(b), "cache_control") {
					t.Errorf("body %d %s (native %v): cache_control sent upstream: %s", i, tr.Flavor(), native, b)
				}
				if native && strings.Contains(body, "logit_bias") && !strings.Contains(string(b), "logit_bias") {
					t.Errorf("body %d %s: passthrough lost an unmodelled field: %s", i, tr.Flavor(), b)
				}
			}
		}
		if after := mustMarshal(t, req); !strings.Contains(string(after), "cache_control") {
			t.Fatalf("body %d: ChatBody mutated the request", i)
		}
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
