package translate

import (
	"strings"
	"testing"

	"tollgate.dev/tollgate/dataplane/schema/openai"
)

func TestWithoutCarriedState(t *testing.T) {
	sig := "call_abc_0" + ToolCallStateMarker + "1" + strings.Repeat("Qm9vaw", 400)
	req := &openai.ChatRequest{Messages: []openai.Message{
		{Role: "user", Content: openai.TextContent("weather?")},
		{Role: "assistant", ToolCalls: []openai.ToolCall{{ID: sig}, {ID: "call_abc_1"}}},
		{Role: "tool", ToolCallID: sig, Content: openai.TextContent("sunny")},
		{Role: "tool", ToolCallID: "call_abc_1", Content: openai.TextContent("12:00")},
	}}
	out := WithoutCarriedState(req)
	if out == req {
		t.Fatal("a request carrying state must be copied, not edited in place")
	}
	if got := out.Messages[1].ToolCalls[0].ID; got != "call_abc_0" {
		t.Errorf("assistant tool call id = %q", got)
	}
	if got := out.Messages[2].ToolCallID; got != "call_abc_0" {
		t.Errorf("tool message id = %q", got)
	}
	if out.Messages[1].ToolCalls[1].ID != "call_abc_1" || out.Messages[3].ToolCallID != "call_abc_1" {
		t.Error("ids without state must stay as they are")
	}
	if req.Messages[1].ToolCalls[0].ID != sig || req.Messages[2].ToolCallID != sig {
		t.Error("the caller's request was modified")
	}

	plain := &openai.ChatRequest{Messages: []openai.Message{
		{Role: "assistant", ToolCalls: []openai.ToolCall{{ID: "my__tsid"}, {ID: "x__ts2abc"}, {ID: "__ts1abc"}, {ID: "y__ts1a+b"}}},
	}}
	if WithoutCarriedState(plain) != plain {
		t.Error("client-made ids that merely contain the marker must be left alone (and the request not copied)")
	}
}
