package openai

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// wireResponse is a chat.completion as OpenAI-family servers send it. The
// envelope (id, created, model) is not decoded: the gateway answers with
// its own stable values from StreamMeta.
type wireResponse struct {
	Choices           []wireChoiceMessage `json:"choices"`
	Usage             *openai.Usage       `json:"usage"`
	SystemFingerprint string              `json:"system_fingerprint"`
	ServiceTier       string              `json:"service_tier"`
	Error             json.RawMessage     `json:"error"`
}

type wireChoiceMessage struct {
	Index        int             `json:"index"`
	Message      wireMessage     `json:"message"`
	FinishReason *string         `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs"`
}

// wireMessage accepts "reasoning" (vLLM >= 0.10, OpenRouter, LM Studio)
// as well as "reasoning_content" (DeepSeek, older vLLM).
type wireMessage struct {
	openai.Message
	Reasoning string `json:"reasoning"`
}

// ChatResponse parses a non-streaming chat.completion. The answer gets the
// gateway's stable id, created and model (meta), like every other
// provider's, and is normalised to what agent loops rely on: role
// "assistant", reasoning in reasoning_content (never in content), tool
// calls with an id and type "function", and a finish_reason on every
// choice ("tool_calls" whenever the message calls tools, even if the
// server said "stop", as llama.cpp and older vLLM do). A 2xx body that is
// an error object (some compatible servers) is returned as *openai.APIError.
func (t *Translator) ChatResponse(body []byte, _ translate.Target, meta translate.StreamMeta) (*openai.ChatResponse, error) {
	var w wireResponse
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, malformed(t.flavor, "response body is not a chat.completion")
	}
	if w.Choices == nil && hasValue(w.Error) {
		return nil, errorFromEvent(eventError(w.Error))
	}
	if len(w.Choices) == 0 {
		return nil, malformed(t.flavor, "response has no choices")
	}
	out := &openai.ChatResponse{
		ID:                meta.ID,
		Object:            openai.ObjectChatCompletion,
		Created:           meta.Created,
		Model:             meta.Model,
		Choices:           make([]openai.Choice, len(w.Choices)),
		Usage:             w.Usage,
		SystemFingerprint: w.SystemFingerprint,
		ServiceTier:       w.ServiceTier,
	}
	if w.Usage != nil {
		fillTotal(w.Usage)
	}
	ids := newCallIDs(meta.ID)
	for i := range w.Choices {
		wc := &w.Choices[i]
		m := wc.Message.Message
		m.Role = openai.RoleAssistant
		if m.ReasoningContent == "" {
			m.ReasoningContent = wc.Message.Reasoning
		}
		for j := range m.ToolCalls {
			tc := &m.ToolCalls[j]
			tc.Index = nil
			if tc.ID == "" {
				tc.ID = ids.id(wc.Index, j)
			}
			if tc.Type == "" {
				tc.Type = "function"
			}
		}
		finish := ""
		if wc.FinishReason != nil {
			finish = *wc.FinishReason
		}
		lp := wc.Logprobs
		if !hasValue(lp) {
			lp = nil
		}
		out.Choices[i] = openai.Choice{Index: wc.Index, Message: m, FinishReason: normalizeFinish(finish, len(m.ToolCalls) > 0), Logprobs: lp}
	}
	return out, nil
}

// normalizeFinish maps the finish reasons OpenAI-compatible servers invent
// to OpenAI's four, and fills in a missing one.
func normalizeFinish(reason string, hasCalls bool) string {
	switch reason {
	case openai.FinishLength, "max_tokens", "model_length":
		return openai.FinishLength
	case openai.FinishContentFilter:
		return openai.FinishContentFilter
	case openai.FinishToolCalls, "function_call", "tool_use":
		return openai.FinishToolCalls
	}
	if hasCalls {
		return openai.FinishToolCalls
	}
	// "stop", "", "eos", "eos_token", "stop_sequence", "end_turn", "abort"...
	return openai.FinishStop
}

// callIDs makes tool call ids for servers that send none. They derive from
// the gateway's response id, so they are unique across turns and the same
// in a stream and a whole response.
type callIDs struct{ prefix string }

func newCallIDs(responseID string) callIDs {
	return callIDs{prefix: "call_" + strings.TrimPrefix(responseID, "chatcmpl-") + "_"}
}

func (c callIDs) id(choice, index int) string {
	return c.prefix + strconv.Itoa(choice) + "_" + strconv.Itoa(index)
}

// fillTotal sets total_tokens when a compatible server leaves it out.
func fillTotal(u *openai.Usage) {
	if u.TotalTokens == 0 {
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
}

// hasValue reports whether raw holds a JSON value other than null.
func hasValue(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// eventError reads the "error" member of a body or event: an object in
// OpenAI's shape, or a bare string.
func eventError(raw json.RawMessage) upstreamError {
	raw = bytes.TrimSpace(raw)
	var ue upstreamError
	if len(raw) > 0 && raw[0] == '"' {
		_ = json.Unmarshal(raw, &ue.Message)
		return ue
	}
	_ = json.Unmarshal(raw, &ue)
	return ue
}

// malformed is the 502 for a 2xx answer that cannot be understood; it is
// retryable, so the proxy may try the next target before anything was sent.
func malformed(f Flavor, msg string) *openai.APIError {
	return openai.NewError(http.StatusBadGateway, openai.TypeServer, "invalid_upstream_response", "", f.String()+": "+msg)
}
