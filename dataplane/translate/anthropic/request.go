// Package anthropic translates between Tollgate's canonical form (OpenAI
// Chat Completions) and the Anthropic Messages API, in both directions:
//
//   - outbound, New() is the translate.Translator that sends canonical
//     requests to an Anthropic provider and maps its answers, streams and
//     errors back to OpenAI's shapes;
//   - inbound, ParseMessagesRequest, MessagesResponse, MessagesStreamWriter
//     and ErrorBody let Anthropic-native clients (Claude Code, the Anthropic
//     SDKs) call POST /v1/messages and be routed to any provider.
//
// Mapping choices that are not one-to-one are documented on the functions
// that make them; the package doc of each direction sums them up:
//
//   - temperature: OpenAI allows 0..2, Anthropic 0..1; values above 1 are
//     clamped to 1 (not scaled), so the common values 0..1 keep their exact
//     meaning.
//   - JSON mode: Anthropic has no response_format. Both json_object and
//     json_schema are served by a synthetic tool (JSONToolName) whose
//     input_schema is the requested schema ({"type":"object"} for
//     json_object); tool_choice forces it, and its tool_use input is mapped
//     back to the message content as compact JSON text (streamed as content
//     deltas), with finish_reason "stop".
//   - reasoning_effort maps to thinking.budget_tokens (see ThinkingBudget);
//     thinking is omitted when it cannot be honoured: budget below
//     Anthropic's 1024 minimum, forced tool use (tool_choice any/tool,
//     which Anthropic rejects together with thinking), or a conversation
//     that continues a tool loop or an assistant prefill whose assistant
//     turn has no signed reasoning (see reasoningTailSigned). Without a
//     client max_tokens, max_tokens is raised by the budget so the answer
//     keeps the default room and budget_tokens < max_tokens holds. With
//     thinking, temperature is not sent (Anthropic accepts only 1, its
//     default) and top_p only when it lies in Anthropic's 0.95..1.
//   - cache_control (prompt caching) on a content part or a tool goes onto
//     the block or tool made from it; with more than MaxCacheBreakpoints
//     the last ones are kept (see limitCacheBreakpoints).
package anthropic

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/routetable"
	wire "tollgate.dev/tollgate/dataplane/schema/anthropic"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	"tollgate.dev/tollgate/dataplane/translate/media"
)

// JSONToolName is the synthetic tool that carries JSON-mode answers. The
// name is reserved: a client tool with this name is rejected, because
// responses are mapped back by name alone.
const JSONToolName = "tollgate_json_response"

// DefaultMaxTokens is the max_tokens sent when neither the request, the
// model entry nor the provider gives one (Anthropic requires the field).
const DefaultMaxTokens = 4096

// MinThinkingBudget is Anthropic's smallest accepted budget_tokens.
const MinThinkingBudget = 1024

// Translator is the Anthropic Messages API translator. It is stateless and
// safe for concurrent use.
type Translator struct{}

// New returns the Anthropic translator.
func New() translate.Translator { return Translator{} }

var _ translate.Translator = Translator{}

