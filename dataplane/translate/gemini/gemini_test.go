package gemini

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/google/go-cmp/cmp"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	"tollgate.dev/tollgate/dataplane/translate/media"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
)

const testKey = "AIzaSy-test-secret-key"

var (
	testProvider = &routetable.Provider{
		ID: "ns/gemini", Type: routetable.ProviderGemini, BaseURL: "https://generativelanguage.googleapis.com/",
		APIKey: testKey, Headers: map[string]string{"X-Team": "search", "x-goog-api-key": "must-be-overridden"},
	}
	testTarget = translate.Target{Provider: testProvider, Model: "gemini-2.5-flash"}
	testMeta   = translate.StreamMeta{ID: "chatcmpl-t1", Created: 1700000000, Model: "public-model"}
	// contract is the ChunkReader contract for Gemini, whose candidates
	// are choices.
	contract = tt.Contract{Meta: testMeta}
)

// requestGolden is what a request fixture translates to. It keeps the body
// as sent (unlike translatetest.RequestGolden, which decodes it) so that
// -update writes the golden files byte for byte as before.
type requestGolden struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

func TestChatRequestGolden(t *testing.T) {
	for _, in := range tt.Fixtures(t, "request", ".json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			var req openai.ChatRequest
			if err := json.Unmarshal(tt.ReadFile(t, in), &req); err != nil {
				t.Fatal(err)
			}
			hr, err := New().ChatRequest(context.Background(), &req, testTarget)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(hr.URL.String(), testKey) {
				t.Fatal("API key leaked into the URL")
			}
			body, _ := io.ReadAll(hr.Body)
			h := map[string]string{}
			for k := range hr.Header {
				h[k] = hr.Header.Get(k)
			}
			tt.CheckJSON(t, tt.GoldenPath(in, ".json"), requestGolden{hr.Method, hr.URL.String(), h, body})
		})
	}
}

func TestChatResponseGolden(t *testing.T) {
	for _, in := range tt.Fixtures(t, "response", ".json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			resp, err := New().ChatResponse(tt.ReadFile(t, in), testTarget, testMeta)
			if err != nil {
				t.Fatal(err)
			}
			tt.CheckJSON(t, tt.GoldenPath(in, ".json"), resp)
		})
	}
}

// streamResult is everything a ChunkReader produced, for golden files.
type streamResult struct {
	Chunks []*openai.ChatChunk `json:"chunks"`
	End    string              `json:"end"`
	Error  *apiErrorGolden     `json:"error,omitempty"`
}

type apiErrorGolden struct {
	Status    int             `json:"status"`
	Retryable bool            `json:"retryable"`
	Body      json.RawMessage `json:"body"`
}

// drain reads r to its end (see translatetest.Drain) into a streamResult.
func drain(t testing.TB, r translate.ChunkReader) streamResult {
	t.Helper()
	chunks, err := tt.Drain(t, r, 10000)
	res := streamResult{Chunks: chunks}
	var ae *openai.APIError
	switch {
	case err == io.EOF:
		res.End = "EOF"
	case errors.Is(err, io.ErrUnexpectedEOF):
		res.End = "unexpected EOF"
	case errors.As(err, &ae):
		res.End = "api error"
		res.Error = &apiErrorGolden{ae.Status, ae.Retryable, ae.MarshalBody()}
	default:
		res.End = "error: " + err.Error()
	}
	return res
}

// checkChunkContract asserts the ChunkReader contract on a stream result,
// and Gemini's own rule: a tool call comes whole in one delta (id, name
// and JSON arguments), as Gemini sends function calls whole.
func checkChunkContract(t *testing.T, res streamResult) {
	t.Helper()
	contract.Check(t, res.Chunks, res.End == "EOF")
	for i, c := range res.Chunks {
		for _, ch := range c.Choices {
			for _, tc := range ch.Delta.ToolCalls {
				if tc.Index == nil || tc.ID == "" || tc.Function.Name == "" || !json.Valid([]byte(tc.Function.Arguments)) {
					t.Fatalf("chunk %d: incomplete tool call delta %+v", i, tc)
				}
			}
		}
	}
}

func TestChatStreamGolden(t *testing.T) {
	for _, in := range tt.Fixtures(t, "stream", ".sse") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			raw := tt.ReadFile(t, in)
			res := drain(t, New().ChatStream(bytes.NewReader(raw), testTarget, testMeta))
			checkChunkContract(t, res)
			tt.CheckJSON(t, tt.GoldenPath(in, ".json"), res)
			tt.CheckSplits(t, raw, func(r io.Reader) streamResult { return drain(t, New().ChatStream(r, testTarget, testMeta)) })
		})
	}
}

func TestStreamIsLazy(t *testing.T) {
	tt.CheckLazy(t, tt.ReadFile(t, "testdata/stream/text.sse"), func(r io.Reader) translate.ChunkReader {
		return New().ChatStream(r, testTarget, testMeta)
	})
}

