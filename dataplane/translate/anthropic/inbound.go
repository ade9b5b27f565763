package anthropic

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json/v1"
	wire "tollgate.dev/tollgate/dataplane/schema/anthropic"
	"tollgate.dev/tollgate/dataplane/schema/openai"
)

// ParseMessagesRequest parses and validates an Anthropic POST /v1/messages
// body into the canonical request, so Anthropic-native clients can be routed
// to any provider. Mapping choices:
//
//   - system (string or text blocks) becomes one leading system message;
//   - a user turn's tool_result blocks become OpenAI tool messages, one per
//     block, in order, before a user message with the turn's remaining
//     blocks; images inside tool results (OpenAI tool messages cannot carry
//     images) move into that user message, ahead of its own blocks;
//     is_error has no OpenAI field and is dropped;
//   - assistant thinking blocks become reasoning_content (concatenated) and
//     reasoning_signature (the last one); redacted_thinking is dropped;
//   - thinking.budget_tokens maps to reasoning_effort (see EffortForBudget);
//   - max_tokens becomes max_completion_tokens;
//   - stream requests always ask for a usage chunk: Anthropic clients
//     expect usage in message_delta;
//   - cache_control on system, message and tool_result blocks and on tools
//     becomes the canonical part's or tool's CacheControl (see
//     canonicalCacheControl), so they survive translation; a tool_result's
//     own marker goes on its last part, and
//     assistant text blocks stay separate parts when one is marked. A
//     marker on a tool_use or thinking block, or one ParseCacheControl
//     refuses, has no canonical place and is dropped there;
//   - top_k has no canonical field and is ignored;
//   - what has no canonical form at all — Anthropic server tools (web
//     search, code execution, ...), block types such as server tool results
//     or search results, documents by URL or file id — is left out of the
//     struct and named in NativeOnly: only an Anthropic provider, sent the
//     client's own body, can serve such a request.
//
// The body is kept in Native, so a request routed to an Anthropic provider
// is sent as the client wrote it (see Translator.ChatRequest) and none of
// the above loses anything there.
func ParseMessagesRequest(body []byte) (*openai.ChatRequest, *openai.APIError) {
	var in wire.MessagesRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, badRequest("", "invalid request body: %v", err)
	}
	if in.Model == "" {
		return nil, badRequest("model", "model: field required")
	}
	if in.MaxTokens == nil {
		return nil, badRequest("max_tokens", "max_tokens: field required")
	}
	if *in.MaxTokens < 1 {
		return nil, badRequest("max_tokens", "max_tokens: must be greater than or equal to 1")
	}
	if len(in.Messages) == 0 {
		return nil, badRequest("messages", "messages: at least one message is required")
	}
	var no nativeOnly
	maxTokens := *in.MaxTokens
	out := &openai.ChatRequest{
		Model:               in.Model,
		MaxCompletionTokens: &maxTokens,
		Stream:              in.Stream,
		Temperature:         in.Temperature,
		TopP:                in.TopP,
		Messages:            make([]openai.Message, 0, len(in.Messages)+1),
	}
	if in.Stream {
		out.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
	}
	if len(in.StopSequences) > 0 {
		out.Stop = openai.Stop(in.StopSequences)
	}
	if in.Metadata != nil {
		out.User = in.Metadata.UserID
	}

	if in.System != nil {
		sys, err := systemMessage(*in.System)
		if err != nil {
			return nil, err
		}
		if !sys.Content.IsEmpty() {
			out.Messages = append(out.Messages, sys)
		}
	}
	for i := range in.Messages {
		m := &in.Messages[i]
		var err *openai.APIError
		switch m.Role {
		case wire.RoleUser:
			out.Messages, err = appendUserTurn(out.Messages, m.Content, i, &no)
		case wire.RoleAssistant:
			out.Messages, err = appendAssistantTurn(out.Messages, m.Content, i, &no)
		default:
			err = badRequest(fmt.Sprintf("messages.%d.role", i), "messages.%d.role: must be \"user\" or \"assistant\", got %q", i, m.Role)
		}
		if err != nil {
			return nil, err
		}
	}

	if err := inboundTools(&in, out, &no); err != nil {
		return nil, err
	}
	if th := in.Thinking; th != nil {
		switch th.Type {
		case wire.ThinkingEnabled:
			out.ReasoningEffort = EffortForBudget(th.BudgetTokens)
		case wire.ThinkingAdaptive:
			out.ReasoningEffort = "medium"
		case wire.ThinkingDisabled:
		default:
			return nil, badRequest("thinking.type", "thinking.type: must be \"enabled\", \"disabled\" or \"adaptive\", got %q", th.Type)
		}
	}
	out.Native = &openai.Native{Dialect: openai.DialectAnthropic, Body: body}
	out.NativeOnly = no.reason
	return out, nil
}

