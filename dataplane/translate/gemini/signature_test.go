package gemini

import (
	"context"
	"regexp"
	"strings"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	wire "tollgate.dev/tollgate/dataplane/schema/gemini"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func TestSignatureInID(t *testing.T) {
	tests := []struct {
		name, id, sig string
		embedded      bool
	}{
		{"canonical base64", "call_x_0", "c2lnLTE=", true},
		{"base64 with + and /", "call_x_0", "CiQBjz1rX+/w", true},
		{"not base64", "call_x_0", "sig two ü", true},
		{"non-canonical base64", "call_x_0", "c2lnLTF=", true},
		{"no signature", "call_x_0", "", false},
		{"at the bound", "call_x_0", strings.Repeat("A", MaxSignatureInID), true},
		{"over the bound", "call_x_0", strings.Repeat("A", MaxSignatureInID+4), false},
		{"id with the marker", "gem__ts1", "c2lnLTE=", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := withSignature(tt.id, tt.sig)
			if (id != tt.id) != tt.embedded {
				t.Fatalf("withSignature = %q, embedded want %v", id, tt.embedded)
			}
			if !tt.embedded {
				return
			}
			if !idPattern.MatchString(id) {
				t.Errorf("id %q has characters outside [A-Za-z0-9_-]", id)
			}
			if max := len(tt.id) + 5 + 4*((MaxSignatureInID+2)/3); len(id) > max {
				t.Errorf("id length %d exceeds documented bound %d", len(id), max)
			}
			base, sig := splitSignature(id)
			if base != tt.id || sig != tt.sig {
				t.Errorf("splitSignature = %q, %q; want %q, %q", base, sig, tt.id, tt.sig)
			}
		})
	}
	for _, id := range []string{"call_1", "x__ts", "x__ts1", "x__ts2abc", "x__ts1!!", "x__ts1c2lnLTE="} {
		if base, sig := splitSignature(id); base != id || sig != "" {
			t.Errorf("splitSignature(%q) = %q, %q; want the id unchanged", id, base, sig)
		}
	}
}

