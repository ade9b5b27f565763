package ollama

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
	}{
		{name: "model not pulled", status: 404, body: `{"error":"model \"llama9\" not found, try pulling it first"}`,
			wantStatus: 404, wantType: openai.TypeNotFound, wantCode: "model_not_found", wantMsg: `model "llama9" not found, try pulling it first`},
		{name: "bad request", status: 400, body: `{"error":"invalid options: foo"}`,
			wantStatus: 400, wantType: openai.TypeInvalidRequest, wantMsg: "invalid options: foo"},
		{name: "busy with retry-after", status: 503, header: http.Header{"Retry-After": {"3"}}, body: `{"error":"server busy, please try again.  maximum pending requests exceeded"}`,
			wantStatus: 503, wantType: openai.TypeServer, wantMsg: "server busy, please try again.  maximum pending requests exceeded", retry: 3 * time.Second},
		{name: "proxy openai shape", status: 401, body: `{"error":{"message":"bad token Bearer abcdefghijkl"}}`,
			wantStatus: 401, wantType: openai.TypeAuthentication, wantMsg: "bad token Bearer [redacted]"},
		{name: "html", status: 502, body: "<html><body><h1>502 Bad Gateway</h1></body></html>",
			wantStatus: 502, wantType: openai.TypeServer, wantMsg: "upstream returned 502 Bad Gateway: 502 Bad Gateway"},
		{name: "odd status", status: 200, body: ``, wantStatus: 502, wantType: openai.TypeServer, wantMsg: "upstream returned 200 OK"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := New().Error(tc.status, tc.header, []byte(tc.body))
			code := ""
			if e.Code != nil {
				code = *e.Code
			}
			if e.Status != tc.wantStatus || e.Type != tc.wantType || code != tc.wantCode || e.Message != tc.wantMsg || e.RetryAfter != tc.retry ||
				e.Retryable != (tc.wantStatus == 429 || tc.wantStatus >= 500) {
				t.Fatalf("got %+v code %q", e, code)
			}
		})
	}
}

func TestChatRequestRejects(t *testing.T) {
	user := func(parts ...openai.ContentPart) []openai.Message {
		return []openai.Message{{Role: openai.RoleUser, Content: openai.PartsContent(parts...)}}
	}
	two := 2
	tests := []struct {
		name  string
		req   openai.ChatRequest
		media translate.MediaFetcher
		param string
	}{
		{name: "n", req: openai.ChatRequest{N: &two, Messages: user(openai.ContentPart{Type: "text", Text: "x"})}, param: "n"},
		{name: "audio", req: openai.ChatRequest{Messages: user(openai.ContentPart{Type: "input_audio", InputAudio: &openai.InputAudio{Data: "AA==", Format: "wav"}})}, param: "messages[0].content[0].type"},
		{name: "image url without fetcher", req: openai.ChatRequest{Messages: user(openai.ContentPart{Type: "image_url", ImageURL: &openai.ImageURL{URL: "https://example.com/cat.png"}})}, param: "messages[0].content[0].image_url.url"},
		{name: "image fetch fails", media: fakeMedia{}, req: openai.ChatRequest{Messages: user(openai.ContentPart{Type: "image_url", ImageURL: &openai.ImageURL{URL: "https://example.com/404.png"}})}, param: "messages[0].content[0].image_url.url"},
		{name: "bad data url", req: openai.ChatRequest{Messages: user(openai.ContentPart{Type: "image_url", ImageURL: &openai.ImageURL{URL: "data:image/png;base64,@@@"}})}, param: "messages[0].content[0].image_url.url"},
		{name: "ftp image", req: openai.ChatRequest{Messages: user(openai.ContentPart{Type: "image_url", ImageURL: &openai.ImageURL{URL: "ftp://x/y.png"}})}, param: "messages[0].content[0].image_url.url"},
		{name: "arguments not an object", req: openai.ChatRequest{Messages: []openai.Message{{Role: openai.RoleAssistant,
			ToolCalls: []openai.ToolCall{{ID: "c", Type: "function", Function: openai.FunctionCall{Name: "f", Arguments: "[1]"}}}}}}, param: "messages[0].tool_calls[0].function.arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New().ChatRequest(context.Background(), &tc.req, translate.Target{Provider: testProvider(), Model: "m", Media: tc.media})
			var ae *openai.APIError
			if !errors.As(err, &ae) || ae.Status != 400 || ae.Param == nil || *ae.Param != tc.param {
				t.Fatalf("got %v (%+v)", err, ae)
			}
		})
	}
	if _, err := New().ChatRequest(context.Background(), &openai.ChatRequest{}, translate.Target{}); err == nil {
		t.Fatal("no provider accepted")
	}
}

