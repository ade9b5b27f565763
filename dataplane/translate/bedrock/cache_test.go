package bedrock

import (
	"context"
	"testing"

	json "github.com/go-json-experiment/json/v1"

	"tollgate.dev/tollgate/dataplane/translate/anthropic"
)

// TestAnthropicClientCachePoints follows an Anthropic client's cache
// breakpoints through the canonical form to Converse: each marked system
// block, message block, tool_result and tool is followed by a cachePoint
// with its ttl, and nothing else is.
func TestAnthropicClientCachePoints(t *testing.T) {
	body := `{"model":"claude","max_tokens":100,
		"system":[{"type":"text","text":"Manual.","cache_control":{"type":"ephemeral","ttl":"1h"}},{"type":"text","text":"Date."}],
		"tools":[{"name":"Read","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral","ttl":"1h"}}],
		"messages":[
			{"role":"user","content":"Read a.go"},
			{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"Read","input":{}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"package a","cache_control":{"type":"ephemeral"}}]}]}`
	req, aerr := anthropic.ParseMessagesRequest([]byte(body))
	if aerr != nil {
		t.Fatal(aerr)
	}
	out, err := BuildConverse(context.Background(), req, target("anthropic.claude-sonnet-4"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(struct {
		System any `json:"system"`
		Last   any `json:"last"`
		Tools  any `json:"tools"`
	}{out.System, out.Messages[len(out.Messages)-1].Content, out.ToolConfig.Tools})
	want := `{"system":[{"text":"Manual."},{"cachePoint":{"type":"default","ttl":"1h"}},{"text":"Date."}],` +
		`"last":[{"toolResult":{"toolUseId":"toolu_1","content":[{"text":"package a"}]}},{"cachePoint":{"type":"default"}}],` +
		`"tools":[{"toolSpec":{"name":"Read","inputSchema":{"json":{"type":"object"}}}},{"cachePoint":{"type":"default","ttl":"1h"}}]}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
