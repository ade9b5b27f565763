package bedrock

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
	"tollgate.dev/tollgate/test/fakeprovider"
)

// fakeTarget points a SigV4-signed provider at the fake Bedrock.
func fakeTarget(url string) translate.Target {
	p := testProvider()
	p.BaseURL = url
	return translate.Target{Provider: p, Model: "anthropic.claude-sonnet-4-20250514-v1:0"}
}

// roundTrip sends req to the fake provider and reassembles the answer,
// whole or streamed (checking the stream contract on the way).
func roundTrip(t *testing.T, req *openai.ChatRequest, tg translate.Target) (openai.Message, string, *openai.Usage, error) {
	t.Helper()
	a, aerr := tt.RoundTrip(t, testTranslator(), contract, req, tg)
	if aerr != nil {
		return openai.Message{}, "", nil, aerr
	}
	if a.Stream == nil {
		return a.Message, a.Finish, a.Usage, nil
	}
	if ct := a.Header.Get("Content-Type"); ct != contentTypeEventStream {
		t.Fatalf("stream content type %q", ct)
	}
	var streamErr error
	if ae, ok := a.Stream.End["api_error"].(*openai.APIError); ok {
		streamErr = ae
	} else if !a.Stream.Clean() {
		streamErr = errors.New("stream did not end cleanly")
	}
	return a.Message, a.Finish, a.Usage, streamErr
}

// TestAgainstFakeProvider runs a parallel tool loop, whole and streamed,
// against the fake Bedrock the e2e tests use, so both agree on Converse.
func TestAgainstFakeProvider(t *testing.T) {
	fp := fakeprovider.Start(fakeprovider.Behavior{Chunks: 3})
	defer fp.Close()
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "whole", true: "stream"}[stream], func(t *testing.T) {
			fp.Reset()
			tg := fakeTarget(fp.URL)
			req := &openai.ChatRequest{Model: "claude", Stream: stream,
				Messages: []openai.Message{{Role: openai.RoleUser, Content: openai.TextContent("parallel weather")}},
				Tools: []openai.Tool{{Type: "function", Function: openai.FunctionDecl{Name: "get_weather"}},
					{Type: "function", Function: openai.FunctionDecl{Name: "get_time"}}}}
			msg, finish, usage, err := roundTrip(t, req, tg)
			if err != nil {
				t.Fatal(err)
			}
			if finish != openai.FinishToolCalls || len(msg.ToolCalls) != 2 || msg.ToolCalls[1].Function.Name != "get_time" ||
				msg.ToolCalls[0].Function.Arguments != `{"input":"parallel weather"}` || msg.ToolCalls[0].ID == msg.ToolCalls[1].ID ||
				usage == nil || usage.TotalTokens == 0 {
				t.Fatalf("first turn: %+v %q %+v", msg, finish, usage)
			}
			req.Messages = append(req.Messages, msg,
				openai.Message{Role: openai.RoleTool, ToolCallID: msg.ToolCalls[0].ID, Content: openai.TextContent("sunny")},
				openai.Message{Role: openai.RoleTool, ToolCallID: msg.ToolCalls[1].ID, Content: openai.TextContent(`{"t":"noon"}`)})
			msg, finish, _, err = roundTrip(t, req, tg)
			if err != nil {
				t.Fatal(err)
			}
			if finish != openai.FinishStop || msg.Content.PlainText() != `tool said: sunny | {"t":"noon"}` {
				t.Fatalf("second turn: %+v %q", msg, finish)
			}
			reqs := fp.Requests()
			last := reqs[len(reqs)-1]
			wantPath := "/model/anthropic.claude-sonnet-4-20250514-v1:0/converse"
			if stream {
				wantPath += "-stream"
			}
			if last.Path != wantPath || !strings.HasPrefix(last.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") {
				t.Fatalf("sent %s with %q", last.Path, last.Header.Get("Authorization"))
			}
		})
	}
}

// TestFakeProviderReasoning checks that signed reasoning comes back whole
// and streamed, and that sending it back keeps thinking on in a tool loop.
func TestFakeProviderReasoning(t *testing.T) {
	fp := fakeprovider.Start(fakeprovider.Behavior{Thinking: "I should call the tool."})
	defer fp.Close()
	for _, stream := range []bool{false, true} {
		req := &openai.ChatRequest{Model: "claude", Stream: stream, ReasoningEffort: "low",
			Messages: []openai.Message{{Role: openai.RoleUser, Content: openai.TextContent("weather")}},
			Tools:    []openai.Tool{{Type: "function", Function: openai.FunctionDecl{Name: "get_weather"}}}}
		msg, _, _, err := roundTrip(t, req, fakeTarget(fp.URL))
		if err != nil {
			t.Fatal(err)
		}
		if msg.ReasoningContent != "I should call the tool." || msg.ReasoningSignature != "fake-signature" || len(msg.ToolCalls) != 1 {
			t.Fatalf("stream=%v: %+v", stream, msg)
		}
		req.Messages = append(req.Messages, msg, openai.Message{Role: openai.RoleTool, ToolCallID: msg.ToolCalls[0].ID, Content: openai.TextContent("sunny")})
		out, err := BuildConverse(context.Background(), req, fakeTarget(fp.URL))
		if err != nil {
			t.Fatal(err)
		}
		if len(out.AdditionalModelRequestFields) == 0 || out.Messages[1].Content[0].ReasoningContent == nil {
			t.Fatalf("stream=%v: signed reasoning sent back did not keep thinking on: %+v", stream, out)
		}
	}
}

func TestFakeProviderFailures(t *testing.T) {
	fp := fakeprovider.Start(fakeprovider.Behavior{})
	defer fp.Close()
	tg := fakeTarget(fp.URL)
	req := &openai.ChatRequest{Model: "x", Messages: []openai.Message{{Role: openai.RoleUser, Content: openai.TextContent("a long enough prompt")}}}
	for status, want := range map[int]int{400: 400, 429: 429, 503: 503, 500: 502, 403: 403} {
		fp.SetBehavior(fakeprovider.Behavior{FailFirst: 1 << 30, FailStatus: status, RetryAfter: 4})
		_, _, _, err := roundTrip(t, req, tg)
		var ae *openai.APIError
		if !errors.As(err, &ae) || ae.Status != want || ae.Message != "injected failure "+strconv.Itoa(status) {
			t.Errorf("upstream %d: %v", status, err)
			continue
		}
		if status == 429 && ae.RetryAfter.Seconds() != 4 {
			t.Errorf("429 Retry-After = %v", ae.RetryAfter)
		}
	}

	req.Stream = true
	fp.SetBehavior(fakeprovider.Behavior{StreamError: "model crashed"})
	_, _, _, err := roundTrip(t, req, tg)
	var ae *openai.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadGateway || ae.Message != "model crashed" || !ae.Retryable {
		t.Errorf("stream error: %v", err)
	}

	fp.SetBehavior(fakeprovider.Behavior{Truncated: true})
	for _, stream := range []bool{false, true} {
		req.Stream = stream
		_, finish, _, err := roundTrip(t, req, tg)
		if err != nil || finish != openai.FinishLength {
			t.Errorf("stream=%v truncated: %q %v", stream, finish, err)
		}
	}

	fp.SetBehavior(fakeprovider.Behavior{DieAfterChunks: 2})
	hr, _ := testTranslator().ChatRequest(context.Background(), req, tg)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	chunks, err := tt.Drain(t, New().ChatStream(resp.Body, tg, testMeta), tt.MaxChunks)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut stream ended with %v", err)
	}
	contract.Check(t, chunks, false)
}