// nativeOnly records the first thing in a request that has no canonical
// form (see ChatRequest.NativeOnly).
type nativeOnly struct{ reason string }

func (n *nativeOnly) add(format string, args ...any) {
	if n.reason == "" {
		n.reason = fmt.Sprintf(format, args...)
	}
}

// EffortForBudget maps a thinking budget to the reasoning_effort whose
// budget (see ThinkingBudget) is the nearest one not below it: up to 2048
// tokens "low", up to 8192 "medium", above that "high".
func EffortForBudget(budget int) string {
	switch {
	case budget <= 2048:
		return "low"
	case budget <= 8192:
		return "medium"
	default:
		return "high"
	}
}

func systemMessage(c wire.Content) (openai.Message, *openai.APIError) {
	msg := openai.Message{Role: openai.RoleSystem}
	if c.IsString {
		msg.Content = openai.TextContent(c.Text)
		return msg, nil
	}
	parts := make([]openai.ContentPart, 0, len(c.Blocks))
	for j, b := range c.Blocks {
		if b.Type != wire.BlockText {
			return msg, badRequest(fmt.Sprintf("system.%d.type", j), "system.%d.type: only text blocks are allowed, got %q", j, b.Type)
		}
		parts = append(parts, openai.ContentPart{Type: openai.PartText, Text: b.Text, CacheControl: canonicalCacheControl(b.CacheControl)})
	}
	msg.Content = openai.PartsContent(parts...)
	return msg, nil
}

// canonicalCacheControl returns a block's or tool's cache_control for the
// canonical form when ParseCacheControl accepts it, else nil. An unknown
// form is not refused here: the client's body still goes to an Anthropic
// provider as written (Native), which judges it; other providers lose
// only that breakpoint.
func canonicalCacheControl(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return nil
	}
	if _, err := ParseCacheControl(raw); err != nil {
		return nil
	}
	return raw
}

// markLast puts a tool_result block's own breakpoint on the last part of
// the tool message made from it, turning string content into one text
// part; empty content has nothing to mark.
func markLast(c *openai.Content, cc json.RawMessage) {
	switch {
	case c.Kind == openai.ContentString && c.Text != "":
		*c = openai.PartsContent(openai.ContentPart{Type: openai.PartText, Text: c.Text, CacheControl: cc})
	case c.Kind == openai.ContentParts && len(c.Parts) > 0:
		c.Parts[len(c.Parts)-1].CacheControl = cc
	}
}

// appendUserTurn appends one Anthropic user turn: its tool results as tool
// messages, then the rest as one user message.
func appendUserTurn(msgs []openai.Message, c wire.Content, i int, no *nativeOnly) ([]openai.Message, *openai.APIError) {
	if c.IsString {
		return append(msgs, openai.Message{Role: openai.RoleUser, Content: openai.TextContent(c.Text)}), nil
	}
	var moved, parts []openai.ContentPart
	for j := range c.Blocks {
		b := &c.Blocks[j]
		param := fmt.Sprintf("messages.%d.content.%d", i, j)
		if b.Type == wire.BlockToolResult {
			if b.ToolUseID == "" {
				return nil, badRequest(param+".tool_use_id", "%s.tool_use_id: field required", param)
			}
			tm := openai.Message{Role: openai.RoleTool, ToolCallID: b.ToolUseID, Content: openai.TextContent("")}
			if b.Content != nil {
				if b.Content.IsString {
					tm.Content = openai.TextContent(b.Content.Text)
				} else {
					var text []openai.ContentPart
					for k := range b.Content.Blocks {
						p, keep, err := userPart(&b.Content.Blocks[k], fmt.Sprintf("%s.content.%d", param, k), no)
						switch {
						case err != nil:
							return nil, err
						case !keep:
						case p.Type == openai.PartText:
							text = append(text, p)
						default:
							moved = append(moved, p)
						}
					}
					if len(text) == 1 && text[0].CacheControl == nil {
						tm.Content = openai.TextContent(text[0].Text)
					} else if len(text) > 0 {
						tm.Content = openai.PartsContent(text...)
					}
				}
			}
			if cc := canonicalCacheControl(b.CacheControl); cc != nil {
				markLast(&tm.Content, cc)
			}
			msgs = append(msgs, tm)
			continue
		}
		p, keep, err := userPart(b, param, no)
		if err != nil {
			return nil, err
		}
		if keep {
			parts = append(parts, p)
		}
	}
	if all := append(moved, parts...); len(all) > 0 {
		msgs = append(msgs, openai.Message{Role: openai.RoleUser, Content: openai.PartsContent(all...)})
	}
	return msgs, nil
}

