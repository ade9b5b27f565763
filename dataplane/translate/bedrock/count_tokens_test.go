package bedrock

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/google/go-cmp/cmp"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/sigv4"
)

func readJSON(t *testing.T, hr *http.Request) ([]byte, map[string]any) {
	t.Helper()
	b, err := io.ReadAll(hr.Body)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return b, v
}

// TestCountTokensRequest checks, for every request fixture, that the
// CountTokens request counts exactly the prompt of the Converse body
// ChatRequest builds, at the model's count-tokens URL, authorized as
// ChatRequest authorizes: a SigV4 signature over this very body and path
// (recomputed here with package sigv4), or the Bedrock API key.
func TestCountTokensRequest(t *testing.T) {
	for _, in := range fixtures(t, "requests") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			req, tg := loadRequestFixture(t, in)
			chat, err := testTranslator().ChatRequest(context.Background(), req, tg)
			if err != nil {
				t.Fatal(err)
			}
			count, err := testTranslator().CountTokensRequest(context.Background(), req, tg)
			if err != nil {
				t.Fatal(err)
			}
			wantURL := strings.TrimSuffix(strings.TrimSuffix(chat.URL.String(), "-stream"), "/converse") + "/count-tokens"
			if got := count.URL.String(); got != wantURL || count.Method != http.MethodPost {
				t.Errorf("%s %s, want POST %s", count.Method, got, wantURL)
			}
			_, conv := readJSON(t, chat)
			raw, body := readJSON(t, count)
			want := map[string]any{}
			for _, f := range []string{"messages", "system", "toolConfig", "additionalModelRequestFields"} {
				if v, ok := conv[f]; ok {
					want[f] = v
				}
			}
			if diff := cmp.Diff(map[string]any{"input": map[string]any{"converse": want}}, body); diff != "" {
				t.Errorf("count body is not the Converse prompt (-want +got):\n%s", diff)
			}
			for _, h := range []string{"Content-Type", "X-Amz-Security-Token"} {
				if got, want := count.Header.Get(h), chat.Header.Get(h); got != want {
					t.Errorf("%s = %q, want ChatRequest's %q", h, got, want)
				}
			}
			if count.Header.Get("Accept") != "application/json" {
				t.Errorf("Accept = %q", count.Header.Get("Accept"))
			}
			p := tg.Provider
			if p.APIKey != "" {
				if got := count.Header.Get("Authorization"); got != "Bearer "+p.APIKey || count.Header.Get("X-Amz-Date") != "" {
					t.Errorf("API key auth: %v", count.Header)
				}
				return
			}
			check := count.Clone(context.Background())
			check.Header.Del("Authorization")
			region := p.Region
			if region == "" {
				region = regionFromHost(count.URL.Hostname())
			}
			var s sigv4.Signer
			creds := sigv4.Credentials{AccessKeyID: p.AWSAccessKeyID, SecretAccessKey: p.AWSSecretAccessKey, SessionToken: p.AWSSessionToken}
			if err := s.Sign(check, sigv4.PayloadHash(raw), creds, region, SigningService, testNow); err != nil {
				t.Fatal(err)
			}
			if got, want := count.Header.Get("Authorization"), check.Header.Get("Authorization"); got != want {
				t.Errorf("Authorization %q\nwant the signature of the count request %q", got, want)
			}
		})
	}
}

// TestCountTokensRequestErrors checks that a count is refused exactly when
// ChatRequest refuses the target or the request, with the same kind of
// error, and that no error carries the secret.
func TestCountTokensRequestErrors(t *testing.T) {
	hi := mustRequest(t, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	for name, c := range map[string]struct {
		req   *openai.ChatRequest
		model string
		edit  func(*routetable.Provider) *routetable.Provider
	}{
		"no provider": {hi, "m", func(*routetable.Provider) *routetable.Provider { return nil }},
		"no model":    {hi, "", nil},
		"no region": {hi, "m", func(p *routetable.Provider) *routetable.Provider {
			p.Region, p.BaseURL = "", "https://bedrock.example.com"
			return p
		}},
		"invalid base URL": {hi, "m", func(p *routetable.Provider) *routetable.Provider { p.BaseURL = "ftp://bedrock.example.com"; return p }},
		"no credentials":   {hi, "m", func(p *routetable.Provider) *routetable.Provider { p.AWSAccessKeyID = ""; return p }},
		"n > 1":            {mustRequest(t, `{"model":"m","n":2,"messages":[{"role":"user","content":"hi"}]}`), "m", nil},
	} {
		tg := target(c.model)
		if c.edit != nil {
			tg.Provider = c.edit(tg.Provider)
		}
		_, err := CountTokensRequest(context.Background(), c.req, tg)
		_, chatErr := testTranslator().ChatRequest(context.Background(), c.req, tg)
		if err == nil || chatErr == nil {
			t.Errorf("%s: count error %v, ChatRequest error %v; want both", name, err, chatErr)
			continue
		}
		var ae, chatAE *openai.APIError
		if errors.As(err, &ae) != errors.As(chatErr, &chatAE) {
			t.Errorf("%s: count error %v and ChatRequest error %v differ in kind", name, err, chatErr)
		}
		if strings.Contains(err.Error(), "EXAMPLEKEY") {
			t.Errorf("%s: error leaks the secret: %v", name, err)
		}
	}
}

func TestParseCountTokensResponse(t *testing.T) {
	for _, tc := range []struct {
		body string
		want int
		ok   bool
	}{
		{`{"inputTokens": 42}`, 42, true},
		{`{"inputTokens": 0}`, 0, true},
		{`{}`, 0, false},
		{`{"inputTokens": -3}`, 0, false},
		{`{"input_tokens": 42}`, 0, false},
		{`{"inputTokens": null}`, 0, false},
		{`[]`, 0, false},
	} {
		got, err := ParseCountTokensResponse([]byte(tc.body))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: %d, %v; want %d, ok %v", tc.body, got, err, tc.want, tc.ok)
		}
	}
}
