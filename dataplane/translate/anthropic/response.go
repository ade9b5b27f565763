package anthropic

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"
	wire "tollgate.dev/tollgate/dataplane/schema/anthropic"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// ChatResponse parses a non-streaming Messages answer.
func (Translator) ChatResponse(body []byte, _ translate.Target, meta translate.StreamMeta) (*openai.ChatResponse, error) {
	var m wire.MessageResponse
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, upstreamMalformed("response body is not a valid Messages response")
	}
	return ConvertResponse(&m, meta), nil
}

// upstreamMalformed is the 502 returned when upstream's 2xx answer cannot
// be understood.
func upstreamMalformed(msg string) *openai.APIError {
	return openai.NewError(http.StatusBadGateway, openai.TypeServer, "", "", "anthropic: "+msg)
}

// ConvertResponse maps a Messages answer to a chat.completion: text blocks
// are concatenated into content, thinking into reasoning_content (never into
// content), tool_use blocks become tool_calls with compact JSON arguments,
// and the synthetic JSON-mode tool becomes content.
func ConvertResponse(m *wire.MessageResponse, meta translate.StreamMeta) *openai.ChatResponse {
	msg := openai.Message{Role: openai.RoleAssistant}
	var text, thinking strings.Builder
	hasText := false
	for _, b := range m.Content {
		switch b.Type {
		case wire.BlockText:
			text.WriteString(b.Text)
			hasText = true
		case wire.BlockThinking:
			thinking.WriteString(b.Thinking)
			if b.Signature != "" {
				msg.ReasoningSignature = b.Signature
			}
		case wire.BlockToolUse:
			args := compactJSON(b.Input)
			if b.Name == JSONToolName {
				text.WriteString(args)
				hasText = true
				continue
			}
			msg.ToolCalls = append(msg.ToolCalls, openai.ToolCall{ID: b.ID, Type: "function",
				Function: openai.FunctionCall{Name: b.Name, Arguments: args}})
		}
	}
	if hasText {
		msg.Content = openai.TextContent(text.String())
	}
	msg.ReasoningContent = thinking.String()

	stop := ""
	if m.StopReason != nil {
		stop = *m.StopReason
	}
	resp := &openai.ChatResponse{
		ID:      meta.ID,
		Object:  openai.ObjectChatCompletion,
		Created: meta.Created,
		Model:   meta.Model,
		Choices: []openai.Choice{{Index: 0, Message: msg, FinishReason: FinishReason(stop, len(msg.ToolCalls) > 0)}},
		Usage:   ConvertUsage(m.Usage),
	}
	return resp
}

// compactJSON returns tool input as compact JSON text ("{}" when absent).
func compactJSON(raw json.RawMessage) string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "{}"
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}

// FinishReason maps an Anthropic stop_reason to an OpenAI finish_reason.
// realToolUse is false when no client tool was called (the only tool_use
// was the synthetic JSON-mode tool, whose answer is content), so
// "tool_use" then means "stop". pause_turn
// (a server-tool turn paused by Anthropic) has no OpenAI equivalent and
// ends the turn as "stop"; unknown or missing reasons are "stop" too.
func FinishReason(stop string, realToolUse bool) string {
	switch stop {
	case wire.StopMaxTokens, wire.StopContextWindow:
		return openai.FinishLength
	case wire.StopToolUse:
		if realToolUse {
			return openai.FinishToolCalls
		}
		return openai.FinishStop
	case wire.StopRefusal:
		return openai.FinishContentFilter
	default:
		return openai.FinishStop
	}
}

// ConvertUsage maps Anthropic usage to OpenAI usage. OpenAI's prompt_tokens
// include cached tokens, Anthropic's input_tokens exclude both cache reads
// and cache writes, so all three are added.
func ConvertUsage(u wire.Usage) *openai.Usage {
	prompt := u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens
	return &openai.Usage{
		PromptTokens:     prompt,
		CompletionTokens: u.OutputTokens,
		TotalTokens:      prompt + u.OutputTokens,
		PromptTokensDetails: &openai.PromptTokensDetails{
			CachedTokens:     u.CacheReadInputTokens,
			CacheWriteTokens: u.CacheCreationInputTokens,
		},
	}
}

// Error maps a non-2xx Anthropic answer to an OpenAI error, keeping the
// upstream message. Status mapping (see ErrorFromType for the reasons):
// 4xx keep their status (400, 401, 403, 404, 413, 429, ...); 500 becomes 502
// (the upstream failed, not the gateway); 529 overloaded becomes 503; other
// 5xx keep theirs. 429/5xx/529 are Retryable; 429 and 529 keep Retry-After.
func (Translator) Error(status int, header http.Header, body []byte) *openai.APIError {
	var env wire.ErrorResponse
	typ, msg := "", ""
	if json.Unmarshal(body, &env) == nil && env.Error.Message != "" {
		typ, msg = env.Error.Type, env.Error.Message
	} else {
		msg = fmt.Sprintf("anthropic: upstream returned status %d", status)
		if s := strings.TrimSpace(string(body)); s != "" && len(s) <= 200 && !strings.ContainsAny(s, "<{") {
			msg += ": " + s
		}
	}
	e := ErrorFromType(status, typ, msg)
	if ra := translate.RetryAfter(header, time.Now()); ra > 0 && (e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable) {
		e.RetryAfter = ra
	}
	return e
}

// ErrorFromType builds the OpenAI error for an Anthropic error. status is
// the upstream HTTP status, or 0 for a mid-stream error event, where it is
// derived from typ. The upstream error type is kept as the error code.
func ErrorFromType(status int, typ, msg string) *openai.APIError {
	if status == 0 {
		status = statusForType(typ)
	}
	out := status
	switch {
	case status == wire.StatusOverloaded:
		// 529 is not a standard status; clients and proxies understand
		// 503 as "temporarily unavailable, retry".
		out = http.StatusServiceUnavailable
	case status == http.StatusInternalServerError:
		// An upstream internal error is a bad gateway from the client's
		// point of view; the gateway itself did not fail.
		out = http.StatusBadGateway
	case status < 400 || status > 599:
		out = http.StatusBadGateway
	}
	e := openai.NewError(out, openai.ErrorTypeForStatus(out), typ, "", msg)
	if status == wire.StatusOverloaded || typ == wire.ErrOverloaded {
		e.Retryable = true
	}
	return e
}

// statusForType is the HTTP status Anthropic documents for an error type.
func statusForType(typ string) int {
	switch typ {
	case wire.ErrInvalidRequest:
		return http.StatusBadRequest
	case wire.ErrAuthentication:
		return http.StatusUnauthorized
	case wire.ErrBilling:
		return http.StatusPaymentRequired
	case wire.ErrPermission:
		return http.StatusForbidden
	case wire.ErrNotFound:
		return http.StatusNotFound
	case wire.ErrRequestTooLarge:
		return http.StatusRequestEntityTooLarge
	case wire.ErrRateLimit:
		return http.StatusTooManyRequests
	case wire.ErrTimeout:
		return http.StatusGatewayTimeout
	case wire.ErrOverloaded:
		return wire.StatusOverloaded
	default:
		return http.StatusInternalServerError
	}
}