// userPart maps a user (or tool_result) block to an OpenAI content part;
// keep is false for a block with no canonical form (noted in no).
func userPart(b *wire.ContentBlock, param string, no *nativeOnly) (p openai.ContentPart, keep bool, err *openai.APIError) {
	switch b.Type {
	case wire.BlockText:
		return openai.ContentPart{Type: openai.PartText, Text: b.Text, CacheControl: canonicalCacheControl(b.CacheControl)}, true, nil
	case wire.BlockImage:
		s := b.Source
		switch {
		case s != nil && s.Type == wire.SourceBase64 && s.MediaType != "" && s.Data != "":
			return openai.ContentPart{Type: openai.PartImageURL, ImageURL: &openai.ImageURL{URL: "data:" + s.MediaType + ";base64," + s.Data},
				CacheControl: canonicalCacheControl(b.CacheControl)}, true, nil
		case s != nil && s.Type == wire.SourceURL && s.URL != "":
			return openai.ContentPart{Type: openai.PartImageURL, ImageURL: &openai.ImageURL{URL: s.URL}, CacheControl: canonicalCacheControl(b.CacheControl)}, true, nil
		case s != nil && s.Type != wire.SourceBase64 && s.Type != wire.SourceURL && s.Type != "":
			no.add("an image with a %q source", s.Type)
			return openai.ContentPart{}, false, nil
		}
		return openai.ContentPart{}, false, badRequest(param+".source", "%s.source: must be a base64 source with media_type and data, or a url source", param)
	case wire.BlockDocument:
		s := b.Source
		switch {
		case s != nil && s.Type == wire.SourceBase64 && s.MediaType == "application/pdf" && s.Data != "":
			return openai.ContentPart{Type: openai.PartFile, File: &openai.File{FileData: "data:application/pdf;base64," + s.Data},
				CacheControl: canonicalCacheControl(b.CacheControl)}, true, nil
		case s != nil && s.Type == "text" && s.Data != "":
			return openai.ContentPart{Type: openai.PartText, Text: s.Data, CacheControl: canonicalCacheControl(b.CacheControl)}, true, nil
		case s != nil && s.Type != "":
			no.add("a document with a %q source", s.Type)
			return openai.ContentPart{}, false, nil
		}
		return openai.ContentPart{}, false, badRequest(param+".source", "%s.source: must be a base64 PDF, a text, a url, a content or a file source", param)
	case "":
		return openai.ContentPart{}, false, badRequest(param+".type", "%s.type: field required", param)
	case wire.BlockToolUse, wire.BlockThinking, wire.BlockRedactedThinking:
		return openai.ContentPart{}, false, badRequest(param+".type", "%s.type: %q blocks belong in assistant messages", param, b.Type)
	}
	no.add("content block type %q", b.Type)
	return openai.ContentPart{}, false, nil
}

