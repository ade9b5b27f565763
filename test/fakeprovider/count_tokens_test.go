package fakeprovider

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestCountTokens checks the Token Counting API against the usage of a
// Messages answer to the same prompt, and its errors.
func TestCountTokens(t *testing.T) {
	s := Start(Behavior{})
	defer s.Close()
	prompt := `"messages":[{"role":"user","content":"count these words for me please"}]`
	status, _, b := post(t, s.URL+"/v1/messages", `{"model":"m","max_tokens":10,`+prompt+`}`)
	var msg struct {
		Usage struct {
			InputTokens int `json:"input_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(b, &msg); err != nil || status != http.StatusOK {
		t.Fatalf("messages: %d %s", status, b)
	}
	status, _, b = post(t, s.URL+"/v1/messages/count_tokens", `{"model":"m",`+prompt+`}`)
	var count struct {
		InputTokens *int `json:"input_tokens"`
	}
	if err := json.Unmarshal(b, &count); err != nil || status != http.StatusOK || count.InputTokens == nil {
		t.Fatalf("count_tokens: %d %s", status, b)
	}
	if *count.InputTokens != msg.Usage.InputTokens {
		t.Errorf("count %d, usage %d", *count.InputTokens, msg.Usage.InputTokens)
	}

	status, _, b = post(t, s.URL+"/v1/messages/count_tokens", `{"model":`)
	if status != http.StatusBadRequest || !json.Valid(b) {
		t.Errorf("bad body: %d %s", status, b)
	}
	s.SetBehavior(Behavior{FailFirst: 100, FailStatus: 529})
	if status, _, _ = post(t, s.URL+"/v1/messages/count_tokens", `{"model":"m",`+prompt+`}`); status != 529 {
		t.Errorf("injected failure: status %d, want 529", status)
	}
}

// TestCountTokensDialects checks Gemini's countTokens and Bedrock's
// CountTokens against the usage of a generateContent / Converse answer to
// the same prompt, and their errors.
func TestCountTokensDialects(t *testing.T) {
	s := Start(Behavior{})
	defer s.Close()
	const sigv4 = "AWS4-HMAC-SHA256 Credential=AKID/20260102/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=00"
	geminiPrompt := `"contents":[{"role":"user","parts":[{"text":"count these words for me please"}]}],"systemInstruction":{"parts":[{"text":"Be brief."}]}`
	bedrockPrompt := `"messages":[{"role":"user","content":[{"text":"count these words for me please"}]}],"system":[{"text":"Be brief."}]`
	for _, tc := range []struct {
		name, genPath, genBody, countPath, countBody, usage, total string
		header                                                     []string
		bad                                                        map[string]string // count body -> why it is refused
	}{
		{name: "gemini", genPath: "/v1beta/models/g:generateContent", genBody: `{` + geminiPrompt + `}`,
			countPath: "/v1beta/models/g:countTokens", countBody: `{"generateContentRequest":{"model":"models/g",` + geminiPrompt + `}}`,
			usage: "usageMetadata.promptTokenCount", total: "totalTokens",
			bad: map[string]string{
				`{"generateContentRequest":{"model":"models/other",` + geminiPrompt + `}}`: "model of another path",
				`{"generateContentRequest":{` + geminiPrompt + `}}`:                        "no model",
				`{"generateContentRequest":{"model":"models/g","contents":[]}}`:            "no contents",
			}},
		{name: "gemini contents", genPath: "/v1beta/models/g:generateContent", genBody: `{` + geminiPrompt + `}`,
			countPath: "/v1beta/models/g:countTokens", countBody: `{` + geminiPrompt + `}`,
			usage: "usageMetadata.promptTokenCount", total: "totalTokens"},
		{name: "bedrock", genPath: "/model/m/converse", genBody: `{` + bedrockPrompt + `}`,
			countPath: "/model/m/count-tokens", countBody: `{"input":{"converse":{` + bedrockPrompt + `}}}`,
			usage: "usage.inputTokens", total: "inputTokens", header: []string{"Authorization", sigv4},
			bad: map[string]string{`{"input":{}}`: "no converse input", `{"input":{"converse":[]}}`: "converse not an object"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, b := post(t, s.URL+tc.genPath, tc.genBody, tc.header...)
			usage := lookup(t, status, b, tc.usage)
			status, _, b = post(t, s.URL+tc.countPath, tc.countBody, tc.header...)
			if n := lookup(t, status, b, tc.total); n != usage {
				t.Errorf("count %v, usage %v", n, usage)
			}
			for body, why := range tc.bad {
				if status, _, b := post(t, s.URL+tc.countPath, body, tc.header...); status != http.StatusBadRequest || !json.Valid(b) {
					t.Errorf("%s: %d %s, want 400", why, status, b)
				}
			}
		})
	}
	if status, _, _ := post(t, s.URL+"/model/m/count-tokens", `{"input":{"converse":{`+bedrockPrompt+`}}}`); status != http.StatusBadRequest {
		t.Errorf("unsigned CountTokens: status %d, want 400", status)
	}
	s.SetBehavior(Behavior{FailFirst: 100, FailStatus: 500})
	if status, h, _ := post(t, s.URL+"/model/m/count-tokens", `{}`, "Authorization", sigv4); status != 500 || h.Get("x-amzn-ErrorType") == "" {
		t.Errorf("injected failure: status %d, headers %v; want a Bedrock 500", status, h)
	}
}

// lookup returns the number at the dotted path of a 200 JSON answer.
func lookup(t *testing.T, status int, b []byte, path string) float64 {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil || status != http.StatusOK {
		t.Fatalf("%d %s", status, b)
	}
	for _, k := range strings.Split(path, ".") {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	n, ok := v.(float64)
	if !ok {
		t.Fatalf("%s missing in %s", path, b)
	}
	return n
}