// ChatRequest builds POST {BaseURL}/v1/messages with x-api-key and
// anthropic-version headers. Provider.Headers are applied first, so they can
// add headers (anthropic-beta, ...) but never replace the credential, the
// version or the content type. A request from a Messages API client that
// still has its own body (Native) sends that body, model replaced, with the
// client's anthropic-beta features added to the provider's; any other is
// translated from the canonical form (BuildRequest).
func (Translator) ChatRequest(ctx context.Context, req *openai.ChatRequest, t translate.Target) (*http.Request, error) {
	if t.Provider == nil {
		return nil, fmt.Errorf("anthropic: target has no provider")
	}
	req = translate.WithoutCarriedState(req) // tool_use ids must match ^[a-zA-Z0-9_-]+$ and stay short
	b := nativeBody(req, t.Model)
	if b == nil && req.NativeOnly != "" {
		return nil, badRequest("", "The request uses %s, which the gateway can only pass on unchanged, and this request cannot be: "+
			"a data policy inspects it, or its history holds another provider's tool-call state.", req.NativeOnly)
	}
	if b == nil {
		body, err := BuildRequest(req, t.Model, t.Provider)
		if err != nil {
			return nil, err
		}
		if b, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("anthropic: encode request: %w", err)
		}
	}
	url := strings.TrimRight(t.Provider.BaseURL, "/") + "/v1/messages"
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("anthropic: build request for provider %s: invalid base URL", t.Provider.ID)
	}
	for k, v := range t.Provider.Headers {
		hr.Header.Set(k, v)
	}
	version := t.Provider.APIVersion
	if version == "" {
		version = wire.DefaultVersion
	}
	if req.Native != nil && req.Native.Beta != "" {
		hr.Header.Set("anthropic-beta", betaHeader(hr.Header.Get("anthropic-beta"), req.Native.Beta))
	}
	hr.Header.Set("x-api-key", t.Provider.APIKey)
	hr.Header.Set("anthropic-version", version)
	hr.Header.Set("Content-Type", "application/json")
	if req.Stream {
		hr.Header.Set("Accept", "text/event-stream")
	} else {
		hr.Header.Set("Accept", "application/json")
	}
	return hr, nil
}

// badRequest builds the 400 error for a request Anthropic cannot serve.
func badRequest(param, format string, args ...any) *openai.APIError {
	return openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, "", param, fmt.Sprintf(format, args...))
}

// BuildRequest maps a canonical request to an Anthropic Messages body for
// upstream model. It is pure, so it is what tests and benchmarks exercise;
// every error is an *openai.APIError with status 400.
func BuildRequest(req *openai.ChatRequest, model string, p *routetable.Provider) (*wire.MessagesRequest, error) {
	if req.N != nil && *req.N > 1 {
		return nil, badRequest("n", "n > 1 is not supported by Anthropic models")
	}
	out := &wire.MessagesRequest{Model: model, Stream: req.Stream}

	if err := convertMessages(req.Messages, out); err != nil {
		return nil, err
	}

	maxTokens := resolveMaxTokens(req, model, p)
	out.MaxTokens = &maxTokens

	if len(req.Stop) > 0 {
		out.StopSequences = append([]string(nil), req.Stop...)
	}
	if req.User != "" {
		out.Metadata = &wire.Metadata{UserID: req.User}
	}

	forced, err := convertTools(req, out)
	if err != nil {
		return nil, err
	}
	limitCacheBreakpoints(out)

	budget := 0
	if req.ReasoningEffort != "" && !forced && reasoningTailSigned(out.Messages) {
		if req.MaxOutputTokens() <= 0 {
			// Without a client limit the default is the room for the
			// answer; thinking comes on top, as on Bedrock.
			maxTokens += ThinkingBudget(req.ReasoningEffort, math.MaxInt32)
			out.MaxTokens = &maxTokens
		}
		budget = ThinkingBudget(req.ReasoningEffort, maxTokens)
	}
	if budget > 0 {
		out.Thinking = &wire.Thinking{Type: wire.ThinkingEnabled, BudgetTokens: budget}
		// With thinking Anthropic rejects temperature (other than 1) and
		// top_k, and accepts top_p only between 0.95 and 1.
		if req.TopP != nil && *req.TopP >= 0.95 && *req.TopP <= 1 {
			v := *req.TopP
			out.TopP = &v
		}
	} else {
		// Anthropic's newer models reject temperature and top_p together,
		// so temperature (the more common knob) wins.
		if req.Temperature != nil {
			v := math.Min(math.Max(*req.Temperature, 0), 1)
			out.Temperature = &v
		} else if req.TopP != nil {
			v := *req.TopP
			out.TopP = &v
		}
	}
	return out, nil
}