// appendAssistantTurn appends one Anthropic assistant turn as one
// assistant message.
func appendAssistantTurn(msgs []openai.Message, c wire.Content, i int, no *nativeOnly) ([]openai.Message, *openai.APIError) {
	m := openai.Message{Role: openai.RoleAssistant}
	if c.IsString {
		m.Content = openai.TextContent(c.Text)
		return append(msgs, m), nil
	}
	var text, thinking strings.Builder
	var parts []openai.ContentPart // the text blocks, kept apart when one has a cache breakpoint
	marked := false
	for j := range c.Blocks {
		b := &c.Blocks[j]
		param := fmt.Sprintf("messages.%d.content.%d", i, j)
		switch b.Type {
		case wire.BlockText:
			text.WriteString(b.Text)
			p := openai.ContentPart{Type: openai.PartText, Text: b.Text, CacheControl: canonicalCacheControl(b.CacheControl)}
			marked = marked || p.CacheControl != nil
			parts = append(parts, p)
		case wire.BlockThinking:
			thinking.WriteString(b.Thinking)
			if b.Signature != "" {
				m.ReasoningSignature = b.Signature
			}
		case wire.BlockRedactedThinking:
			// Encrypted reasoning only Anthropic can read: no canonical field.
		case wire.BlockToolUse:
			if b.ID == "" || b.Name == "" {
				return nil, badRequest(param, "%s: tool_use blocks require id and name", param)
			}
			m.ToolCalls = append(m.ToolCalls, openai.ToolCall{ID: b.ID, Type: "function",
				Function: openai.FunctionCall{Name: b.Name, Arguments: compactJSON(b.Input)}})
		case "":
			return nil, badRequest(param+".type", "%s.type: field required", param)
		case wire.BlockToolResult, wire.BlockImage, wire.BlockDocument:
			return nil, badRequest(param+".type", "%s.type: %q blocks belong in user messages", param, b.Type)
		default:
			no.add("content block type %q", b.Type)
		}
	}
	switch {
	case marked:
		m.Content = openai.PartsContent(parts...)
	case len(parts) > 0:
		m.Content = openai.TextContent(text.String())
	}
	m.ReasoningContent = thinking.String()
	return append(msgs, m), nil
}

func inboundTools(in *wire.MessagesRequest, out *openai.ChatRequest, no *nativeOnly) *openai.APIError {
	for i, t := range in.Tools {
		if t.Type != "" && t.Type != "custom" {
			no.add("server tool %q", t.Type)
			continue
		}
		if t.Name == "" {
			return badRequest(fmt.Sprintf("tools.%d.name", i), "tools.%d.name: field required", i)
		}
		schema := t.InputSchema
		if len(schema) == 0 {
			schema = objectSchema
		}
		out.Tools = append(out.Tools, openai.Tool{Type: "function", Function: openai.FunctionDecl{
			Name: t.Name, Description: t.Description, Parameters: schema}, CacheControl: canonicalCacheControl(t.CacheControl)})
	}
	tc := in.ToolChoice
	if tc == nil {
		return nil
	}
	switch tc.Type {
	case wire.ToolChoiceAuto:
		out.ToolChoice = &openai.ToolChoice{Mode: openai.ToolChoiceAuto}
	case wire.ToolChoiceAny:
		out.ToolChoice = &openai.ToolChoice{Mode: openai.ToolChoiceRequired}
	case wire.ToolChoiceNone:
		out.ToolChoice = &openai.ToolChoice{Mode: openai.ToolChoiceNone}
	case wire.ToolChoiceTool:
		if tc.Name == "" {
			return badRequest("tool_choice.name", "tool_choice.name: field required")
		}
		out.ToolChoice = &openai.ToolChoice{Mode: openai.ToolChoiceFunction, Function: tc.Name}
	default:
		return badRequest("tool_choice.type", "tool_choice.type: must be auto, any, tool or none, got %q", tc.Type)
	}
	if len(out.Tools) == 0 {
		out.ToolChoice = nil // OpenAI rejects tool_choice without tools
	}
	if tc.DisableParallelToolUse != nil && *tc.DisableParallelToolUse && len(out.Tools) > 0 {
		f := false
		out.ParallelToolCalls = &f
	}
	return nil
}

