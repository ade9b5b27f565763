package openai

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
	"tollgate.dev/tollgate/test/fakeprovider"
)

// TestAgainstFakeProvider runs a tool loop (call, then answer from the
// tool result) streamed and not, for every flavor, against the fake
// provider the e2e tests use, so both sides agree on the wire format.
func TestAgainstFakeProvider(t *testing.T) {
	fp := fakeprovider.Start(fakeprovider.Behavior{Chunks: 3})
	defer fp.Close()
	for _, tr := range []*Translator{NewOpenAI(), NewAzure(), NewCompatible()} {
		for _, stream := range []bool{false, true} {
			name := tr.Flavor().String()
			if stream {
				name += "/stream"
			}
			t.Run(name, func(t *testing.T) {
				tg := translate.Target{Provider: &routetable.Provider{ID: "ai/fake", BaseURL: fp.URL, APIKey: "k"}, Model: "fake-model"}
				body := `{"model":"gpt-public","messages":[{"role":"user","content":"weather in Paris"}],` +
					`"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}`
				if stream {
					body = strings.Replace(body, `{"model"`, `{"stream":true,"model"`, 1)
				}
				req, aerr := ParseChatRequest([]byte(body))
				if aerr != nil {
					t.Fatal(aerr)
				}
				msg, finish, usage := roundTrip(t, tr, req, tg)
				if finish != openai.FinishToolCalls || len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Function.Name != "get_weather" ||
					msg.ToolCalls[0].Function.Arguments != `{"input":"weather in Paris"}` || usage == nil || usage.TotalTokens == 0 {
					t.Fatalf("first turn: %+v %q %+v", msg, finish, usage)
				}
				req.Messages = append(req.Messages, msg, openai.Message{Role: openai.RoleTool, ToolCallID: msg.ToolCalls[0].ID, Content: openai.TextContent("sunny")})
				req.Native = nil // the struct no longer says what the client's bytes say
				msg, finish, _ = roundTrip(t, tr, req, tg)
				if finish != openai.FinishStop || msg.Content.PlainText() != "tool said: sunny" {
					t.Fatalf("second turn: %+v %q", msg, finish)
				}
			})
		}
	}
}

// roundTrip sends req and folds the answer (whole or streamed) into one message.
func roundTrip(t *testing.T, tr *Translator, req *openai.ChatRequest, tg translate.Target) (openai.Message, string, *openai.Usage) {
	t.Helper()
	a, aerr := tt.RoundTrip(t, tr, contract, req, tg)
	if aerr != nil {
		t.Fatalf("status %d: %s", aerr.Status, aerr.Message)
	}
	if a.Stream != nil && !a.Stream.Clean() {
		t.Fatalf("stream ended with %v", a.Stream.End)
	}
	return a.Message, a.Finish, a.Usage
}

// TestFakeProviderFailures checks error bodies and a stream cut short.
func TestFakeProviderFailures(t *testing.T) {
	fp := fakeprovider.Start(fakeprovider.Behavior{FailFirst: 1, FailStatus: 429, RetryAfter: 7, DieAfterChunks: 2})
	defer fp.Close()
	tr := NewOpenAI()
	tg := translate.Target{Provider: &routetable.Provider{ID: "ai/fake", BaseURL: fp.URL, APIKey: "k"}, Model: "m"}
	req, _ := ParseChatRequest([]byte(`{"model":"x","stream":true,"messages":[{"role":"user","content":"a long enough prompt"}]}`))
	hr, _ := tr.ChatRequest(context.Background(), req, tg)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	e := tr.Error(resp.StatusCode, resp.Header, b)
	if e.Status != 429 || !e.Retryable || e.RetryAfter.Seconds() != 7 || e.Message != "injected failure 429" {
		t.Fatalf("error %+v", e)
	}
	hr, _ = tr.ChatRequest(context.Background(), req, tg)
	resp, err = http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	chunks, err := tt.Drain(t, tr.ChatStream(resp.Body, tg, testMeta), tt.MaxChunks)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut stream ended with %v", err)
	}
	contract.Check(t, chunks, false)
}
