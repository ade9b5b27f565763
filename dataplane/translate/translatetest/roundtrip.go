package translatetest

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// Answer is one turn's answer folded into a message, whole or streamed.
type Answer struct {
	Message openai.Message
	Finish  string
	Usage   *openai.Usage
	// Stream is the streamed result, nil for a whole answer.
	Stream *StreamResult
	// Header is the upstream response's header.
	Header http.Header
}

// RoundTrip sends req through tr to the server tg points at and folds the
// answer into one message. A non-200 answer is returned as the translated
// error. A streamed answer is drained (see Collect) and must keep k.
func RoundTrip(t *testing.T, tr translate.Translator, k Contract, req *openai.ChatRequest, tg translate.Target) (Answer, *openai.APIError) {
	t.Helper()
	hr, err := tr.ChatRequest(context.Background(), req, tg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return Answer{}, tr.Error(resp.StatusCode, resp.Header, b)
	}
	if !req.Stream {
		b, _ := io.ReadAll(resp.Body)
		out, err := tr.ChatResponse(b, tg, k.Meta)
		if err != nil {
			t.Fatal(err)
		}
		return Answer{Message: out.Choices[0].Message, Finish: out.Choices[0].FinishReason, Usage: out.Usage, Header: resp.Header}, nil
	}
	res := Collect(t, tr.ChatStream(resp.Body, tg, k.Meta))
	k.Check(t, res.Chunks, res.Clean())
	msg, finish, usage := Fold(res.Chunks)
	return Answer{Message: msg, Finish: finish, Usage: usage, Stream: &res, Header: resp.Header}, nil
}

// Fold accumulates chunks into a message the way OpenAI SDKs do: text,
// reasoning and its signature concatenated, tool calls opened by their
// first delta and their arguments appended.
func Fold(chunks []*openai.ChatChunk) (openai.Message, string, *openai.Usage) {
	msg := openai.Message{Role: openai.RoleAssistant}
	var text, reasoning strings.Builder
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
			if ch.Delta.ReasoningContent != nil {
				reasoning.WriteString(*ch.Delta.ReasoningContent)
			}
			if ch.Delta.ReasoningSignature != nil {
				msg.ReasoningSignature = *ch.Delta.ReasoningSignature
			}
			for _, tc := range ch.Delta.ToolCalls {
				if *tc.Index >= len(msg.ToolCalls) {
					tc.Index = nil
					msg.ToolCalls = append(msg.ToolCalls, tc)
					continue
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
	msg.ReasoningContent = reasoning.String()
	return msg, finish, usage
}