// TestSignatureRoundTrip runs one step of an agent loop: Gemini's signed
// parallel calls reach the client as tool calls, the client echoes only
// id, name and arguments (no reasoning_signature), and the next request
// carries each signature on the exact call part it came on.
func TestSignatureRoundTrip(t *testing.T) {
	upstream := `{"candidates":[{"index":0,"finishReason":"STOP","content":{"role":"model","parts":[
	 {"functionCall":{"name":"a","args":{"x":1}},"thoughtSignature":"AAEC/+8="},
	 {"functionCall":{"name":"b","args":{}}}]}}]}`
	meta := translate.StreamMeta{ID: "chatcmpl-abc", Model: "m"}
	resp, err := Translator{}.ChatResponse([]byte(upstream), translate.Target{}, meta)
	if err != nil {
		t.Fatal(err)
	}
	calls := resp.Choices[0].Message.ToolCalls
	if len(calls) != 2 || resp.Choices[0].FinishReason != openai.FinishToolCalls {
		t.Fatalf("got %+v", resp.Choices[0])
	}
	// The stream gives the same ids.
	sse := "data: " + strings.ReplaceAll(upstream, "\n", "") + "\n\n"
	r := NewStreamReader(strings.NewReader(sse), meta)
	var streamed []string
	for {
		ch, err := r.Next()
		if err != nil {
			break
		}
		for _, c := range ch.Choices {
			for _, tc := range c.Delta.ToolCalls {
				streamed = append(streamed, tc.ID)
			}
		}
	}
	if len(streamed) != 2 || streamed[0] != calls[0].ID || streamed[1] != calls[1].ID {
		t.Fatalf("stream ids %v, response ids %s %s", streamed, calls[0].ID, calls[1].ID)
	}

	echo := make([]openai.ToolCall, len(calls))
	for i, c := range calls {
		echo[i] = openai.ToolCall{ID: c.ID, Type: "function", Function: c.Function}
	}
	req := &openai.ChatRequest{Messages: []openai.Message{
		{Role: openai.RoleUser, Content: openai.TextContent("go")},
		{Role: openai.RoleAssistant, ToolCalls: echo},
		{Role: openai.RoleTool, ToolCallID: calls[1].ID, Content: openai.TextContent("B")},
		{Role: openai.RoleTool, ToolCallID: calls[0].ID, Content: openai.TextContent("A")},
	}}
	out, err := BuildRequest(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	model := out.Contents[1].Parts
	if model[0].ThoughtSignature != "AAEC/+8=" || model[1].ThoughtSignature != "" {
		t.Errorf("signatures %q %q, want the original on the first call only", model[0].ThoughtSignature, model[1].ThoughtSignature)
	}
	got, _ := json.Marshal(out.Contents[2].Parts)
	want := `[{"functionResponse":{"name":"a","response":{"content":"A"}}},{"functionResponse":{"name":"b","response":{"content":"B"}}}]`
	if string(got) != want {
		t.Errorf("tool turn %s, want %s (call order)", got, want)
	}
}

func FuzzSignatureInID(f *testing.F) {
	f.Add("call_x_0", "c2lnLTE=")
	f.Add("call_x_0", "not base64")
	f.Add("a__ts1", "")
	f.Fuzz(func(t *testing.T, id, sig string) {
		got := withSignature(id, sig)
		if got == id {
			return
		}
		base, s := splitSignature(got)
		if base != id || s != sig {
			t.Fatalf("round trip of (%q, %q) gave (%q, %q)", id, sig, base, s)
		}
	})
}

func TestFinishReasonTable(t *testing.T) {
	tests := []struct {
		reason   string
		hasCalls bool
		want     string
	}{
		{"STOP", false, openai.FinishStop},
		{"STOP", true, openai.FinishToolCalls},
		{"", true, openai.FinishToolCalls},
		{"MAX_TOKENS", false, openai.FinishLength},
		{"MAX_TOKENS", true, openai.FinishLength},
		{"SAFETY", false, openai.FinishContentFilter},
		{"RECITATION", false, openai.FinishContentFilter},
		{"BLOCKLIST", false, openai.FinishContentFilter},
		{"PROHIBITED_CONTENT", false, openai.FinishContentFilter},
		{"SPII", false, openai.FinishContentFilter},
		{"IMAGE_SAFETY", false, openai.FinishContentFilter},
		{"MALFORMED_FUNCTION_CALL", false, openai.FinishStop},
		{"OTHER", false, openai.FinishStop},
	}
	for _, tt := range tests {
		if got := finishReason(tt.reason, tt.hasCalls); got != tt.want {
			t.Errorf("finishReason(%q, %v) = %q, want %q", tt.reason, tt.hasCalls, got, tt.want)
		}
	}
}

// TestUsageTable pins the usage mapping: Gemini's promptTokenCount already
// includes cached content (cachedContentTokenCount is a part of it), and
// OpenAI's completion_tokens include reasoning, so thoughts are added.
func TestUsageTable(t *testing.T) {
	got := convertUsage(&wire.UsageMetadata{PromptTokenCount: 100, CachedContentTokenCount: 60, ToolUsePromptTokenCount: 5,
		CandidatesTokenCount: 20, ThoughtsTokenCount: 30, TotalTokenCount: 155})
	if got.PromptTokens != 105 || got.CompletionTokens != 50 || got.TotalTokens != 155 ||
		got.PromptTokensDetails.CachedTokens != 60 || got.CompletionTokensDetails.ReasoningTokens != 30 {
		t.Errorf("got %+v %+v %+v", got, got.PromptTokensDetails, got.CompletionTokensDetails)
	}
	if convertUsage(nil) != nil {
		t.Error("no usageMetadata must give no usage")
	}
}

// TestToolTurnNotSplitByUserText pins that a user message sent between tool
// results does not split the function-response turn: Gemini requires it to
// hold as many responses as the preceding turn had calls.
func TestToolTurnNotSplitByUserText(t *testing.T) {
	var req openai.ChatRequest
	if err := json.Unmarshal([]byte(`{"model":"m","messages":[{"role":"user","content":"go"},
	 {"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"b","type":"function","function":{"name":"g","arguments":"{}"}}]},
	 {"role":"tool","tool_call_id":"a","content":"A"},
	 {"role":"user","content":"note"},
	 {"role":"tool","tool_call_id":"b","content":"B"}]}`), &req); err != nil {
		t.Fatal(err)
	}
	out, err := BuildRequest(context.Background(), &req, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(out.Contents[2:])
	want := `[{"role":"user","parts":[{"functionResponse":{"name":"f","response":{"content":"A"}}},{"functionResponse":{"name":"g","response":{"content":"B"}}}]},{"role":"user","parts":[{"text":"note"}]}]`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestToolCallIDBase(t *testing.T) {
	id := withSignature("call_abcdefghijklmnopqrstuvwx_12", strings.Repeat("Zm9v", 500))
	if got := ToolCallIDBase(id); got != "call_abcdefghijklmnopqrstuvwx_12" || len(got) > 40 {
		t.Errorf("ToolCallIDBase = %q", got)
	}
	if got := ToolCallIDBase("toolu_01"); got != "toolu_01" {
		t.Errorf("ToolCallIDBase(plain) = %q", got)
	}
}