// TestStreamMatchesResponse checks that the same answer gets the same
// tool-call ids, content and usage streamed or not.
func TestStreamMatchesResponse(t *testing.T) {
	sse := "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"ok\"},{\"functionCall\":{\"name\":\"a\",\"args\":{}}},{\"functionCall\":{\"name\":\"b\",\"args\":{\"x\":1}}}],\"role\":\"model\"},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":1,\"candidatesTokenCount\":2}}\n\n"
	whole := `{"candidates":[{"content":{"parts":[{"text":"ok"},{"functionCall":{"name":"a","args":{}}},{"functionCall":{"name":"b","args":{"x":1}}}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":2}}`
	resp, err := New().ChatResponse([]byte(whole), testTarget, testMeta)
	if err != nil {
		t.Fatal(err)
	}
	res := drain(t, New().ChatStream(strings.NewReader(sse), testTarget, testMeta))
	var calls []openai.ToolCall
	var content, finish string
	for _, c := range res.Chunks {
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				content += *ch.Delta.Content
			}
			for _, tc := range ch.Delta.ToolCalls {
				tc.Index = nil
				calls = append(calls, tc)
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	m := resp.Choices[0]
	if d := cmp.Diff(m.Message.ToolCalls, calls); d != "" {
		t.Errorf("tool calls differ (-response +stream):\n%s", d)
	}
	if content != m.Message.Content.Text || finish != m.FinishReason || finish != openai.FinishToolCalls {
		t.Errorf("stream content %q finish %q; response %q %q", content, finish, m.Message.Content.Text, m.FinishReason)
	}
	if last := res.Chunks[len(res.Chunks)-1]; cmp.Diff(last.Usage, resp.Usage) != "" {
		t.Errorf("usage differs: %+v vs %+v", last.Usage, resp.Usage)
	}
}

func TestRequestErrors(t *testing.T) {
	tests := []struct {
		name, body, param string
	}{
		{"unknown tool id", `{"messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"nope","content":"r"}]}`, "messages[1].tool_call_id"},
		{"args not object", `{"messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "messages[0].tool_calls[0].function.arguments"},
		{"bad role", `{"messages":[{"role":"function","content":"x"}]}`, "messages[0].role"},
		{"image in system", `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]}]}`, "messages[0].content[0]"},
		{"http image without fetcher", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}`, "messages[0].content[0]"},
		{"bad data url", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,%%%"}}]}]}`, "messages[0].content[0]"},
		{"ftp image", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`, "messages[0].content[0]"},
		{"audio format", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA==","format":"flac"}}]}]}`, "messages[0].content[0]"},
		{"file id", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}`, "messages[0].content[0]"},
		{"unknown forced tool", `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"function","function":{"name":"b"}}}`, "tool_choice"},
		{"bad schema", `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a","parameters":{"type":"tuple"}}}]}`, "tools[0].function.parameters"},
		{"bad ref", `{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"$ref":"#/nowhere"}}}}`, "response_format.json_schema.schema"},
		{"effort", `{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"max"}`, "reasoning_effort"},
		{"format", `{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"xml"}}`, "response_format.type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req openai.ChatRequest
			if err := json.Unmarshal([]byte(tt.body), &req); err != nil {
				t.Fatal(err)
			}
			_, err := New().ChatRequest(context.Background(), &req, testTarget)
			var ae *openai.APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Param == nil || *ae.Param != tt.param {
				t.Fatalf("got %#v, want 400 with param %s", err, tt.param)
			}
			if strings.Contains(ae.Message, testKey) {
				t.Fatal("key in error")
			}
		})
	}
}

func TestHTTPImageFetched(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n-not-really-a-png")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cat.png" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(png)
	}))
	defer srv.Close()
	target := testTarget
	target.Media = media.NewFetcher(5*time.Second, 1<<20, true)
	req := openai.ChatRequest{Messages: []openai.Message{{Role: openai.RoleUser, Content: openai.PartsContent(
		openai.ContentPart{Type: openai.PartImageURL, ImageURL: &openai.ImageURL{URL: srv.URL + "/cat.png"}},
	)}}}
	body, err := BuildRequest(context.Background(), &req, target.Media)
	if err != nil {
		t.Fatal(err)
	}
	got := body.Contents[0].Parts[0].InlineData
	if got == nil || got.MimeType != "image/png" || got.Data != base64Encode(png) {
		t.Fatalf("inline data = %+v", got)
	}
	req.Messages[0].Content.Parts[0].ImageURL.URL = srv.URL + "/missing.png"
	_, err = BuildRequest(context.Background(), &req, target.Media)
	var ae *openai.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, "404") {
		t.Fatalf("missing image: got %v", err)
	}
}