// MessagesResponse renders a canonical response as an Anthropic message
// for the client that called /v1/messages with model.
func MessagesResponse(resp *openai.ChatResponse, model string) []byte {
	m := wire.MessageResponse{
		ID:      messageID(resp.ID),
		Type:    "message",
		Role:    wire.RoleAssistant,
		Model:   model,
		Content: []wire.ContentBlock{},
	}
	finish := ""
	if len(resp.Choices) > 0 {
		c := &resp.Choices[0]
		finish = c.FinishReason
		msg := &c.Message
		if msg.ReasoningContent != "" || msg.ReasoningSignature != "" {
			m.Content = append(m.Content, wire.ContentBlock{Type: wire.BlockThinking, Thinking: msg.ReasoningContent, Signature: msg.ReasoningSignature})
		}
		if t := msg.Content.PlainText() + msg.Refusal; t != "" {
			m.Content = append(m.Content, wire.ContentBlock{Type: wire.BlockText, Text: t})
		}
		for j, tc := range msg.ToolCalls {
			m.Content = append(m.Content, wire.ContentBlock{Type: wire.BlockToolUse, ID: toolUseID(tc.ID, m.ID, j),
				Name: tc.Function.Name, Input: argumentsObject(tc.Function.Arguments)})
		}
		if len(msg.ToolCalls) > 0 {
			finish = openai.FinishToolCalls
		}
	}
	stop := StopReason(finish)
	m.StopReason = &stop
	if resp.Usage != nil {
		m.Usage = InboundUsage(resp.Usage)
	}
	b, _ := json.Marshal(m)
	return b
}

// messageID gives Anthropic clients the msg_ ids they expect while keeping
// the gateway's id recognisable in logs.
func messageID(id string) string {
	if strings.HasPrefix(id, "msg_") {
		return id
	}
	id = strings.TrimPrefix(id, "chatcmpl-")
	if id == "" {
		id = "tollgate"
	}
	return "msg_" + id
}

// toolUseID keeps the upstream tool call id, or makes a stable one when the
// upstream gave none, because Anthropic clients pair tool results by id.
func toolUseID(id, msgID string, n int) string {
	if id != "" {
		return id
	}
	return "toolu_" + strings.TrimPrefix(msgID, "msg_") + "_" + strconv.Itoa(n)
}

// argumentsObject turns OpenAI arguments into tool_use input; arguments that
// are not a JSON object (a provider bug) become {} rather than an invalid
// message.
func argumentsObject(args string) json.RawMessage {
	in, err := argumentsToInput(args)
	if err != nil {
		return emptyObject
	}
	return in
}

// StopReason maps an OpenAI finish_reason back to an Anthropic stop_reason.
func StopReason(finish string) string {
	switch finish {
	case openai.FinishLength:
		return wire.StopMaxTokens
	case openai.FinishToolCalls, "function_call":
		return wire.StopToolUse
	case openai.FinishContentFilter:
		return wire.StopRefusal
	default:
		return wire.StopEndTurn
	}
}

// InboundUsage maps OpenAI usage back to Anthropic's, whose input_tokens
// exclude cache reads and writes.
func InboundUsage(u *openai.Usage) wire.Usage {
	read, write := u.CachedTokens(), u.CacheWriteTokens()
	return wire.Usage{
		InputTokens:              max(u.PromptTokens-read-write, 0),
		OutputTokens:             u.CompletionTokens,
		CacheReadInputTokens:     read,
		CacheCreationInputTokens: write,
	}
}

// ErrorBody renders an error in Anthropic's envelope, with the error type
// Anthropic uses for the status, so Anthropic SDKs raise the right
// exception class (and retry 429/5xx/overloaded).
func ErrorBody(e *openai.APIError) []byte {
	b, _ := json.Marshal(wire.ErrorResponse{Type: "error", Error: wire.ErrorDetail{Type: ErrorType(e.Status), Message: e.Message}})
	return b
}

// ErrorType is the Anthropic error type for an HTTP status.
func ErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return wire.ErrInvalidRequest
	case http.StatusUnauthorized:
		return wire.ErrAuthentication
	case http.StatusPaymentRequired:
		return wire.ErrBilling
	case http.StatusForbidden:
		return wire.ErrPermission
	case http.StatusNotFound:
		return wire.ErrNotFound
	case http.StatusRequestEntityTooLarge:
		return wire.ErrRequestTooLarge
	case http.StatusTooManyRequests:
		return wire.ErrRateLimit
	case http.StatusServiceUnavailable, wire.StatusOverloaded:
		return wire.ErrOverloaded
	case http.StatusGatewayTimeout:
		return wire.ErrTimeout
	}
	if status >= 500 {
		return wire.ErrAPI
	}
	return wire.ErrInvalidRequest
}
