package ollama

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// ChatResponse parses a non-streaming /api/chat answer: thinking (and a
// leading <think> block in content) becomes reasoning_content, never
// content; tool calls get stable ids and string
// arguments, done_reason becomes finish_reason ("tool_calls" when the
// message calls tools) and prompt_eval_count / eval_count become usage. A
// 2xx body carrying {"error": ...} is returned as *openai.APIError.
func (Translator) ChatResponse(body []byte, _ translate.Target, meta translate.StreamMeta) (*openai.ChatResponse, error) {
	var r ChatResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, malformed("response body is not an /api/chat answer")
	}
	if hasValue(r.Error) {
		return nil, streamError(r.Error)
	}
	var split thinkSplitter
	reasoning, content := split.feed(r.Message.Content)
	r2, c2 := split.flush()
	reasoning, content = r.Message.Thinking+reasoning+r2, content+c2
	msg := openai.Message{Role: openai.RoleAssistant, ReasoningContent: reasoning}
	if content != "" || len(r.Message.ToolCalls) == 0 {
		msg.Content = openai.TextContent(content)
	}
	ids := newCallIDs(meta.ID)
	for i := range r.Message.ToolCalls {
		tc, err := convertToolCall(&r.Message.ToolCalls[i], ids, i)
		if err != nil {
			return nil, err
		}
		msg.ToolCalls = append(msg.ToolCalls, tc)
	}
	return &openai.ChatResponse{
		ID:      meta.ID,
		Object:  openai.ObjectChatCompletion,
		Created: meta.Created,
		Model:   meta.Model,
		Choices: []openai.Choice{{Index: 0, Message: msg, FinishReason: finishReason(r.DoneReason, len(msg.ToolCalls) > 0)}},
		Usage:   usage(&r),
	}, nil
}

// finishReason maps done_reason. Ollama says "stop" after tool calls too;
// "load" and "unload" (model management answers) are "stop".
func finishReason(doneReason string, hasCalls bool) string {
	switch {
	case hasCalls:
		return openai.FinishToolCalls
	case doneReason == "length":
		return openai.FinishLength
	}
	return openai.FinishStop
}

func usage(r *ChatResponse) *openai.Usage {
	return &openai.Usage{PromptTokens: r.PromptEvalCount, CompletionTokens: r.EvalCount, TotalTokens: r.PromptEvalCount + r.EvalCount}
}

// convertToolCall gives an Ollama call an OpenAI id (Ollama's own when it
// sends one) and its arguments as a compact JSON string.
func convertToolCall(c *ToolCall, ids callIDs, index int) (openai.ToolCall, error) {
	if c.Function.Name == "" {
		return openai.ToolCall{}, malformed("tool call without a function name")
	}
	id := c.ID
	if id == "" {
		id = ids.id(index)
	}
	args := bytes.TrimSpace(c.Function.Arguments)
	var buf bytes.Buffer
	switch {
	case len(args) == 0 || bytes.Equal(args, []byte("null")):
		buf.WriteString("{}")
	case args[0] == '"':
		// Some model templates yield arguments as an encoded string; a
		// string that holds no JSON is kept as a JSON string.
		var s string
		if json.Unmarshal(args, &s) != nil {
			return openai.ToolCall{}, malformed("tool call arguments")
		}
		if err := json.Compact(&buf, []byte(s)); err != nil {
			buf.Reset()
			buf.Write(args)
		}
	default:
		if err := json.Compact(&buf, args); err != nil {
			return openai.ToolCall{}, malformed("tool call arguments")
		}
	}
	return openai.ToolCall{ID: id, Type: "function", Function: openai.FunctionCall{Name: c.Function.Name, Arguments: buf.String()}}, nil
}

// callIDs makes tool call ids from the gateway's response id: unique across
// turns (clients key tool results by id), identical for a stream and a
// whole response.
type callIDs struct{ prefix string }

func newCallIDs(responseID string) callIDs {
	return callIDs{prefix: "call_" + strings.TrimPrefix(responseID, "chatcmpl-") + "_"}
}

func (c callIDs) id(index int) string { return c.prefix + strconv.Itoa(index) }

func hasValue(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// malformed is the (retryable) 502 for a 2xx answer that cannot be understood.
func malformed(msg string) *openai.APIError {
	return openai.NewError(http.StatusBadGateway, openai.TypeServer, "invalid_upstream_response", "", "ollama: "+msg)
}

func badRequest(param, format string, args ...any) *openai.APIError {
	return openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, "invalid_value", param, sprintf(format, args...))
}

// EmbeddingResponse maps an /api/embed answer to an OpenAI list, passing
// each vector through without re-encoding the floats; prompt_eval_count is
// the usage.
func (Translator) EmbeddingResponse(body []byte, t translate.Target) (*openai.EmbeddingResponse, error) {
	var r EmbedResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, malformed("embeddings response is not an /api/embed answer")
	}
	if hasValue(r.Error) {
		return nil, streamError(r.Error)
	}
	if r.Embeddings == nil {
		return nil, malformed("embeddings response has no embeddings")
	}
	model := t.Model
	if model == "" {
		model = r.Model
	}
	out := &openai.EmbeddingResponse{Object: "list", Model: model, Data: make([]openai.Embedding, len(r.Embeddings)),
		Usage: &openai.Usage{PromptTokens: r.PromptEvalCount, TotalTokens: r.PromptEvalCount}}
	for i, e := range r.Embeddings {
		v := bytes.TrimSpace(e)
		if len(v) == 0 || v[0] != '[' {
			return nil, malformed("embeddings response: embedding is not an array")
		}
		out.Data[i] = openai.Embedding{Object: "embedding", Index: i, Embedding: v}
	}
	return out, nil
}