// reasoningTailSigned reports whether Claude can think on this
// conversation. With thinking on, Claude requires the final assistant turn,
// when the conversation ends inside a tool loop (the last user turn holds
// tool results) or with an assistant prefill, to start with a thinking or
// redacted_thinking block ("Expected thinking or redacted_thinking, but
// found tool_use"). OpenAI clients do not send reasoning back, so thinking
// is left off for such requests rather than failing them; clients that echo
// reasoning_content with its reasoning_signature keep thinking on. Earlier
// turns need no thinking: Anthropic strips thinking from completed turns.
// The Bedrock translator applies the same rule.
func reasoningTailSigned(msgs []wire.Message) bool {
	n := len(msgs)
	if n == 0 {
		return true
	}
	var final *wire.Message
	switch last := &msgs[n-1]; {
	case last.Role == wire.RoleAssistant:
		final = last
	case n >= 2 && msgs[n-2].Role == wire.RoleAssistant && hasToolResult(last.Content.Blocks):
		final = &msgs[n-2]
	default:
		return true
	}
	b := final.Content.Blocks
	return len(b) > 0 && (b[0].Type == wire.BlockThinking || b[0].Type == wire.BlockRedactedThinking)
}

func hasToolResult(blocks []wire.ContentBlock) bool {
	for i := range blocks {
		if blocks[i].Type == wire.BlockToolResult {
			return true
		}
	}
	return false
}

// resolveMaxTokens picks max_tokens: the request's max_completion_tokens or
// max_tokens, else the model entry's MaxOutputTokens, else the provider's
// DefaultMaxTokens, else DefaultMaxTokens.
func resolveMaxTokens(req *openai.ChatRequest, model string, p *routetable.Provider) int {
	if n := req.MaxOutputTokens(); n > 0 {
		return n
	}
	if p != nil {
		if m, ok := p.Model(model); ok && m.MaxOutputTokens > 0 {
			return m.MaxOutputTokens
		}
		if p.DefaultMaxTokens > 0 {
			return p.DefaultMaxTokens
		}
	}
	return DefaultMaxTokens
}

// ThinkingBudget maps an OpenAI reasoning_effort to an Anthropic thinking
// budget: minimal 1024, low 2048, medium 8192, high 16384, xhigh 32768
// tokens. OpenAI counts reasoning inside max_completion_tokens and Anthropic
// requires budget_tokens < max_tokens, so the budget is capped at
// maxTokens-1; 0 (no thinking) is returned for "none", unknown efforts, and
// when the cap falls below Anthropic's 1024 minimum.
func ThinkingBudget(effort string, maxTokens int) int {
	var b int
	switch effort {
	case "minimal":
		b = 1024
	case "low":
		b = 2048
	case "medium":
		b = 8192
	case "high":
		b = 16384
	case "xhigh":
		b = 32768
	default:
		return 0
	}
	if b > maxTokens-1 {
		b = maxTokens - 1
	}
	if b < MinThinkingBudget {
		return 0
	}
	return b
}

