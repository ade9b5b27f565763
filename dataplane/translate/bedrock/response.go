package bedrock

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"
	wire "tollgate.dev/tollgate/dataplane/schema/bedrock"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	"tollgate.dev/tollgate/dataplane/translate/anthropic"
)

// ChatResponse implements translate.Translator.
func (tr *Translator) ChatResponse(body []byte, t translate.Target, meta translate.StreamMeta) (*openai.ChatResponse, error) {
	var r wire.ConverseResponse
	if json.Unmarshal(body, &r) != nil {
		return nil, malformed("malformed converse response: not a JSON ConverseResponse")
	}
	if r.Output.Message == nil {
		// Not a Converse answer (a proxy's page, another API's body): an
		// error lets the proxy fail over instead of serving an empty reply.
		return nil, malformed("malformed converse response: no output message")
	}
	msg := openai.Message{Role: openai.RoleAssistant}
	var text, reasoning strings.Builder
	hasText := false
	for _, b := range r.Output.Message.Content {
		switch {
		case b.Text != nil:
			text.WriteString(*b.Text)
			hasText = true
		case b.ToolUse != nil:
			args := compactJSON(b.ToolUse.Input)
			if b.ToolUse.Name == anthropic.JSONToolName {
				text.WriteString(args)
				hasText = true
				continue
			}
			msg.ToolCalls = append(msg.ToolCalls, openai.ToolCall{
				ID:       b.ToolUse.ToolUseID,
				Type:     "function",
				Function: openai.FunctionCall{Name: b.ToolUse.Name, Arguments: args},
			})
		case b.ReasoningContent != nil && b.ReasoningContent.ReasoningText != nil:
			reasoning.WriteString(b.ReasoningContent.ReasoningText.Text)
			if s := b.ReasoningContent.ReasoningText.Signature; s != "" {
				msg.ReasoningSignature = s
			}
		}
	}
	if hasText {
		msg.Content = openai.TextContent(text.String())
	}
	msg.ReasoningContent = reasoning.String()
	return &openai.ChatResponse{
		ID:      meta.ID,
		Object:  openai.ObjectChatCompletion,
		Created: meta.Created,
		Model:   meta.Model,
		Choices: []openai.Choice{{
			Index:        0,
			Message:      msg,
			FinishReason: finishReason(r.StopReason, len(msg.ToolCalls) > 0),
		}},
		Usage: convertUsage(r.Usage),
	}, nil
}

// malformed is the (retryable) 502 for a 2xx answer that cannot be
// understood. msg names what was wrong, never upstream bytes, URLs or
// credentials.
func malformed(msg string) *openai.APIError {
	return openai.NewError(http.StatusBadGateway, openai.TypeServer, "invalid_upstream_response", "", "bedrock: "+msg)
}