func TestEmbeddings(t *testing.T) {
	req := &openai.EmbeddingRequest{Model: "nomic", Input: json.RawMessage(`["a","b"]`)}
	dims := 64
	req.Dimensions = &dims
	p := testProvider()
	p.APIKey = "k"
	hr, err := New().(translate.Embedder).EmbeddingRequest(context.Background(), req, translate.Target{Provider: p, Model: "nomic-embed-text"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hr.Body)
	if hr.URL.String() != "http://ollama.ai.svc:11434/api/embed" || hr.Header.Get("Authorization") != "Bearer k" ||
		string(body) != `{"model":"nomic-embed-text","input":["a","b"],"dimensions":64}` {
		t.Fatalf("request %s %v %s", hr.URL, hr.Header, body)
	}
	one := &openai.EmbeddingRequest{Model: "nomic", Input: json.RawMessage(`"solo"`)}
	hr, _ = New().(translate.Embedder).EmbeddingRequest(context.Background(), one, translate.Target{Provider: testProvider(), Model: "e"})
	body, _ = io.ReadAll(hr.Body)
	if string(body) != `{"model":"e","input":["solo"]}` || hr.Header.Get("Authorization") != "" {
		t.Fatalf("single input %s %v", body, hr.Header)
	}
	tokens := &openai.EmbeddingRequest{Model: "nomic", Input: json.RawMessage(`[1,2,3]`)}
	if _, err := New().(translate.Embedder).EmbeddingRequest(context.Background(), tokens, translate.Target{Provider: testProvider()}); err == nil {
		t.Fatal("token ids accepted")
	}

	up := `{"model":"nomic-embed-text","embeddings":[[0.01,-0.2],[0.3,0.4]],"total_duration":1,"load_duration":1,"prompt_eval_count":4}`
	resp, err := New().(translate.Embedder).EmbeddingResponse([]byte(up), translate.Target{Model: "nomic-embed-text"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(resp)
	want := `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.01,-0.2]},{"object":"embedding","index":1,"embedding":[0.3,0.4]}],"model":"nomic-embed-text","usage":{"prompt_tokens":4,"completion_tokens":0,"total_tokens":4}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	for _, bad := range []string{`x`, `{}`, `{"embeddings":[{}]}`, `{"error":"model not found"}`} {
		if _, err := New().(translate.Embedder).EmbeddingResponse([]byte(bad), translate.Target{}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestChatResponseErrors(t *testing.T) {
	for _, body := range []string{`nope`, `{"error":"boom"}`, `{"message":{"tool_calls":[{"function":{"name":"f","arguments":[1,}}]}}`,
		`{"message":{"tool_calls":[{"function":{"arguments":{}}}]},"done":true}`} {
		_, err := New().ChatResponse([]byte(body), translate.Target{}, testMeta)
		var ae *openai.APIError
		if !errors.As(err, &ae) || ae.Status != 502 || !strings.HasPrefix(ae.Message, "ollama: ") {
			t.Errorf("%s: %v", body, err)
		}
	}
	// Arguments some templates produce as an encoded string are decoded.
	resp, err := New().ChatResponse([]byte(`{"message":{"tool_calls":[{"function":{"name":"f","arguments":"{\"a\":1}"}}]},"done":true}`), translate.Target{}, testMeta)
	if err != nil || resp.Choices[0].Message.ToolCalls[0].Function.Arguments != `{"a":1}` {
		t.Fatalf("string arguments: %+v %v", resp, err)
	}
}