// convertMessages hoists system/developer messages into System and builds
// the alternating user/assistant turns. Consecutive turns of the same role
// (for example tool results followed by user text) are merged, because
// Anthropic requires alternation.
func convertMessages(msgs []openai.Message, out *wire.MessagesRequest) error {
	var system []wire.ContentBlock
	turns := make([]wire.Message, 0, len(msgs))
	appendTurn := func(role string, blocks []wire.ContentBlock) {
		if len(blocks) == 0 {
			return
		}
		if n := len(turns); n > 0 && turns[n-1].Role == role {
			turns[n-1].Content.Blocks = append(turns[n-1].Content.Blocks, blocks...)
			return
		}
		turns = append(turns, wire.Message{Role: role, Content: wire.BlocksContent(blocks...)})
	}
	for i := range msgs {
		m := &msgs[i]
		switch m.Role {
		case openai.RoleSystem, openai.RoleDeveloper:
			blocks, err := textBlocks(m.Content, i)
			if err != nil {
				return err
			}
			system = append(system, blocks...)
		case openai.RoleUser:
			blocks, err := userBlocks(m.Content, i)
			if err != nil {
				return err
			}
			appendTurn(wire.RoleUser, blocks)
		case openai.RoleAssistant:
			blocks, err := assistantBlocks(m, i)
			if err != nil {
				return err
			}
			appendTurn(wire.RoleAssistant, blocks)
		case openai.RoleTool:
			if m.ToolCallID == "" {
				return badRequest(fmt.Sprintf("messages[%d].tool_call_id", i), "tool message must have a tool_call_id")
			}
			res := wire.ContentBlock{Type: wire.BlockToolResult, ToolUseID: m.ToolCallID}
			if !m.Content.IsEmpty() {
				c, err := toolResultContent(m.Content, i)
				if err != nil {
					return err
				}
				res.Content = &c
			}
			// Anthropic requires the turn after tool_use to begin with the
			// tool_result blocks ("Messages following tool_use blocks must
			// begin with a matching number of tool_result blocks"), so a
			// result that follows user text sent in the middle of the loop
			// goes before that text, after the earlier results.
			if n := len(turns); n > 0 && turns[n-1].Role == wire.RoleUser {
				b := turns[n-1].Content.Blocks
				at := 0
				for at < len(b) && b[at].Type == wire.BlockToolResult {
					at++
				}
				turns[n-1].Content.Blocks = append(b[:at], append([]wire.ContentBlock{res}, b[at:]...)...)
				continue
			}
			appendTurn(wire.RoleUser, []wire.ContentBlock{res})
		default:
			return badRequest(fmt.Sprintf("messages[%d].role", i), "unsupported message role %q", m.Role)
		}
	}
	if len(turns) == 0 {
		return badRequest("messages", "messages must contain at least one user, assistant or tool message")
	}
	if len(system) > 0 {
		c := wire.BlocksContent(system...)
		out.System = &c
	}
	out.Messages = turns
	return nil
}

// textBlocks maps system/developer content (string or text parts) to text
// blocks, skipping empty text (Anthropic rejects empty text blocks).
func textBlocks(c openai.Content, i int) ([]wire.ContentBlock, error) {
	switch c.Kind {
	case openai.ContentString:
		if c.Text == "" {
			return nil, nil
		}
		return []wire.ContentBlock{{Type: wire.BlockText, Text: c.Text}}, nil
	case openai.ContentParts:
		out := make([]wire.ContentBlock, 0, len(c.Parts))
		for j, p := range c.Parts {
			if p.Type != openai.PartText {
				return nil, badRequest(fmt.Sprintf("messages[%d].content[%d].type", i, j), "only text parts are allowed in this message, got %q", p.Type)
			}
			if p.Text != "" {
				out = append(out, wire.ContentBlock{Type: wire.BlockText, Text: p.Text, CacheControl: p.CacheControl})
			}
		}
		return out, nil
	}
	return nil, nil
}

