package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/test/fakeprovider"
)

// countTokens posts body to /v1/messages/count_tokens as an Anthropic
// client does and returns the status, input_tokens and who counted.
func countTokens(t *testing.T, g *gateway, body string) (status, tokens int, by string) {
	t.Helper()
	req, _ := http.NewRequest("POST", g.URL+"/v1/messages/count_tokens", strings.NewReader(body))
	req.Header.Set("x-api-key", testKey)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v struct {
		InputTokens int `json:"input_tokens"`
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("count_tokens answered %s", b)
		}
	}
	return resp.StatusCode, v.InputTokens, resp.Header.Get("x-tollgate-token-count")
}

// countedBy lists the provider types whose own counting API is asked, with
// what their fake must have seen: the path, the credential header and its
// value's prefix, and the target model in the body.
var countedBy = map[routetable.ProviderType]struct{ path, header, credential, model string }{
	routetable.ProviderAnthropic: {"/v1/messages/count_tokens", "x-api-key", "sk-provider-secret-anthropic", `"model":"upstream-anthropic"`},
	routetable.ProviderGemini:    {"/v1beta/models/upstream-gemini:countTokens", "x-goog-api-key", "sk-provider-secret-gemini", `"model":"models/upstream-gemini"`},
	routetable.ProviderBedrock: {"/model/upstream-bedrock/count-tokens", "Authorization",
		"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/", `{"input":{"converse":{"messages":`},
}

// inputUsage sends the prompt to /v1/messages for model and returns the
// input tokens of the answer's usage.
func inputUsage(t *testing.T, g *gateway, model, prompt string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", g.URL+"/v1/messages", strings.NewReader(`{"model":"`+model+`","max_tokens":100,`+prompt+`}`))
	req.Header.Set("x-api-key", testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var msg struct {
		Usage struct {
			InputTokens int `json:"input_tokens"`
		} `json:"usage"`
	}
	err = json.NewDecoder(resp.Body).Decode(&msg)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("messages to %s: %d %v", model, resp.StatusCode, err)
	}
	return msg.Usage.InputTokens
}

// TestCountTokens counts one prompt through every provider type: the
// Anthropic, Gemini and Bedrock targets' own counting APIs agree with the
// usage /v1/messages reports for the same prompt; every other type gets the
// local estimate and is never called; a failing counting API falls back to
// the estimate.
func TestCountTokens(t *testing.T) {
	g := startGateway(t)
	const prompt = `"system":"Be brief.","messages":[{"role":"user","content":"hi from claude code"}]`
	const estimate = (len("Be brief.") + len("hi from claude code") + 3) / 4

	usage := map[routetable.ProviderType]int{}
	for _, at := range allTypes {
		if _, ok := countedBy[at.typ]; ok {
			usage[at.typ] = inputUsage(t, g, at.model, prompt)
		}
	}
	for _, f := range g.fakes {
		f.Reset()
	}

	for _, at := range allTypes {
		status, n, by := countTokens(t, g, `{"model":"`+at.model+`",`+prompt+`}`)
		want, wantBy := estimate, "estimated"
		if u, ok := usage[at.typ]; ok {
			want, wantBy = u, "provider"
		}
		if status != http.StatusOK || n != want || by != wantBy {
			t.Errorf("%s: %d input_tokens=%d by %q, want %d by %q", at.typ, status, n, by, want, wantBy)
		}
	}
	for typ, f := range g.fakes {
		reqs := f.Requests()
		c, ok := countedBy[typ]
		if !ok {
			if len(reqs) != 0 {
				t.Errorf("%s has no counting API but was called: %s", typ, reqs[0].Path)
			}
			continue
		}
		if len(reqs) != 1 || reqs[0].Path != c.path || !strings.HasPrefix(reqs[0].Header.Get(c.header), c.credential) ||
			!strings.Contains(string(reqs[0].Body), c.model) {
			t.Errorf("%s count request: %+v", typ, reqs)
		}
	}

	for typ := range countedBy {
		g.fakes[typ].SetBehavior(fakeprovider.Behavior{FailFirst: 1 << 20, FailStatus: http.StatusServiceUnavailable})
	}
	for _, at := range allTypes {
		if _, ok := countedBy[at.typ]; !ok {
			continue
		}
		if status, n, by := countTokens(t, g, `{"model":"`+at.model+`",`+prompt+`}`); status != http.StatusOK || n != estimate || by != "estimated" {
			t.Errorf("%s failing counting API: %d input_tokens=%d by %q, want the estimate %d", at.typ, status, n, by, estimate)
		}
	}
}
