package fakeprovider

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"tollgate.dev/tollgate/dataplane/eventstream"
)

func post(t *testing.T, url string, body string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func TestEmbeddingDeterministic(t *testing.T) {
	a, b := Embedding("m", "hello", 0), Embedding("m", "hello", 0)
	if len(a) != DefaultEmbeddingDims || !cmp.Equal(a, b) {
		t.Fatalf("not deterministic: %v %v", a, b)
	}
	if cmp.Equal(a, Embedding("m", "hellp", 0)) || cmp.Equal(a, Embedding("n", "hello", 0)) {
		t.Error("different inputs give the same vector")
	}
	var norm float64
	for _, f := range Embedding("m", "x", 256) {
		norm += f * f
	}
	if math.Abs(norm-1) > 1e-3 {
		t.Errorf("norm² = %v, want 1", norm)
	}
}

func TestEmbeddingEndpoints(t *testing.T) {
	s := Start(Behavior{})
	defer s.Close()
	vec := func(model, text string, dims int) string {
		b, _ := json.Marshal(Embedding(model, text, dims))
		return string(b)
	}
	tests := []struct {
		name, path, body string
		want             string // JSON subset compared by decoding both
	}{
		{"openai string", "/v1/embeddings", `{"model":"e","input":"hi"}`,
			`{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":` + vec("e", "hi", 0) + `}],"usage":{"prompt_tokens":1,"total_tokens":1}}`},
		{"openai array with dimensions", "/v1/embeddings", `{"model":"e","input":["a","bbbbbbbb"],"dimensions":3}`,
			`{"object":"list","model":"e","data":[{"object":"embedding","index":0,"embedding":` + vec("e", "a", 3) + `},{"object":"embedding","index":1,"embedding":` + vec("e", "bbbbbbbb", 3) + `}],"usage":{"prompt_tokens":3,"total_tokens":3}}`},
		{"azure deployment", "/openai/deployments/emb-dep/embeddings?api-version=2024-10-21", `{"input":"hi"}`,
			`{"object":"list","model":"emb-dep","data":[{"object":"embedding","index":0,"embedding":` + vec("emb-dep", "hi", 0) + `}],"usage":{"prompt_tokens":1,"total_tokens":1}}`},
		{"ollama embed", "/api/embed", `{"model":"nomic","input":["x","y"]}`,
			`{"model":"nomic","embeddings":[` + vec("nomic", "x", 0) + `,` + vec("nomic", "y", 0) + `],"total_duration":1000,"load_duration":10,"prompt_eval_count":2}`},
		{"ollama legacy", "/api/embeddings", `{"model":"nomic","prompt":"x"}`, `{"embedding":` + vec("nomic", "x", 0) + `}`},
		{"gemini embedContent", "/v1beta/models/text-embedding-004:embedContent", `{"content":{"parts":[{"text":"a"},{"text":"b"}]},"outputDimensionality":4}`,
			`{"embedding":{"values":` + vec("text-embedding-004", "ab", 4) + `}}`},
		{"gemini batch", "/v1beta/models/text-embedding-004:batchEmbedContents", `{"requests":[{"model":"models/text-embedding-004","content":{"parts":[{"text":"a"}]}}]}`,
			`{"embeddings":[{"values":` + vec("text-embedding-004", "a", 0) + `}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := post(t, s.URL+tt.path, tt.body)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			var got, want any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestEmbeddingBase64(t *testing.T) {
	s := Start(Behavior{})
	defer s.Close()
	_, _, body := post(t, s.URL+"/v1/embeddings", `{"model":"e","input":"hi","encoding_format":"base64"}`)
	var r struct {
		Data []struct {
			Embedding string `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || len(r.Data) != 1 {
		t.Fatalf("%s: %v", body, err)
	}
	raw, err := base64.StdEncoding.DecodeString(r.Data[0].Embedding)
	if err != nil || len(raw) != 4*DefaultEmbeddingDims {
		t.Fatalf("%d bytes, %v", len(raw), err)
	}
	for i, f := range Embedding("e", "hi", 0) {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); got != float32(f) {
			t.Errorf("[%d] = %v, want %v", i, got, float32(f))
		}
	}
}

func TestEmbeddingErrors(t *testing.T) {
	s := Start(Behavior{})
	defer s.Close()
	for _, tt := range []struct{ path, body string }{
		{"/v1/embeddings", `{"model":"e","input":[]}`},
		{"/v1/embeddings", `{"input":"x"}`},
		{"/v1/embeddings", `{"model":"e","input":"x","encoding_format":"int8"}`},
		{"/api/embed", `{"model":"m","input":7}`},
		{"/v1beta/models/e:batchEmbedContents", `{"requests":[{"model":"models/other","content":{"parts":[{"text":"a"}]}}]}`},
		{"/v1beta/models/e:embedContent", `{}`},
	} {
		if status, _, body := post(t, s.URL+tt.path, tt.body); status != http.StatusBadRequest {
			t.Errorf("%s %s: status %d %s", tt.path, tt.body, status, body)
		}
	}
	s.SetBehavior(Behavior{FailFirst: 100, FailStatus: 429, RetryAfter: 2})
	status, h, body := post(t, s.URL+"/v1/embeddings", `{"model":"e","input":"x"}`)
	if status != 429 || h.Get("Retry-After") != "2" || !strings.Contains(string(body), "rate_limit_error") {
		t.Errorf("injected failure: %d %v %s", status, h, body)
	}
}

func TestOpenAIErrorTypes(t *testing.T) {
	s := Start(Behavior{})
	defer s.Close()
	for status, want := range map[int]string{400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
		429: "rate_limit_error", 500: "server_error", 503: "server_error"} {
		s.SetBehavior(Behavior{FailFirst: 1 << 30, FailStatus: status})
		code, _, body := post(t, s.URL+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
		var e struct {
			Error struct {
				Type string `json:"type"`
			} `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil || code != status || e.Error.Type != want {
			t.Errorf("status %d: got %d type %q (%s), want %q", status, code, e.Error.Type, body, want)
		}
	}
}

func ollamaLines(t *testing.T, body []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestOllamaScripting(t *testing.T) {
	s := Start(Behavior{Thinking: "let me think", Truncated: true})
	defer s.Close()
	req := `{"model":"qwen3","messages":[{"role":"user","content":"hi"}],"stream":false}`
	_, _, body := post(t, s.URL+"/api/chat", req)
	var r struct {
		Message struct {
			Content, Thinking string
		}
		DoneReason string `json:"done_reason"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Message.Thinking != "let me think" || r.Message.Content != "echo: hi" || r.DoneReason != "length" {
		t.Errorf("non-streaming: %s", body)
	}

	_, _, body = post(t, s.URL+"/api/chat", strings.Replace(req, `"stream":false`, `"stream":true`, 1))
	lines := ollamaLines(t, body)
	var thinking, content strings.Builder
	for _, l := range lines {
		if m, ok := l["message"].(map[string]any); ok {
			th, _ := m["thinking"].(string)
			c, _ := m["content"].(string)
			if th != "" && content.Len() > 0 {
				t.Error("thinking after content")
			}
			thinking.WriteString(th)
			content.WriteString(c)
		}
	}
	last := lines[len(lines)-1]
	if thinking.String() != "let me think" || content.String() != "echo: hi" || last["done"] != true || last["done_reason"] != "length" {
		t.Errorf("streaming: %s", body)
	}

	s.SetBehavior(Behavior{StreamError: "model crashed"})
	_, _, body = post(t, s.URL+"/api/chat", strings.Replace(req, `"stream":false`, `"stream":true`, 1))
	lines = ollamaLines(t, body)
	if last := lines[len(lines)-1]; last["error"] != "model crashed" || len(lines) < 2 {
		t.Errorf("stream error: %s", body)
	}
	for _, l := range lines {
		if l["done"] == true {
			t.Errorf("done line despite the error: %s", body)
		}
	}
}

func TestStreamErrorAndTruncatedOtherDialects(t *testing.T) {
	s := Start(Behavior{StreamError: "boom"})
	defer s.Close()
	_, _, body := post(t, s.URL+"/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if !strings.Contains(string(body), `"error":{`) || strings.Contains(string(body), "[DONE]") {
		t.Errorf("openai: %s", body)
	}
	_, _, body = post(t, s.URL+"/v1/messages", `{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if !strings.Contains(string(body), "event: error") || strings.Contains(string(body), "message_stop") {
		t.Errorf("anthropic: %s", body)
	}
	_, _, body = post(t, s.URL+"/model/nova/converse-stream", `{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`, "Authorization", "Bearer k")
	r := eventstream.NewReader(bytes.NewReader(body), 0)
	var last string
	for {
		m, err := r.Next()
		if err != nil {
			break
		}
		last = m.StringHeader(":message-type") + "/" + m.StringHeader(":exception-type") + m.StringHeader(":event-type")
	}
	if last != "exception/modelStreamErrorException" {
		t.Errorf("bedrock last frame %q", last)
	}

	s.SetBehavior(Behavior{Truncated: true})
	for path, want := range map[string]string{
		"/v1/chat/completions":             `"finish_reason":"length"`,
		"/v1/messages":                     `"stop_reason":"max_tokens"`,
		"/v1beta/models/g:generateContent": `"finishReason":"MAX_TOKENS"`,
		"/model/nova/converse":             `"stopReason":"max_tokens"`,
	} {
		body := `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`
		if strings.HasPrefix(path, "/model/") {
			body = `{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`
		}
		_, _, got := post(t, s.URL+path, body, "Authorization", "Bearer k")
		if !strings.Contains(string(got), want) {
			t.Errorf("%s: %s lacks %s", path, got, want)
		}
	}
}

// TestThinkingEveryDialect checks that Behavior.Thinking reaches the
// reasoning member of each dialect that has one, before the answer.
func TestThinkingEveryDialect(t *testing.T) {
	s := Start(Behavior{Thinking: "deep thoughts"})
	defer s.Close()
	tests := []struct {
		path, body string
		want       []string // in order
	}{
		{"/v1/messages", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, []string{`{"signature":"fake-signature","thinking":"deep thoughts","type":"thinking"}`, `"text":"echo: hi"`}},
		{"/v1/messages", `{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, []string{`"thinking_delta"`, `{"signature":"fake-signature","type":"signature_delta"}`, `"text_delta"`}},
		{"/model/m/converse", `{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`, []string{`"reasoningText":{"signature":"fake-signature","text":"deep thoughts"}`, `"text":"echo: hi"`}},
		{"/model/m/converse-stream", `{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`, []string{`"reasoningContent":{"text":"deep t"`, `"signature":"fake-signature"`, `"delta":{"text":"ec`}},
		{"/v1beta/models/g:generateContent", `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`, []string{`"text":"deep thoughts","thought":true`, `"text":"echo: hi"`}},
		{"/v1beta/models/g:streamGenerateContent", `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`, []string{`"text":"deep thoughts","thought":true`, `"text":"ec`}},
	}
	for _, tt := range tests {
		_, _, body := post(t, s.URL+tt.path, tt.body, "Authorization", "Bearer k")
		at := 0
		for _, w := range tt.want {
			i := strings.Index(string(body[at:]), w)
			if i < 0 {
				t.Errorf("%s %s: %q missing or out of order in %s", tt.path, tt.body, w, body)
				break
			}
			at += i + len(w)
		}
	}
}