// userBlocks maps user content: text, images (data URLs inline as base64,
// http(s) URLs as url sources) and PDF files given as data URLs.
func userBlocks(c openai.Content, i int) ([]wire.ContentBlock, error) {
	if c.Kind != openai.ContentParts {
		return textBlocks(c, i)
	}
	out := make([]wire.ContentBlock, 0, len(c.Parts))
	for j, p := range c.Parts {
		param := fmt.Sprintf("messages[%d].content[%d]", i, j)
		switch p.Type {
		case openai.PartText:
			if p.Text != "" {
				out = append(out, wire.ContentBlock{Type: wire.BlockText, Text: p.Text, CacheControl: p.CacheControl})
			}
		case openai.PartImageURL:
			if p.ImageURL == nil || p.ImageURL.URL == "" {
				return nil, badRequest(param+".image_url", "image_url part must have a url")
			}
			src, err := imageSource(p.ImageURL.URL, param)
			if err != nil {
				return nil, err
			}
			out = append(out, wire.ContentBlock{Type: wire.BlockImage, Source: src, CacheControl: p.CacheControl})
		case openai.PartFile:
			if p.File == nil || p.File.FileData == "" {
				return nil, badRequest(param+".file", "file parts must carry file_data (file_id is not supported by Anthropic models)")
			}
			d, ok, err := media.ParseDataURL(p.File.FileData)
			if !ok {
				// OpenAI's file_data is bare base64; only PDFs are accepted.
				d, ok, err = media.ParseDataURL("data:application/pdf;base64," + p.File.FileData)
			}
			if err != nil || !ok {
				return nil, badRequest(param+".file.file_data", "invalid file_data")
			}
			if d.MediaType != "application/pdf" {
				return nil, badRequest(param+".file.file_data", "only PDF files are supported by Anthropic models, got %q", d.MediaType)
			}
			out = append(out, wire.ContentBlock{Type: wire.BlockDocument, Source: &wire.Source{Type: wire.SourceBase64, MediaType: d.MediaType, Data: d.Base64},
				CacheControl: p.CacheControl})
		default:
			return nil, badRequest(param+".type", "content part type %q is not supported by Anthropic models", p.Type)
		}
	}
	return out, nil
}

// imageSource maps an image URL: data URLs to base64 sources, http(s) URLs
// to url sources that Anthropic fetches itself.
func imageSource(u, param string) (*wire.Source, error) {
	d, ok, err := media.ParseDataURL(u)
	if ok {
		if err != nil {
			return nil, badRequest(param+".image_url.url", "invalid image data URL: %v", err)
		}
		return &wire.Source{Type: wire.SourceBase64, MediaType: d.MediaType, Data: d.Base64}, nil
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return &wire.Source{Type: wire.SourceURL, URL: u}, nil
	}
	return nil, badRequest(param+".image_url.url", "image url must be an http(s) or data URL")
}

// assistantBlocks maps an assistant turn: thinking first (only when it has a
// signature, which Anthropic requires to accept it back), then text, then
// one tool_use block per tool call.
func assistantBlocks(m *openai.Message, i int) ([]wire.ContentBlock, error) {
	out := make([]wire.ContentBlock, 0, 2+len(m.ToolCalls))
	if m.ReasoningSignature != "" {
		out = append(out, wire.ContentBlock{Type: wire.BlockThinking, Thinking: m.ReasoningContent, Signature: m.ReasoningSignature})
	}
	text, err := textBlocks(m.Content, i)
	if err != nil {
		return nil, err
	}
	out = append(out, text...)
	for j, tc := range m.ToolCalls {
		param := fmt.Sprintf("messages[%d].tool_calls[%d]", i, j)
		if tc.Type != "" && tc.Type != "function" {
			return nil, badRequest(param+".type", "tool call type %q is not supported", tc.Type)
		}
		if tc.ID == "" || tc.Function.Name == "" {
			return nil, badRequest(param, "tool call must have an id and a function name")
		}
		input, err := argumentsToInput(tc.Function.Arguments)
		if err != nil {
			return nil, badRequest(param+".function.arguments", "tool call arguments must be a JSON object: %v", err)
		}
		out = append(out, wire.ContentBlock{Type: wire.BlockToolUse, ID: tc.ID, Name: tc.Function.Name, Input: input})
	}
	return out, nil
}

var emptyObject = json.RawMessage(`{}`)