func TestChatRequestHeaders(t *testing.T) {
	req := openai.ChatRequest{Messages: []openai.Message{{Role: openai.RoleUser, Content: openai.TextContent("x")}}}
	hr, err := New().ChatRequest(context.Background(), &req, translate.Target{Provider: testProvider, Model: "models/gemini-2.5-pro"})
	if err != nil {
		t.Fatal(err)
	}
	if got := hr.Header.Get("x-goog-api-key"); got != testKey {
		t.Errorf("x-goog-api-key = %q", got)
	}
	if hr.Header.Get("X-Team") != "search" {
		t.Error("provider header lost")
	}
	if want := "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:generateContent"; hr.URL.String() != want {
		t.Errorf("url = %s", hr.URL)
	}
	noKey := *testProvider
	noKey.APIKey = ""
	noKey.Headers = nil
	hr, _ = New().ChatRequest(context.Background(), &req, translate.Target{Provider: &noKey, Model: "m"})
	if _, ok := hr.Header["X-Goog-Api-Key"]; ok {
		t.Error("empty key sent")
	}
	if _, err := New().ChatRequest(context.Background(), &req, translate.Target{Model: "m"}); err == nil {
		t.Error("nil provider accepted")
	}
}

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
		retryable  bool
		retryAfter time.Duration
	}{
		{"rate limit with retry info", 429, nil,
			`{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}`,
			429, openai.TypeRateLimit, "resource_exhausted", "Resource has been exhausted (e.g. check quota).", true, 37 * time.Second},
		{"retry-after header wins", 429, http.Header{"Retry-After": {"5"}},
			`{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}`,
			429, openai.TypeRateLimit, "resource_exhausted", "quota", true, 5 * time.Second},
		{"unusable retry-after header falls back to retry info", 429, http.Header{"Retry-After": {"-1"}},
			`{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}`,
			429, openai.TypeRateLimit, "resource_exhausted", "quota", true, 37 * time.Second},
		{"unavailable", 503, nil, `{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`,
			503, openai.TypeServer, "unavailable", "The model is overloaded.", true, 0},
		{"invalid argument", 400, nil, `{"error":{"code":400,"message":"Invalid JSON payload received. Unknown name \"foo\"","status":"INVALID_ARGUMENT"}}`,
			400, openai.TypeInvalidRequest, "invalid_argument", "Invalid JSON payload received. Unknown name \"foo\"", false, 0},
		{"bad key fails over", 400, nil, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}`,
			400, openai.TypeInvalidRequest, "invalid_argument", "API key not valid. Please pass a valid API key.", true, 0},
		{"not found", 404, nil, `{"error":{"code":404,"message":"models/nope is not found for API version v1beta","status":"NOT_FOUND"}}`,
			404, openai.TypeNotFound, "not_found", "models/nope is not found for API version v1beta", false, 0},
		{"html from a proxy", 502, nil, `<html>Bad Gateway</html>`,
			502, openai.TypeServer, "", "gemini: upstream returned HTTP 502: <html>Bad Gateway</html>", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := New().Error(tt.status, tt.header, []byte(tt.body))
			code := ""
			if e.Code != nil {
				code = *e.Code
			}
			if e.Status != tt.wantStatus || e.Type != tt.wantType || code != tt.wantCode || e.Message != tt.wantMsg || e.Retryable != tt.retryable || e.RetryAfter != tt.retryAfter {
				t.Fatalf("got status=%d type=%s code=%s msg=%q retryable=%v after=%v", e.Status, e.Type, code, e.Message, e.Retryable, e.RetryAfter)
			}
		})
	}
}

func TestEmbeddings(t *testing.T) {
	dims := 256
	req := openai.EmbeddingRequest{Model: "emb", Input: json.RawMessage(`["a","b"]`), Dimensions: &dims}
	hr, err := New().(translate.Embedder).EmbeddingRequest(context.Background(), &req, translate.Target{Provider: testProvider, Model: "text-embedding-004"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://generativelanguage.googleapis.com/v1beta/models/text-embedding-004:batchEmbedContents"; hr.URL.String() != want {
		t.Errorf("url = %s", hr.URL)
	}
	body, _ := io.ReadAll(hr.Body)
	want := `{"requests":[{"model":"models/text-embedding-004","content":{"parts":[{"text":"a"}]},"outputDimensionality":256},{"model":"models/text-embedding-004","content":{"parts":[{"text":"b"}]},"outputDimensionality":256}]}`
	if string(body) != want {
		t.Errorf("body = %s", body)
	}
	resp, err := New().(translate.Embedder).EmbeddingResponse([]byte(`{"embeddings":[{"values":[0.1,-0.2]},{"values":[0.3, 0.4]}]}`), translate.Target{Model: "text-embedding-004"})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(resp)
	if w := `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-0.2]},{"object":"embedding","index":1,"embedding":[0.3,0.4]}],"model":"text-embedding-004"}`; string(got) != w {
		t.Errorf("response = %s", got)
	}
	req.Input = json.RawMessage(`[[1,2,3]]`)
	if _, err := New().(translate.Embedder).EmbeddingRequest(context.Background(), &req, testTarget); err == nil {
		t.Error("token ids accepted")
	}
	if _, err := New().(translate.Embedder).EmbeddingResponse([]byte(`{"embeddings":[{"values":"x"}]}`), testTarget); err == nil {
		t.Error("malformed values accepted")
	}
}

func TestFunctionResponseWrapping(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":1}`:     `{"a":1}`,
		` {"a":1} `:   `{"a":1}`,
		`17`:          `{"content":17}`,
		`[1,2]`:       `{"content":[1,2]}`,
		`"quoted"`:    `{"content":"quoted"}`,
		`plain text`:  `{"content":"plain text"}`,
		`{"broken":`:  `{"content":"{\"broken\":"}`,
		``:            `{"content":""}`,
		"line\nbreak": `{"content":"line\nbreak"}`,
	} {
		if got := string(functionResponse(in)); got != want {
			t.Errorf("functionResponse(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestThinkingBudget(t *testing.T) {
	for effort, want := range map[string]int{"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576} {
		if got, ok := ThinkingBudget(effort); !ok || got != want {
			t.Errorf("%s: got %d %v, want %d", effort, got, ok, want)
		}
	}
	if _, ok := ThinkingBudget("extreme"); ok {
		t.Error("unknown effort accepted")
	}
}

func TestChatResponseErrors(t *testing.T) {
	if _, err := New().ChatResponse([]byte(`{"candidates":`), testTarget, testMeta); err == nil {
		t.Error("malformed body accepted")
	}
	if _, err := New().ChatResponse([]byte(`{}`), testTarget, testMeta); err == nil {
		t.Error("empty answer accepted")
	}
	_, err := New().ChatResponse([]byte(`{"error":{"code":500,"message":"internal","status":"INTERNAL"}}`), testTarget, testMeta)
	var ae *openai.APIError
	if !errors.As(err, &ae) || ae.Status != 500 || !ae.Retryable {
		t.Errorf("embedded error: %v", err)
	}
}

func FuzzChatStream(f *testing.F) {
	for _, n := range tt.Fixtures(f, "stream", ".sse") {
		f.Add(tt.ReadFile(f, n))
	}
	f.Add([]byte("data: {\"candidates\":[{\"index\":63}]}\n\n"))
	f.Add([]byte("data: {\"candidates\":[{\"index\":-1}]}\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkChunkContract(t, drain(t, New().ChatStream(bytes.NewReader(b), testTarget, testMeta)))
	})
}

func FuzzChatResponse(f *testing.F) {
	for _, n := range tt.Fixtures(f, "response", ".json") {
		f.Add(tt.ReadFile(f, n))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := New().ChatResponse(b, testTarget, testMeta)
		if err == nil && len(resp.Choices) == 0 {
			t.Fatal("response without choices")
		}
	})
}

func FuzzConvertSchema(f *testing.F) {
	f.Add([]byte(`{"type":"object","properties":{"a":{"type":["string","null"]}},"required":["a"]}`))
	f.Add([]byte(`{"$defs":{"n":{"type":"object","properties":{"n":{"$ref":"#/$defs/n"}}}},"$ref":"#/$defs/n"}`))
	f.Add([]byte(`{"anyOf":[{"type":"null"},{"allOf":[{"properties":{"x":{}}}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ConvertSchema(b)
		if err == nil {
			if _, err := json.Marshal(s); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func loadRequest(b *testing.B, name string) *openai.ChatRequest {
	raw, err := os.ReadFile(filepath.Join("testdata", "request", name))
	if err != nil {
		b.Fatal(err)
	}
	var req openai.ChatRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		b.Fatal(err)
	}
	return &req
}

func BenchmarkChatRequest(b *testing.B) {
	req := loadRequest(b, "tool_loop.json")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		hr, err := New().ChatRequest(ctx, req, testTarget)
		if err != nil || hr == nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChatResponse(b *testing.B) {
	raw := tt.ReadFile(b, "testdata/response/tool_calls.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New().ChatResponse(raw, testTarget, testMeta); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChatStream(b *testing.B) {
	tt.BenchStream(b, tt.ReadFile(b, "testdata/stream/text.sse"), func(r io.Reader) translate.ChunkReader {
		return New().ChatStream(r, testTarget, testMeta)
	})
}

func BenchmarkError(b *testing.B) {
	body := []byte(`{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}`)
	b.ReportAllocs()
	for b.Loop() {
		New().Error(429, nil, body)
	}
}
