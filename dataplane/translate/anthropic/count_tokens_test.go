package anthropic

import (
	"context"
	"io"
	"net/http"
	"os"
	"slices"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/google/go-cmp/cmp"

	"tollgate.dev/tollgate/dataplane/translate"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
)

func TestParseCountTokensRequest(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		param      string // "" = accepted
		wantText   string // first message's text when accepted
	}{
		{name: "no max_tokens", body: `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, wantText: "hi"},
		{name: "leading space", body: " \n{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", wantText: "hi"},
		{name: "system and tools", body: `{"model":"m","system":"be brief","messages":[{"role":"user","content":"hi"}],
			"tools":[{"name":"t","input_schema":{"type":"object"}}],"tool_choice":{"type":"auto"},"thinking":{"type":"enabled","budget_tokens":2048}}`, wantText: "be brief"},
		{name: "max_tokens sent anyway", body: `{"model":"m","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, wantText: "hi"},
		{name: "max_tokens zero", body: `{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}`, param: "max_tokens"},
		{name: "no model", body: `{"messages":[{"role":"user","content":"hi"}]}`, param: "model"},
		{name: "no messages", body: `{"model":"m"}`, param: "messages"},
		{name: "bad role", body: `{"model":"m","messages":[{"role":"system","content":"hi"}]}`, param: "messages.0.role"},
		{name: "not json", body: `{"model":`, param: "-"},
		{name: "null", body: `null`, param: "model"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, aerr := ParseCountTokensRequest([]byte(tc.body))
			if tc.param != "" {
				if aerr == nil || aerr.Status != http.StatusBadRequest {
					t.Fatalf("want a 400, got %v", aerr)
				}
				if tc.param != "-" && (aerr.Param == nil || *aerr.Param != tc.param) {
					t.Errorf("param = %v, want %s (%s)", aerr.Param, tc.param, aerr.Message)
				}
				return
			}
			if aerr != nil {
				t.Fatalf("refused: %s", aerr.Message)
			}
			if req.MaxCompletionTokens != nil || req.Stream || req.StreamOptions != nil {
				t.Errorf("a count request has no output limit and no stream: %+v", req)
			}
			if got := req.Messages[0].Content.Text; got != tc.wantText {
				t.Errorf("first message %q, want %q", got, tc.wantText)
			}
		})
	}
}

func TestCountTokensRequest(t *testing.T) {
	p := testProvider()
	p.BaseURL = "http://anthropic.internal:8080/proxy/"
	p.Headers = map[string]string{"anthropic-beta": "b1", "X-Api-Key": "override"}
	req, aerr := ParseCountTokensRequest([]byte(`{"model":"client-name","system":"be brief","stream":true,"temperature":0.2,
		"metadata":{"user_id":"u1"},"stop_sequences":["x"],
		"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"t","input_schema":{"type":"object"}}]}`))
	if aerr != nil {
		t.Fatal(aerr.Message)
	}
	hr, err := CountTokensRequest(context.Background(), req, translate.Target{Provider: p, Model: "claude-upstream"})
	if err != nil {
		t.Fatal(err)
	}
	if hr.Method != http.MethodPost || hr.URL.String() != "http://anthropic.internal:8080/proxy/v1/messages/count_tokens" {
		t.Errorf("got %s %s", hr.Method, hr.URL)
	}
	for k, v := range map[string]string{"X-Api-Key": "sk-ant-test-key", "Anthropic-Version": "2023-06-01",
		"Anthropic-Beta": "b1", "Content-Type": "application/json"} {
		if got := hr.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if hr.GetBody == nil {
		t.Error("request body must be replayable")
	}
	b, _ := io.ReadAll(hr.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"messages", "model", "system", "tools"}, sortedKeys(body)); diff != "" {
		t.Errorf("body fields (-want +got):\n%s\n%s", diff, b)
	}
	if body["model"] != "claude-upstream" {
		t.Errorf("model = %v, want the target model", body["model"])
	}
	if req.Stream || req.MaxCompletionTokens != nil {
		t.Error("the caller's request must not change")
	}
	if _, err := CountTokensRequest(context.Background(), req, translate.Target{Model: "x"}); err == nil {
		t.Error("nil provider must fail")
	}
}

func sortedKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestParseCountTokensResponse(t *testing.T) {
	for body, want := range map[string]int{`{"input_tokens":42}`: 42, `{"input_tokens":0,"context_management":null}`: 0,
		`{}`: -1, `{"input_tokens":-1}`: -1, `{"input_tokens":"4"}`: -1, `<html>`: -1} {
		n, err := ParseCountTokensResponse([]byte(body))
		if want < 0 {
			if err == nil {
				t.Errorf("%s: accepted as %d", body, n)
			}
			continue
		}
		if err != nil || n != want {
			t.Errorf("%s: got %d, %v; want %d", body, n, err, want)
		}
	}
	if got := string(CountTokensResponse(1234)); got != `{"input_tokens":1234}` {
		t.Errorf("CountTokensResponse = %s", got)
	}
}

// FuzzParseCountTokensRequest checks the count parser against the Messages
// parser it wraps: it never panics, rejects with 400s only, accepts every
// body Messages accepts (with the same prompt), accepts nothing as a
// stream or with an output limit, and what it accepts builds an upstream
// count request without panicking.
func FuzzParseCountTokensRequest(f *testing.F) {
	for _, in := range tt.Fixtures(f, "inbound/requests", ".json") {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	f.Add([]byte(` {"messages":[{"role":"user","content":"hi"}],"model":"m","max_tokens":-1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, aerr := ParseCountTokensRequest(body)
		if aerr != nil && aerr.Status != http.StatusBadRequest {
			t.Fatalf("rejection with status %d", aerr.Status)
		}
		msg, merr := ParseMessagesRequest(body)
		if merr == nil {
			if aerr != nil {
				t.Fatalf("Messages accepts what count_tokens refuses: %s", aerr.Message)
			}
			if diff := cmp.Diff(msg.Messages, req.Messages); diff != "" {
				t.Fatalf("prompt differs from Messages (-messages +count):\n%s", diff)
			}
		}
		if aerr != nil {
			return
		}
		if req.Model == "" || req.MaxCompletionTokens != nil || req.Stream || req.StreamOptions != nil {
			t.Fatalf("accepted as a stream or with an output limit: %+v", req)
		}
		_, _ = CountTokensRequest(context.Background(), req, translate.Target{Provider: testProvider(), Model: "claude"})
	})
}
