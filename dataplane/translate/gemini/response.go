package gemini

import (
	"net/http"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json/v1"
	wire "tollgate.dev/tollgate/dataplane/schema/gemini"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// ChatResponse parses a generateContent answer.
func (Translator) ChatResponse(body []byte, _ translate.Target, meta translate.StreamMeta) (*openai.ChatResponse, error) {
	var r wire.GenerateContentResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, malformed("response")
	}
	if r.Error != nil {
		return nil, statusError(0, nil, r.Error)
	}
	return BuildResponse(&r, meta)
}

// malformed is the error for an upstream body that is not what Gemini
// documents; it is the provider's fault, so it is a retryable 502.
func malformed(what string) *openai.APIError {
	return openai.NewError(http.StatusBadGateway, openai.TypeServer, "", "", "gemini: malformed upstream "+what)
}

// BuildResponse maps a parsed GenerateContentResponse to a chat.completion.
// A prompt blocked by promptFeedback becomes one choice with empty content
// and finish_reason content_filter.
func BuildResponse(r *wire.GenerateContentResponse, meta translate.StreamMeta) (*openai.ChatResponse, error) {
	out := &openai.ChatResponse{
		ID:      meta.ID,
		Object:  openai.ObjectChatCompletion,
		Created: meta.Created,
		Model:   meta.Model,
		Usage:   convertUsage(r.UsageMetadata),
	}
	if len(r.Candidates) == 0 {
		if r.PromptFeedback == nil || r.PromptFeedback.BlockReason == "" {
			return nil, malformed("response: no candidates")
		}
		out.Choices = []openai.Choice{{
			Message:      openai.Message{Role: openai.RoleAssistant, Content: openai.TextContent("")},
			FinishReason: openai.FinishContentFilter,
		}}
		return out, nil
	}
	ids := newCallIDs(meta.ID)
	out.Choices = make([]openai.Choice, 0, len(r.Candidates))
	for i := range r.Candidates {
		c := &r.Candidates[i]
		msg := openai.Message{Role: openai.RoleAssistant}
		var text, thoughts strings.Builder
		if c.Content != nil {
			for j := range c.Content.Parts {
				p := &c.Content.Parts[j]
				if p.ThoughtSignature != "" && msg.ReasoningSignature == "" {
					msg.ReasoningSignature = p.ThoughtSignature
				}
				switch {
				case p.FunctionCall != nil:
					if p.FunctionCall.Name == "" {
						return nil, malformed("response: function call without a name")
					}
					msg.ToolCalls = append(msg.ToolCalls, toolCall(p.FunctionCall, p.ThoughtSignature, ids, nil))
				case p.Thought:
					thoughts.WriteString(p.Text)
				default:
					text.WriteString(p.Text)
				}
			}
		}
		msg.ReasoningContent = thoughts.String()
		if text.Len() > 0 || len(msg.ToolCalls) == 0 {
			msg.Content = openai.TextContent(text.String())
		}
		out.Choices = append(out.Choices, openai.Choice{
			Index:        c.Index,
			Message:      msg,
			FinishReason: finishReason(c.FinishReason, len(msg.ToolCalls) > 0),
		})
	}
	return out, nil
}

// callIDs numbers generated tool-call ids for one response.
type callIDs struct {
	prefix string
	n      int
}

// newCallIDs derives the id prefix from the response id, so ids are unique
// across turns (clients key tool results by id) yet deterministic for one
// response, streamed or not.
func newCallIDs(responseID string) *callIDs {
	suffix := strings.TrimPrefix(responseID, "chatcmpl-")
	if suffix == "" {
		return &callIDs{prefix: "call_"}
	}
	return &callIDs{prefix: "call_" + suffix + "_"}
}

func (c *callIDs) next() string {
	id := c.prefix + strconv.Itoa(c.n)
	c.n++
	return id
}

// toolCall converts a Gemini function call; Gemini's own id wins when it
// sends one, and the part's thought signature is carried in the id (see
// withSignature). index is set for stream deltas.
func toolCall(fc *wire.FunctionCall, sig string, ids *callIDs, index *int) openai.ToolCall {
	id := fc.ID
	if id == "" {
		id = ids.next()
	}
	id = withSignature(id, sig)
	args := string(fc.Args)
	if len(fc.Args) == 0 || string(fc.Args) == "null" {
		args = "{}"
	}
	return openai.ToolCall{Index: index, ID: id, Type: "function", Function: openai.FunctionCall{Name: fc.Name, Arguments: args}}
}

// finishReason maps Gemini's FinishReason. STOP (and reasons OpenAI has no
// word for: LANGUAGE, OTHER, MALFORMED_FUNCTION_CALL, ...) becomes
// tool_calls when the candidate called functions, else stop; every
// safety-like reason becomes content_filter.
func finishReason(r string, hasCalls bool) string {
	switch r {
	case wire.FinishMaxTokens:
		return openai.FinishLength
	case wire.FinishSafety, wire.FinishRecitation, wire.FinishBlocklist, wire.FinishProhibitedContent,
		wire.FinishSPII, wire.FinishImageSafety, "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION":
		return openai.FinishContentFilter
	}
	if hasCalls {
		return openai.FinishToolCalls
	}
	return openai.FinishStop
}

// convertUsage maps usageMetadata: completion tokens include thoughts
// (OpenAI counts reasoning inside completion_tokens), prompt tokens include
// cached content and tool-use prompt tokens.
func convertUsage(u *wire.UsageMetadata) *openai.Usage {
	if u == nil {
		return nil
	}
	prompt := u.PromptTokenCount + u.ToolUsePromptTokenCount
	completion := u.CandidatesTokenCount + u.ThoughtsTokenCount
	return &openai.Usage{
		PromptTokens:            prompt,
		CompletionTokens:        completion,
		TotalTokens:             prompt + completion,
		PromptTokensDetails:     &openai.PromptTokensDetails{CachedTokens: u.CachedContentTokenCount},
		CompletionTokensDetails: &openai.CompletionTokensDetails{ReasoningTokens: u.ThoughtsTokenCount},
	}
}