// argumentsToInput turns OpenAI's JSON-encoded arguments into tool_use
// input: "" becomes {}, anything but a JSON object is an error.
func argumentsToInput(args string) (json.RawMessage, error) {
	s := strings.TrimSpace(args)
	if s == "" {
		return emptyObject, nil
	}
	if s[0] != '{' {
		return nil, fmt.Errorf("not an object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		return nil, fmt.Errorf("invalid JSON")
	}
	return buf.Bytes(), nil
}

// toolResultContent maps a tool message's content to a tool_result content:
// a string stays a string, text parts become text blocks.
func toolResultContent(c openai.Content, i int) (wire.Content, error) {
	if c.Kind == openai.ContentString {
		return wire.TextContent(c.Text), nil
	}
	blocks, err := textBlocks(c, i)
	if err != nil {
		return wire.Content{}, err
	}
	return wire.BlocksContent(blocks...), nil
}

// convertTools maps tools, tool_choice, parallel_tool_calls and JSON mode.
// It reports whether tool use is forced (tool_choice any/tool), which
// Anthropic does not allow together with thinking.
func convertTools(req *openai.ChatRequest, out *wire.MessagesRequest) (forced bool, err error) {
	for i, t := range req.Tools {
		if t.Type != "function" {
			return false, badRequest(fmt.Sprintf("tools[%d].type", i), "tool type %q is not supported", t.Type)
		}
		if t.Function.Name == "" {
			return false, badRequest(fmt.Sprintf("tools[%d].function.name", i), "tool must have a function name")
		}
		if t.Function.Name == JSONToolName {
			return false, badRequest(fmt.Sprintf("tools[%d].function.name", i), "tool name %q is reserved by the gateway", JSONToolName)
		}
		schema := t.Function.Parameters
		if len(bytes.TrimSpace(schema)) == 0 || bytes.Equal(bytes.TrimSpace(schema), []byte("null")) {
			schema = objectSchema
		}
		out.Tools = append(out.Tools, wire.Tool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: schema,
			CacheControl: t.CacheControl})
	}

	var choice *wire.ToolChoice
	if tc := req.ToolChoice; tc != nil && len(req.Tools) > 0 {
		switch tc.Mode {
		case openai.ToolChoiceAuto:
			choice = &wire.ToolChoice{Type: wire.ToolChoiceAuto}
		case openai.ToolChoiceNone:
			choice = &wire.ToolChoice{Type: wire.ToolChoiceNone}
		case openai.ToolChoiceRequired:
			choice = &wire.ToolChoice{Type: wire.ToolChoiceAny}
		case openai.ToolChoiceFunction:
			found := false
			for _, t := range req.Tools {
				found = found || t.Function.Name == tc.Function
			}
			if !found {
				return false, badRequest("tool_choice", "tool_choice names function %q, which is not in tools", tc.Function)
			}
			choice = &wire.ToolChoice{Type: wire.ToolChoiceTool, Name: tc.Function}
		}
	}

	if rf := req.ResponseFormat; rf != nil && (rf.Type == openai.FormatJSONObject || rf.Type == openai.FormatJSONSchema) {
		jt := wire.Tool{Name: JSONToolName, InputSchema: objectSchema,
			Description: "Give your final response by calling this tool: its input is the complete response, as a JSON object."}
		if rf.Type == openai.FormatJSONSchema {
			if rf.JSONSchema == nil {
				return false, badRequest("response_format.json_schema", "response_format json_schema requires a json_schema object")
			}
			if s := bytes.TrimSpace(rf.JSONSchema.Schema); len(s) > 0 && !bytes.Equal(s, []byte("null")) {
				jt.InputSchema = rf.JSONSchema.Schema
			}
			if rf.JSONSchema.Description != "" {
				jt.Description += " " + rf.JSONSchema.Description
			}
		}
		out.Tools = append(out.Tools, jt)
		switch {
		case choice == nil && len(req.Tools) > 0, choice != nil && choice.Type == wire.ToolChoiceAuto:
			// The model may still call a client tool, but must end with
			// the JSON answer: "any" allows exactly those two outcomes.
			choice = &wire.ToolChoice{Type: wire.ToolChoiceAny}
		case choice == nil, choice.Type == wire.ToolChoiceNone:
			choice = &wire.ToolChoice{Type: wire.ToolChoiceTool, Name: JSONToolName}
		}
	}

	if req.ParallelToolCalls != nil && !*req.ParallelToolCalls && len(out.Tools) > 0 {
		if choice == nil {
			choice = &wire.ToolChoice{Type: wire.ToolChoiceAuto}
		}
		if choice.Type != wire.ToolChoiceNone {
			t := true
			choice.DisableParallelToolUse = &t
		}
	}
	out.ToolChoice = choice
	return choice != nil && (choice.Type == wire.ToolChoiceAny || choice.Type == wire.ToolChoiceTool), nil
}

