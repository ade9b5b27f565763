package openai

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
)

// TestChatResponseBytes: an answer already in canonical form goes out as
// the upstream's bytes with the gateway's envelope, and decodes to what
// ChatResponse gives; one that needs normalising is declined.
func TestChatResponseBytes(t *testing.T) {
	cases := map[string]struct {
		ok   bool
		keep string // an unmodelled field that must survive
	}{
		"text.json":                   {ok: true, keep: `"accepted_prediction_tokens":0`},
		"tool_calls.json":             {ok: true},
		"azure_content_filter.json":   {ok: true, keep: `"prompt_filter_results"`},
		"compat_no_finish.json":       {ok: false},
		"compat_reasoning_tools.json": {ok: false},
	}
	for _, in := range tt.Fixtures(t, "responses", ".json") {
		name := filepath.Base(in)
		want, listed := cases[name]
		if !listed {
			t.Errorf("fixture %s: add it to the table", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			body := tt.ReadFile(t, in)
			out, usage, ok := flavorOf(in).ChatResponseBytes(body, translate.Target{Provider: testProvider()}, testMeta)
			if ok != want.ok {
				t.Fatalf("ok = %v, want %v", ok, want.ok)
			}
			if !ok {
				return
			}
			if want.keep != "" && !bytes.Contains(out, []byte(want.keep)) {
				t.Errorf("output lost %s:\n%s", want.keep, out)
			}
			checkSameAsChatResponse(t, flavorOf(in), body, out, usage)
		})
	}
}

func TestChatResponseBytesDeclines(t *testing.T) {
	for _, body := range []string{
		`{"choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"eos"}]}`,
		`{"choices":[{"index":0,"message":{"role":"assistant","content":"x"}}]}`,
		`{"choices":[{"index":0,"message":{"content":"x"},"finish_reason":"stop"}]}`,
		`{"choices":[{"index":0,"message":{"role":"assistant","reasoning":"r","content":"x"},"finish_reason":"stop"}]}`,
		`{"choices":[{"index":0,"message":{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`,
		`{"choices":[{"index":0,"message":{"role":"assistant","tool_calls":[{"id":"c","index":0,"type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`,
		`{"choices":[{"index":0,"message":{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"stop"}]}`,
		`{"choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}`,
		`{"choices":[],"usage":null}`,
		`{"error":{"message":"overloaded"}}`,
		`{"Choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}]}`,
		`{"choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}],"model":"a","model":"b"}`,
		`{"choices":[{"index":0,"message":{"role":"assistant","content":"x"},"message":{"role":"user"},"finish_reason":"stop"}]}`,
		`{"choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}]} trailing`,
	} {
		if out, _, ok := NewCompatible().ChatResponseBytes([]byte(body), translate.Target{}, testMeta); ok {
			t.Errorf("accepted %s\n-> %s", body, out)
		}
	}
}

// checkSameAsChatResponse holds ChatResponseBytes' output to ChatResponse:
// decoded by encoding/json rules, both must say the same, usage included.
func checkSameAsChatResponse(t *testing.T, tr *Translator, body, out []byte, usage *openai.Usage) {
	t.Helper()
	want, err := tr.ChatResponse(body, translate.Target{Provider: testProvider()}, testMeta)
	if err != nil {
		t.Fatalf("ChatResponse declines what ChatResponseBytes accepted: %v\n%s", err, body)
	}
	var got openai.ChatResponse
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("output is not a chat.completion: %v\n%s", err, out)
	}
	for i := range got.Choices {
		if lp := strings.TrimSpace(string(got.Choices[i].Logprobs)); lp == "null" {
			got.Choices[i].Logprobs = nil // ChatResponse drops a null; the bytes keep it
		}
	}
	g, _ := json.Marshal(&got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Fatalf("bytes and ChatResponse disagree\n  in: %s\nbytes: %s\n want: %s", body, g, w)
	}
	u, _ := json.Marshal(usage)
	wu, _ := json.Marshal(want.Usage)
	if !bytes.Equal(u, wu) {
		t.Fatalf("usage %s, ChatResponse has %s", u, wu)
	}
}

// FuzzChatResponseBytes: whatever upstream bytes ChatResponseBytes
// accepts, the client decodes the same answer (and the meter reads the
// same usage) as from ChatResponse.
func FuzzChatResponseBytes(f *testing.F) {
	for _, in := range tt.Fixtures(f, "responses", ".json") {
		f.Add(tt.ReadFile(f, in))
	}
	f.Add([]byte(`{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"<b>&</b>","tool_calls":[]},"finish_reason":"length","logprobs":null}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"completion_tokens_details":{"accepted_prediction_tokens":1}}}`))
	f.Add([]byte(`{"choices":[{"index":1,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c\u0031","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"error":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, tr := range []*Translator{NewOpenAI(), NewCompatible()} {
			out, usage, ok := tr.ChatResponseBytes(body, translate.Target{}, testMeta)
			if ok {
				checkSameAsChatResponse(t, tr, body, out, usage)
			}
		}
	})
}