// compactJSON returns a tool input as compact JSON text ("{}" when absent),
// the form OpenAI clients expect in function.arguments.
func compactJSON(raw json.RawMessage) string {
	if isNullJSON(raw) {
		return "{}"
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

// finishReason maps a Converse stop reason. "tool_calls" is reported when
// client tool calls were returned (unless the turn was cut short or
// filtered), so a turn that only produced the JSON-mode answer, though
// Bedrock says tool_use, ends with "stop".
func finishReason(stop string, toolCalls bool) string {
	switch stop {
	case wire.StopMaxTokens, wire.StopModelContextWindowExceeded:
		return openai.FinishLength
	case wire.StopGuardrailIntervened, wire.StopContentFiltered:
		return openai.FinishContentFilter
	}
	if toolCalls {
		return openai.FinishToolCalls
	}
	return openai.FinishStop
}

// convertUsage maps Converse token usage to OpenAI's: prompt tokens include
// cache reads and writes (OpenAI semantics), which are also broken out.
func convertUsage(u *wire.TokenUsage) *openai.Usage {
	if u == nil {
		return nil
	}
	prompt := u.InputTokens + u.CacheReadInputTokens + u.CacheWriteInputTokens
	return &openai.Usage{
		PromptTokens:     prompt,
		CompletionTokens: u.OutputTokens,
		TotalTokens:      prompt + u.OutputTokens,
		PromptTokensDetails: &openai.PromptTokensDetails{
			CachedTokens:     u.CacheReadInputTokens,
			CacheWriteTokens: u.CacheWriteInputTokens,
		},
	}
}

// Error implements translate.Translator: the x-amzn-errortype header (or the
// body's __type) selects the status and type; the AWS message is kept,
// minus anything that could echo credentials.
func (tr *Translator) Error(status int, header http.Header, body []byte) *openai.APIError {
	var eb wire.ErrorBody
	_ = json.Unmarshal(body, &eb)
	typ := header.Get("X-Amzn-Errortype")
	if typ == "" {
		typ = eb.Type
	}
	msg := eb.Text()
	if msg == "" {
		msg = fmt.Sprintf("bedrock returned HTTP %d", status)
	}
	e := exceptionError(typ, status, msg)
	if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
		e.RetryAfter = translate.RetryAfter(header, time.Now())
	}
	return e
}

// exceptionName reduces "ThrottlingException:http://internal.amazon.com/..."
// or "com.amazon.coral.service#ThrottlingException" to "ThrottlingException";
// stream exception types ("throttlingException") get their capital back.
func exceptionName(typ string) string {
	if i := strings.IndexByte(typ, ':'); i >= 0 {
		typ = typ[:i]
	}
	if i := strings.LastIndexByte(typ, '#'); i >= 0 {
		typ = typ[i+1:]
	}
	typ = strings.TrimSpace(typ)
	if typ != "" && typ[0] >= 'a' && typ[0] <= 'z' {
		typ = string(typ[0]-'a'+'A') + typ[1:]
	}
	return typ
}

// exceptionError builds the OpenAI error for a Bedrock exception; fallback
// is the HTTP status to use for unknown exception types.
func exceptionError(typ string, fallback int, msg string) *openai.APIError {
	name := exceptionName(typ)
	status, kind := fallback, ""
	switch name {
	case wire.ValidationException, wire.ConflictException:
		status = http.StatusBadRequest
	case wire.AccessDeniedException, wire.UnrecognizedClientException, wire.ExpiredTokenException, wire.InvalidSignatureException:
		status = http.StatusForbidden
	case wire.ResourceNotFoundException:
		status = http.StatusNotFound
	case wire.ThrottlingException, wire.ModelNotReadyException:
		status = http.StatusTooManyRequests
	case wire.ServiceQuotaExceeded:
		status, kind = http.StatusTooManyRequests, openai.TypeInsufficient
	case wire.ModelTimeoutException:
		status = http.StatusGatewayTimeout
	case wire.ModelErrorException, wire.ModelStreamErrorException:
		status = http.StatusBadGateway
	case wire.ServiceUnavailableException:
		status = http.StatusServiceUnavailable
	case wire.InternalServerException:
		// An upstream internal error is a bad gateway from the client's
		// point of view, as for the other providers: the gateway did not fail.
		status = http.StatusBadGateway
	}
	if status < 400 || status > 599 || status == http.StatusInternalServerError {
		status = http.StatusBadGateway
	}
	if kind == "" {
		kind = openai.ErrorTypeForStatus(status)
	}
	return openai.NewError(status, kind, name, "", scrubMessage(msg))
}

// maxMessageLen bounds an upstream message copied into a client error.
const maxMessageLen = 2048

// scrubMessage drops the parts of AWS messages that can echo request
// headers: a signature mismatch quotes the canonical request, which holds
// the session token.
func scrubMessage(msg string) string {
	for _, marker := range []string{"The Canonical String for this request", "The String-to-Sign should have been", "x-amz-security-token"} {
		if i := strings.Index(msg, marker); i >= 0 {
			msg = msg[:i]
		}
	}
	msg = strings.TrimSpace(msg)
	if len(msg) > maxMessageLen {
		msg = strings.ToValidUTF8(msg[:maxMessageLen], "")
	}
	if msg == "" {
		msg = "bedrock rejected the request"
	}
	return msg
}
