package ollama

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
	"tollgate.dev/tollgate/test/fakeprovider"
)

// TestAgainstFakeProvider runs a tool loop streamed and not against the
// fake provider the e2e tests use, so both agree on /api/chat.
func TestAgainstFakeProvider(t *testing.T) {
	fp := fakeprovider.Start(fakeprovider.Behavior{Chunks: 3})
	defer fp.Close()
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "whole", true: "stream"}[stream], func(t *testing.T) {
			tg := translate.Target{Provider: &routetable.Provider{ID: "ai/fake", BaseURL: fp.URL}, Model: "llama3"}
			req := &openai.ChatRequest{Model: "local", Stream: stream,
				Messages: []openai.Message{{Role: openai.RoleUser, Content: openai.TextContent("parallel weather")}},
				Tools: []openai.Tool{{Type: "function", Function: openai.FunctionDecl{Name: "get_weather"}},
					{Type: "function", Function: openai.FunctionDecl{Name: "get_time"}}}}
			msg, finish, usage := roundTrip(t, req, tg)
			if finish != openai.FinishToolCalls || len(msg.ToolCalls) != 2 || msg.ToolCalls[1].Function.Name != "get_time" ||
				msg.ToolCalls[0].Function.Arguments != `{"input":"parallel weather"}` || msg.ToolCalls[0].ID == msg.ToolCalls[1].ID ||
				usage == nil || usage.TotalTokens == 0 {
				t.Fatalf("first turn: %+v %q %+v", msg, finish, usage)
			}
			req.Messages = append(req.Messages, msg,
				openai.Message{Role: openai.RoleTool, ToolCallID: msg.ToolCalls[0].ID, Content: openai.TextContent("sunny")},
				openai.Message{Role: openai.RoleTool, ToolCallID: msg.ToolCalls[1].ID, Content: openai.TextContent("noon")})
			msg, finish, _ = roundTrip(t, req, tg)
			if finish != openai.FinishStop || msg.Content.PlainText() != "tool said: sunny | noon" {
				t.Fatalf("second turn: %+v %q", msg, finish)
			}
			last := fp.Requests()[len(fp.Requests())-1]
			var sent ChatRequest
			if err := json.Unmarshal(last.Body, &sent); err != nil || sent.Stream != stream || sent.Messages[2].ToolName != "get_weather" {
				t.Fatalf("sent %s", last.Body)
			}
		})
	}
}

// roundTrip sends req to the fake provider and folds the answer (whole or
// streamed) into one message.
func roundTrip(t *testing.T, req *openai.ChatRequest, tg translate.Target) (openai.Message, string, *openai.Usage) {
	t.Helper()
	a, aerr := tt.RoundTrip(t, New(), tt.Contract{Meta: testMeta, OneChoice: true, RequireUsage: true}, req, tg)
	if aerr != nil {
		t.Fatalf("status %d: %s", aerr.Status, aerr.Message)
	}
	if a.Stream != nil {
		if !a.Stream.Clean() {
			t.Fatalf("stream ended with %v", a.Stream.End)
		}
		checkStreamContract(t, a.Stream.Chunks, true)
	}
	return a.Message, a.Finish, a.Usage
}

func TestFakeProviderFailures(t *testing.T) {
	fp := fakeprovider.Start(fakeprovider.Behavior{FailFirst: 1, FailStatus: 503, DieAfterChunks: 2})
	defer fp.Close()
	tr := New()
	tg := translate.Target{Provider: &routetable.Provider{ID: "ai/fake", BaseURL: fp.URL}, Model: "m"}
	req := &openai.ChatRequest{Model: "x", Stream: true, Messages: []openai.Message{{Role: openai.RoleUser, Content: openai.TextContent("a long enough prompt")}}}
	hr, _ := tr.ChatRequest(context.Background(), req, tg)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if e := tr.Error(resp.StatusCode, resp.Header, b); e.Status != 503 || !e.Retryable || e.Message != "injected failure 503" {
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