var objectSchema = json.RawMessage(`{"type":"object"}`)

// MaxCacheBreakpoints is how many cache_control markers Anthropic accepts
// in one request (tools, system and messages together).
const MaxCacheBreakpoints = 4

// limitCacheBreakpoints keeps the last MaxCacheBreakpoints cache_control
// markers, in the order Anthropic reads the prompt (tools, system,
// messages, blocks inside a tool result in their place), and drops the
// earlier ones, instead of sending a request Anthropic rejects. A
// breakpoint caches the whole prefix up to it, so a later one covers all
// an earlier one does and more: clients that mark each new turn (as
// agents do) keep their newest, largest prefixes, and a read still hits
// an older cache entry up to about 20 blocks back.
func limitCacheBreakpoints(out *wire.MessagesRequest) {
	var marks []*json.RawMessage
	for i := range out.Tools {
		if out.Tools[i].CacheControl != nil {
			marks = append(marks, &out.Tools[i].CacheControl)
		}
	}
	var blocks func([]wire.ContentBlock)
	blocks = func(bs []wire.ContentBlock) {
		for i := range bs {
			if c := bs[i].Content; c != nil {
				blocks(c.Blocks)
			}
			if bs[i].CacheControl != nil {
				marks = append(marks, &bs[i].CacheControl)
			}
		}
	}
	if out.System != nil {
		blocks(out.System.Blocks)
	}
	for i := range out.Messages {
		blocks(out.Messages[i].Content.Blocks)
	}
	for len(marks) > MaxCacheBreakpoints {
		*marks[0] = nil
		marks = marks[1:]
	}
}

// CacheControl is a prompt-caching breakpoint as Anthropic defines it.
type CacheControl struct {
	// Type is always "ephemeral".
	Type string `json:"type"`
	// TTL is "5m" (Anthropic's default when empty) or "1h".
	TTL string `json:"ttl,omitempty"`
}

// ParseCacheControl reads a cache_control value as Anthropic accepts it:
// an object with "type":"ephemeral" and, optionally, "ttl" "5m" or "1h",
// member names exact and no other members. Clients of both dialects are
// held to it at parse time, so a marker that reaches a translator is one
// Anthropic and Bedrock take; the error text suits a 400 message.
func ParseCacheControl(raw json.RawMessage) (CacheControl, error) {
	var cc struct {
		Type string  `json:"type"`
		TTL  *string `json:"ttl"`
	}
	if err := jsonv2.Unmarshal(raw, &cc, jsonv2.RejectUnknownMembers(true)); err != nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return CacheControl{}, fmt.Errorf(`expected an object {"type":"ephemeral"} with an optional "ttl" of "5m" or "1h"`)
	}
	if cc.Type != "ephemeral" {
		return CacheControl{}, fmt.Errorf(`type must be "ephemeral"`)
	}
	out := CacheControl{Type: cc.Type}
	if cc.TTL != nil {
		if *cc.TTL != "5m" && *cc.TTL != "1h" {
			return CacheControl{}, fmt.Errorf(`ttl must be "5m" or "1h"`)
		}
		out.TTL = *cc.TTL
	}
	return out, nil
}
