package ollama

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
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

func roundTrip(t *testing.T, req *openai.ChatRequest, tg translate.Target) (openai.Message, string, *openai.Usage) {
	t.Helper()
	tr := New()
	hr, err := tr.ChatRequest(context.Background(), req, tg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	if !req.Stream {
		b, _ := io.ReadAll(resp.Body)
		out, err := tr.ChatResponse(b, tg, testMeta)
		if err != nil {
			t.Fatal(err)
		}
		return out.Choices[0].Message, out.Choices[0].FinishReason, out.Usage
	}
	var chunks []*openai.ChatChunk
	cr := tr.ChatStream(resp.Body, tg, testMeta)
	for {
		c, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, c)
	}
	checkStreamContract(t, chunks, true)
	msg := openai.Message{Role: openai.RoleAssistant}
	var text strings.Builder
	finish := ""
	var usage *openai.Usage
	for _, c := range chunks {
		if c.Usage != nil {
			usage = c.Usage
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				text.WriteString(*ch.Delta.Content)
			}
			for _, tc := range ch.Delta.ToolCalls {
				if *tc.Index >= len(msg.ToolCalls) {
					msg.ToolCalls = append(msg.ToolCalls, openai.ToolCall{ID: tc.ID, Type: tc.Type, Function: openai.FunctionCall{Name: tc.Function.Name}})
				}
				msg.ToolCalls[*tc.Index].Function.Arguments += tc.Function.Arguments
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	if text.Len() > 0 {
		msg.Content = openai.TextContent(text.String())
	}
	return msg, finish, usage
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
	cr := tr.ChatStream(resp.Body, tg, testMeta)
	for {
		if _, err := cr.Next(); err != nil {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("cut stream ended with %v", err)
			}
			return
		}
	}
}
