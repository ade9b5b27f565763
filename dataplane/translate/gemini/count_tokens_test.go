package gemini

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/google/go-cmp/cmp"

	"tollgate.dev/tollgate/dataplane/schema/openai"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
)

// TestCountTokensRequest checks, for every request fixture, that the
// countTokens request counts exactly the generateContent body ChatRequest
// builds, for the target model, at the documented URL with ChatRequest's
// headers.
func TestCountTokensRequest(t *testing.T) {
	for _, in := range tt.Fixtures(t, "request", ".json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			var req openai.ChatRequest
			if err := json.Unmarshal(tt.ReadFile(t, in), &req); err != nil {
				t.Fatal(err)
			}
			chat, err := New().ChatRequest(context.Background(), &req, testTarget)
			if err != nil {
				t.Fatal(err)
			}
			count, err := CountTokensRequest(context.Background(), &req, testTarget)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := count.URL.String(), "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:countTokens"; got != want {
				t.Errorf("URL %s, want %s", got, want)
			}
			if count.Method != "POST" {
				t.Errorf("method %s", count.Method)
			}
			for _, h := range []string{"x-goog-api-key", "X-Team", "Content-Type"} {
				if got, want := count.Header.Get(h), chat.Header.Get(h); got != want {
					t.Errorf("%s = %q, want ChatRequest's %q", h, got, want)
				}
			}
			if count.Header.Get("x-goog-api-key") != testKey {
				t.Error("the provider key is not sent")
			}
			var chatBody map[string]any
			decodeBody(t, chat, &chatBody)
			var countBody struct {
				GenerateContentRequest map[string]any `json:"generateContentRequest"`
			}
			decodeBody(t, count, &countBody)
			gcr := countBody.GenerateContentRequest
			if gcr["model"] != "models/gemini-2.5-flash" {
				t.Errorf("model %v, want models/gemini-2.5-flash", gcr["model"])
			}
			delete(gcr, "model")
			if diff := cmp.Diff(chatBody, gcr); diff != "" {
				t.Errorf("counted request differs from the generateContent body (-chat +count):\n%s", diff)
			}
		})
	}
}

func decodeBody(t *testing.T, hr *http.Request, v any) {
	t.Helper()
	b, err := io.ReadAll(hr.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
}

func TestCountTokensRequestModelPrefixAndErrors(t *testing.T) {
	req := &openai.ChatRequest{Messages: []openai.Message{{Role: openai.RoleUser, Content: openai.Content{Kind: openai.ContentString, Text: "hi"}}}}
	tg := testTarget
	tg.Model = "models/gemini-2.5-pro"
	hr, err := CountTokensRequest(context.Background(), req, tg)
	if err != nil {
		t.Fatal(err)
	}
	if got := hr.URL.Path; got != "/v1beta/models/gemini-2.5-pro:countTokens" {
		t.Errorf("path %s", got)
	}
	tg.Provider = nil
	if _, err := CountTokensRequest(context.Background(), req, tg); err == nil {
		t.Error("a target without a provider is accepted")
	}
	bad := &openai.ChatRequest{Messages: []openai.Message{{Role: "robot"}}}
	if _, err := CountTokensRequest(context.Background(), bad, testTarget); err == nil {
		t.Error("a request Gemini cannot serve is counted")
	}
}

func TestParseCountTokensResponse(t *testing.T) {
	for _, tc := range []struct {
		body string
		want int
		ok   bool
	}{
		{`{"totalTokens": 31, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 31}]}`, 31, true},
		{`{"totalTokens": 0}`, 0, true},
		{`{}`, 0, false},
		{`{"totalTokens": -1}`, 0, false},
		{`{"totalTokens": "12"}`, 0, false},
		{`{"input_tokens": 12}`, 0, false},
		{`not json`, 0, false},
	} {
		got, err := ParseCountTokensResponse([]byte(tc.body))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: %d, %v; want %d, ok %v", tc.body, got, err, tc.want, tc.ok)
		}
	}
}
