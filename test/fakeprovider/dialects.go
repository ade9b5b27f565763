package fakeprovider

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"tollgate.dev/tollgate/dataplane/eventstream"
)

// fakeSignature signs the fake model's reasoning (Anthropic, Bedrock).
const fakeSignature = "fake-signature"

// dialect is one provider's native API.
type dialect interface {
	parse(r *http.Request, body []byte) (Conversation, bool, error)
	response(c Conversation, a Answer) any
	stream(w *streamWriter, c Conversation, a Answer, chunks int)
	writeError(w http.ResponseWriter, status int, msg string)
}

func dialectOf(r *http.Request) dialect {
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/api/embed") || strings.HasSuffix(p, "/api/embeddings"):
		return ollamaDialect{}
	case strings.HasSuffix(p, "/embeddings"):
		return openaiDialect{}
	case strings.Contains(p, ":embedContent") || strings.Contains(p, ":batchEmbedContents"):
		return geminiDialect{}
	case strings.HasSuffix(p, "/chat/completions"):
		return openaiDialect{}
	case strings.HasSuffix(p, "/v1/messages") || strings.HasSuffix(p, countTokensPath):
		return anthropicDialect{}
	case strings.Contains(p, ":generateContent") || strings.Contains(p, ":streamGenerateContent") || strings.HasSuffix(p, ":countTokens"):
		return geminiDialect{}
	case strings.HasSuffix(p, "/api/chat"):
		return ollamaDialect{}
	case strings.HasSuffix(p, "/converse") || strings.HasSuffix(p, "/converse-stream") || strings.HasSuffix(p, "/count-tokens"):
		return bedrockDialect{}
	}
	return nil
}

// text extracts text from a string or an array of {"type":"text","text":...}
// (or {"text":...}) blocks.
func text(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []map[string]any
	if json.Unmarshal(raw, &parts) != nil {
		return ""
	}
	var b strings.Builder
	for _, p := range parts {
		if t, ok := p["text"].(string); ok {
			b.WriteString(t)
		}
	}
	return b.String()
}

// ---- OpenAI (and Azure, vLLM) ----

type openaiDialect struct{}

func (openaiDialect) parse(r *http.Request, body []byte) (Conversation, bool, error) {
	var req struct {
		Model    string `json:"model"`
		Stream   bool   `json:"stream"`
		Messages []struct {
			Role      string          `json:"role"`
			Content   json.RawMessage `json:"content"`
			ToolCalls []any           `json:"tool_calls"`
		} `json:"messages"`
		Tools []struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return Conversation{}, false, err
	}
	if len(req.Messages) == 0 {
		return Conversation{}, false, errors.New("messages must not be empty")
	}
	c := Conversation{Model: req.Model}
	if c.Model == "" { // Azure puts the deployment in the path
		c.Model = deploymentOf(r.URL.Path)
	}
	for _, t := range req.Tools {
		c.Tools = append(c.Tools, t.Function.Name)
	}
	for _, m := range req.Messages {
		c.PromptChars += len(m.Content)
		switch m.Role {
		case "user":
			c.LastUser = text(m.Content)
			c.ToolResults = nil
		case "assistant":
			c.ToolResults = nil
		case "tool":
			c.ToolResults = append(c.ToolResults, text(m.Content))
		}
	}
	return c, req.Stream, nil
}

func deploymentOf(p string) string {
	const marker = "/deployments/"
	i := strings.Index(p, marker)
	if i < 0 {
		return ""
	}
	rest := p[i+len(marker):]
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		return rest[:j]
	}
	return rest
}

func openaiToolCalls(a Answer, withIndex bool) []map[string]any {
	var out []map[string]any
	for i, tc := range a.ToolCalls {
		m := map[string]any{"id": tc.ID, "type": "function", "function": map[string]any{"name": tc.Name, "arguments": tc.Args}}
		if withIndex {
			m["index"] = i
		}
		out = append(out, m)
	}
	return out
}

func openaiFinish(a Answer) string {
	if a.Truncated {
		return "length"
	}
	if len(a.ToolCalls) > 0 {
		return "tool_calls"
	}
	return "stop"
}

func (openaiDialect) response(c Conversation, a Answer) any {
	msg := map[string]any{"role": "assistant", "content": nil}
	if a.Text != "" {
		msg["content"] = a.Text
	}
	if len(a.ToolCalls) > 0 {
		msg["tool_calls"] = openaiToolCalls(a, false)
	}
	return map[string]any{
		"id": "chatcmpl-fake", "object": "chat.completion", "created": time.Now().Unix(), "model": c.Model,
		"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": openaiFinish(a)}},
		"usage": map[string]any{"prompt_tokens": a.Prompt, "completion_tokens": a.Output, "total_tokens": a.Prompt + a.Output,
			"prompt_tokens_details": map[string]any{"cached_tokens": 0}},
	}
}

func (openaiDialect) stream(w *streamWriter, c Conversation, a Answer, chunks int) {
	w.w.Header().Set("Content-Type", "text/event-stream")
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": c.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	w.sse("", chunk(map[string]any{"role": "assistant", "content": ""}, nil))
	for _, p := range split(a.Text, chunks) {
		if p != "" {
			w.sse("", chunk(map[string]any{"content": p}, nil))
		}
	}
	if len(a.ToolCalls) > 0 {
		w.sse("", chunk(map[string]any{"tool_calls": openaiToolCalls(a, true)}, nil))
	}
	if w.errMsg != "" {
		w.sse("", map[string]any{"error": map[string]any{"message": w.errMsg, "type": "server_error", "param": nil, "code": nil}})
		return
	}
	w.sse("", chunk(map[string]any{}, openaiFinish(a)))
	w.sse("", map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": c.Model, "choices": []any{},
		"usage": map[string]any{"prompt_tokens": a.Prompt, "completion_tokens": a.Output, "total_tokens": a.Prompt + a.Output}})
	w.write([]byte("data: [DONE]\n\n"))
}

// openaiErrorType is the error type (and code) OpenAI sends with a status.
func openaiErrorType(status int) (typ string, code any) {
	switch {
	case status == http.StatusUnauthorized:
		return "invalid_request_error", "invalid_api_key"
	case status == http.StatusNotFound:
		return "invalid_request_error", "model_not_found"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error", "rate_limit_exceeded"
	case status >= 400 && status < 500:
		return "invalid_request_error", nil
	}
	return "server_error", nil
}

func (openaiDialect) writeError(w http.ResponseWriter, status int, msg string) {
	typ, code := openaiErrorType(status)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": code}})
}

// ---- Anthropic Messages ----

type anthropicDialect struct{}

func (anthropicDialect) parse(_ *http.Request, body []byte) (Conversation, bool, error) {
	return parseAnthropic(body, true)
}

// parseAnthropic reads a Messages body; a count_tokens body is one without
// max_tokens (needMaxTokens false).
func parseAnthropic(body []byte, needMaxTokens bool) (Conversation, bool, error) {
	var req struct {
		Model     string `json:"model"`
		MaxTokens int    `json:"max_tokens"`
		Stream    bool   `json:"stream"`
		Messages  []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return Conversation{}, false, err
	}
	if needMaxTokens && req.MaxTokens <= 0 {
		return Conversation{}, false, errors.New("max_tokens: Field required")
	}
	c := Conversation{Model: req.Model}
	for _, t := range req.Tools {
		c.Tools = append(c.Tools, t.Name)
	}
	for i, m := range req.Messages {
		if i > 0 && req.Messages[i-1].Role == m.Role {
			return Conversation{}, false, errors.New("messages: roles must alternate between \"user\" and \"assistant\"")
		}
		c.PromptChars += len(m.Content)
		if m.Role != "user" {
			continue
		}
		var blocks []struct {
			Type    string          `json:"type"`
			Text    string          `json:"text"`
			Content json.RawMessage `json:"content"`
		}
		c.ToolResults = nil
		if json.Unmarshal(m.Content, &blocks) == nil {
			for _, b := range blocks {
				if b.Type == "tool_result" {
					c.ToolResults = append(c.ToolResults, text(b.Content))
				}
			}
		}
		c.LastUser = text(m.Content)
	}
	return c, req.Stream, nil
}

func anthropicStop(a Answer) string {
	if a.Truncated {
		return "max_tokens"
	}
	if len(a.ToolCalls) > 0 {
		return "tool_use"
	}
	return "end_turn"
}

func (anthropicDialect) response(c Conversation, a Answer) any {
	var content []any
	if a.Thinking != "" {
		content = append(content, map[string]any{"type": "thinking", "thinking": a.Thinking, "signature": fakeSignature})
	}
	if a.Text != "" {
		content = append(content, map[string]any{"type": "text", "text": a.Text})
	}
	for _, tc := range a.ToolCalls {
		content = append(content, map[string]any{"type": "tool_use", "id": "toolu_" + tc.ID, "name": tc.Name, "input": json.RawMessage(tc.Args)})
	}
	return map[string]any{"id": "msg_fake", "type": "message", "role": "assistant", "model": c.Model, "content": content,
		"stop_reason": anthropicStop(a), "stop_sequence": nil,
		"usage": map[string]any{"input_tokens": a.Prompt, "output_tokens": a.Output, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}
}

func (anthropicDialect) stream(w *streamWriter, c Conversation, a Answer, chunks int) {
	w.w.Header().Set("Content-Type", "text/event-stream")
	w.sse("message_start", map[string]any{"type": "message_start", "message": map[string]any{"id": "msg_fake", "type": "message", "role": "assistant",
		"model": c.Model, "content": []any{}, "stop_reason": nil, "stop_sequence": nil, "usage": map[string]any{"input_tokens": a.Prompt, "output_tokens": 1}}})
	idx := 0
	if a.Thinking != "" {
		w.sse("content_block_start", map[string]any{"type": "content_block_start", "index": idx, "content_block": map[string]any{"type": "thinking", "thinking": "", "signature": ""}})
		for _, p := range split(a.Thinking, 2) {
			w.sse("content_block_delta", map[string]any{"type": "content_block_delta", "index": idx, "delta": map[string]any{"type": "thinking_delta", "thinking": p}})
		}
		w.sse("content_block_delta", map[string]any{"type": "content_block_delta", "index": idx, "delta": map[string]any{"type": "signature_delta", "signature": fakeSignature}})
		w.sse("content_block_stop", map[string]any{"type": "content_block_stop", "index": idx})
		idx++
	}
	if a.Text != "" {
		w.sse("content_block_start", map[string]any{"type": "content_block_start", "index": idx, "content_block": map[string]any{"type": "text", "text": ""}})
		w.sse("ping", map[string]any{"type": "ping"})
		for _, p := range split(a.Text, chunks) {
			w.sse("content_block_delta", map[string]any{"type": "content_block_delta", "index": idx, "delta": map[string]any{"type": "text_delta", "text": p}})
		}
		w.sse("content_block_stop", map[string]any{"type": "content_block_stop", "index": idx})
		idx++
	}
	for _, tc := range a.ToolCalls {
		w.sse("content_block_start", map[string]any{"type": "content_block_start", "index": idx,
			"content_block": map[string]any{"type": "tool_use", "id": "toolu_" + tc.ID, "name": tc.Name, "input": map[string]any{}}})
		for _, p := range split(tc.Args, 3) {
			w.sse("content_block_delta", map[string]any{"type": "content_block_delta", "index": idx, "delta": map[string]any{"type": "input_json_delta", "partial_json": p}})
		}
		w.sse("content_block_stop", map[string]any{"type": "content_block_stop", "index": idx})
		idx++
	}
	if w.errMsg != "" {
		w.sse("error", map[string]any{"type": "error", "error": map[string]any{"type": "overloaded_error", "message": w.errMsg}})
		return
	}
	w.sse("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": anthropicStop(a), "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": a.Output}})
	w.sse("message_stop", map[string]any{"type": "message_stop"})
}

func (anthropicDialect) writeError(w http.ResponseWriter, status int, msg string) {
	typ := "api_error"
	switch status {
	case 400:
		typ = "invalid_request_error"
	case 429:
		typ = "rate_limit_error"
	case 529:
		typ = "overloaded_error"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}})
}

// ---- Gemini ----

type geminiDialect struct{}

func (geminiDialect) parse(r *http.Request, body []byte) (Conversation, bool, error) {
	var req struct {
		Contents []struct {
			Role  string           `json:"role"`
			Parts []map[string]any `json:"parts"`
		} `json:"contents"`
		Tools []struct {
			FunctionDeclarations []struct {
				Name string `json:"name"`
			} `json:"functionDeclarations"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return Conversation{}, false, err
	}
	if len(req.Contents) == 0 {
		return Conversation{}, false, errors.New("* GenerateContentRequest.contents: contents is not specified")
	}
	model := strings.TrimPrefix(r.URL.Path, "/v1beta/models/")
	model, _, _ = strings.Cut(model, ":")
	c := Conversation{Model: model}
	for _, t := range req.Tools {
		for _, f := range t.FunctionDeclarations {
			c.Tools = append(c.Tools, f.Name)
		}
	}
	for _, m := range req.Contents {
		if m.Role != "user" {
			continue
		}
		c.ToolResults = nil
		var sb strings.Builder
		for _, p := range m.Parts {
			if t, ok := p["text"].(string); ok {
				sb.WriteString(t)
				c.PromptChars += len(t)
			}
			if fr, ok := p["functionResponse"].(map[string]any); ok {
				b, _ := json.Marshal(fr["response"])
				var obj map[string]any
				_ = json.Unmarshal(b, &obj)
				if s, ok := obj["content"].(string); ok && len(obj) == 1 {
					c.ToolResults = append(c.ToolResults, s)
				} else {
					c.ToolResults = append(c.ToolResults, string(b))
				}
			}
		}
		c.LastUser = sb.String()
	}
	return c, strings.Contains(r.URL.Path, ":streamGenerateContent"), nil
}

func geminiParts(a Answer, textPart string) []any {
	var parts []any
	if a.Thinking != "" {
		parts = append(parts, map[string]any{"text": a.Thinking, "thought": true})
	}
	if textPart != "" {
		parts = append(parts, map[string]any{"text": textPart})
	}
	for _, tc := range a.ToolCalls {
		parts = append(parts, map[string]any{"functionCall": map[string]any{"name": tc.Name, "args": json.RawMessage(tc.Args)}})
	}
	return parts
}

func geminiFinish(a Answer) string {
	if a.Truncated {
		return "MAX_TOKENS"
	}
	return "STOP"
}

func (geminiDialect) response(c Conversation, a Answer) any {
	return map[string]any{
		"candidates":    []any{map[string]any{"content": map[string]any{"role": "model", "parts": geminiParts(a, a.Text)}, "finishReason": geminiFinish(a), "index": 0}},
		"usageMetadata": map[string]any{"promptTokenCount": a.Prompt, "candidatesTokenCount": a.Output, "totalTokenCount": a.Prompt + a.Output},
		"modelVersion":  c.Model,
	}
}

func (geminiDialect) stream(w *streamWriter, c Conversation, a Answer, chunks int) {
	w.w.Header().Set("Content-Type", "text/event-stream")
	pieces := split(a.Text, chunks)
	if a.Text == "" {
		pieces = []string{""}
	}
	if a.Thinking != "" { // thoughts come first, in events of their own
		b, _ := json.Marshal(map[string]any{"candidates": []any{map[string]any{"content": map[string]any{"role": "model",
			"parts": []any{map[string]any{"text": a.Thinking, "thought": true}}}, "index": 0}}, "modelVersion": c.Model})
		w.write([]byte("data: " + string(b) + "\r\n\r\n"))
		a.Thinking = ""
	}
	for i, p := range pieces {
		cand := map[string]any{"content": map[string]any{"role": "model", "parts": []any{map[string]any{"text": p}}}, "index": 0}
		ev := map[string]any{"candidates": []any{cand}, "modelVersion": c.Model}
		if i == len(pieces)-1 {
			cand["content"] = map[string]any{"role": "model", "parts": geminiParts(a, p)}
			cand["finishReason"] = geminiFinish(a)
			ev["usageMetadata"] = map[string]any{"promptTokenCount": a.Prompt, "candidatesTokenCount": a.Output, "totalTokenCount": a.Prompt + a.Output}
		}
		b, _ := json.Marshal(ev)
		w.write([]byte("data: " + string(b) + "\r\n\r\n"))
	}
}

func (geminiDialect) writeError(w http.ResponseWriter, status int, msg string) {
	st := map[int]string{400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
		429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}[status]
	if st == "" {
		st = "INTERNAL"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": status, "message": msg, "status": st}})
}

// ---- Ollama ----

type ollamaDialect struct{}

func (ollamaDialect) parse(_ *http.Request, body []byte) (Conversation, bool, error) {
	var req struct {
		Model    string `json:"model"`
		Stream   *bool  `json:"stream"`
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
		Tools []struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return Conversation{}, false, err
	}
	c := Conversation{Model: req.Model}
	for _, t := range req.Tools {
		c.Tools = append(c.Tools, t.Function.Name)
	}
	for _, m := range req.Messages {
		c.PromptChars += len(m.Content)
		switch m.Role {
		case "user":
			c.LastUser = m.Content
			c.ToolResults = nil
		case "tool":
			c.ToolResults = append(c.ToolResults, m.Content)
		case "assistant":
			c.ToolResults = nil
		}
	}
	stream := req.Stream == nil || *req.Stream // Ollama streams by default
	return c, stream, nil
}

func ollamaMessage(a Answer, content string, withTools bool) map[string]any {
	m := map[string]any{"role": "assistant", "content": content}
	if withTools && len(a.ToolCalls) > 0 {
		var tcs []any
		for _, tc := range a.ToolCalls {
			tcs = append(tcs, map[string]any{"function": map[string]any{"name": tc.Name, "arguments": json.RawMessage(tc.Args)}})
		}
		m["tool_calls"] = tcs
	}
	return m
}

func ollamaDoneReason(a Answer) string {
	if a.Truncated {
		return "length"
	}
	return "stop"
}

func (ollamaDialect) response(c Conversation, a Answer) any {
	msg := ollamaMessage(a, a.Text, true)
	if a.Thinking != "" {
		msg["thinking"] = a.Thinking
	}
	return map[string]any{"model": c.Model, "created_at": time.Now().UTC().Format(time.RFC3339Nano), "message": msg,
		"done": true, "done_reason": ollamaDoneReason(a), "prompt_eval_count": a.Prompt, "eval_count": a.Output}
}

func (ollamaDialect) stream(w *streamWriter, c Conversation, a Answer, chunks int) {
	w.w.Header().Set("Content-Type", "application/x-ndjson")
	line := func(v any) {
		b, _ := json.Marshal(v)
		w.write(append(b, '\n'))
	}
	if a.Thinking != "" {
		for _, p := range split(a.Thinking, 2) {
			line(map[string]any{"model": c.Model, "message": map[string]any{"role": "assistant", "content": "", "thinking": p}, "done": false})
		}
	}
	for _, p := range split(a.Text, chunks) {
		if p != "" {
			line(map[string]any{"model": c.Model, "message": ollamaMessage(a, p, false), "done": false})
		}
	}
	if len(a.ToolCalls) > 0 {
		line(map[string]any{"model": c.Model, "message": ollamaMessage(a, "", true), "done": false})
	}
	if w.errMsg != "" {
		line(map[string]any{"error": w.errMsg})
		return
	}
	line(map[string]any{"model": c.Model, "message": map[string]any{"role": "assistant", "content": ""}, "done": true, "done_reason": ollamaDoneReason(a),
		"prompt_eval_count": a.Prompt, "eval_count": a.Output})
}

func (ollamaDialect) writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": msg})
}

// ---- Bedrock Converse ----

type bedrockDialect struct{}

func (bedrockDialect) parse(r *http.Request, body []byte) (Conversation, bool, error) {
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=") && !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		return Conversation{}, false, errors.New("missing SigV4 Authorization")
	}
	var req struct {
		Messages []struct {
			Role    string           `json:"role"`
			Content []map[string]any `json:"content"`
		} `json:"messages"`
		ToolConfig *struct {
			Tools []struct {
				ToolSpec struct {
					Name string `json:"name"`
				} `json:"toolSpec"`
			} `json:"tools"`
		} `json:"toolConfig"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return Conversation{}, false, err
	}
	p := strings.TrimPrefix(r.URL.Path, "/model/")
	model, _, _ := strings.Cut(p, "/")
	c := Conversation{Model: model}
	if req.ToolConfig != nil {
		for _, t := range req.ToolConfig.Tools {
			c.Tools = append(c.Tools, t.ToolSpec.Name)
		}
	}
	for _, m := range req.Messages {
		if m.Role != "user" {
			continue
		}
		c.ToolResults = nil
		var sb strings.Builder
		for _, blk := range m.Content {
			if t, ok := blk["text"].(string); ok {
				sb.WriteString(t)
				c.PromptChars += len(t)
			}
			if tr, ok := blk["toolResult"].(map[string]any); ok {
				items, _ := tr["content"].([]any)
				for _, it := range items {
					im, _ := it.(map[string]any)
					if t, ok := im["text"].(string); ok {
						c.ToolResults = append(c.ToolResults, t)
					} else if j, ok := im["json"]; ok {
						b, _ := json.Marshal(j)
						c.ToolResults = append(c.ToolResults, string(b))
					}
				}
			}
		}
		c.LastUser = sb.String()
	}
	return c, strings.HasSuffix(r.URL.Path, "/converse-stream"), nil
}

func bedrockStop(a Answer) string {
	if a.Truncated {
		return "max_tokens"
	}
	if len(a.ToolCalls) > 0 {
		return "tool_use"
	}
	return "end_turn"
}

func (bedrockDialect) response(_ Conversation, a Answer) any {
	var content []any
	if a.Thinking != "" {
		content = append(content, map[string]any{"reasoningContent": map[string]any{"reasoningText": map[string]any{"text": a.Thinking, "signature": fakeSignature}}})
	}
	if a.Text != "" {
		content = append(content, map[string]any{"text": a.Text})
	}
	for _, tc := range a.ToolCalls {
		content = append(content, map[string]any{"toolUse": map[string]any{"toolUseId": "tooluse_" + tc.ID, "name": tc.Name, "input": json.RawMessage(tc.Args)}})
	}
	return map[string]any{"output": map[string]any{"message": map[string]any{"role": "assistant", "content": content}},
		"stopReason": bedrockStop(a), "usage": map[string]any{"inputTokens": a.Prompt, "outputTokens": a.Output, "totalTokens": a.Prompt + a.Output},
		"metrics": map[string]any{"latencyMs": 1}}
}

func (bedrockDialect) stream(w *streamWriter, _ Conversation, a Answer, chunks int) {
	w.w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	ev := func(typ string, v any) {
		b, _ := json.Marshal(v)
		hs := []eventstream.Header{eventstream.StringHeader(":event-type", typ), eventstream.StringHeader(":content-type", "application/json"),
			eventstream.StringHeader(":message-type", "event")}
		if strings.HasSuffix(typ, "Exception") {
			hs = []eventstream.Header{eventstream.StringHeader(":exception-type", typ), eventstream.StringHeader(":content-type", "application/json"),
				eventstream.StringHeader(":message-type", "exception")}
		}
		frame, err := eventstream.AppendMessage(nil, &eventstream.Message{Headers: hs, Payload: b})
		if err != nil {
			panic(fmt.Sprintf("encode event-stream frame: %v", err))
		}
		w.write(frame)
	}
	ev("messageStart", map[string]any{"role": "assistant", "p": "abcd"})
	idx := 0
	if a.Thinking != "" {
		for _, p := range split(a.Thinking, 2) {
			ev("contentBlockDelta", map[string]any{"contentBlockIndex": idx, "delta": map[string]any{"reasoningContent": map[string]any{"text": p}}, "p": "abcd"})
		}
		ev("contentBlockDelta", map[string]any{"contentBlockIndex": idx, "delta": map[string]any{"reasoningContent": map[string]any{"signature": fakeSignature}}, "p": "abcd"})
		ev("contentBlockStop", map[string]any{"contentBlockIndex": idx, "p": "abcd"})
		idx++
	}
	if a.Text != "" {
		for _, p := range split(a.Text, chunks) {
			ev("contentBlockDelta", map[string]any{"contentBlockIndex": idx, "delta": map[string]any{"text": p}, "p": "abcd"})
		}
		ev("contentBlockStop", map[string]any{"contentBlockIndex": idx, "p": "abcd"})
		idx++
	}
	for _, tc := range a.ToolCalls {
		ev("contentBlockStart", map[string]any{"contentBlockIndex": idx, "start": map[string]any{"toolUse": map[string]any{"toolUseId": "tooluse_" + tc.ID, "name": tc.Name}}, "p": "abcd"})
		for _, p := range split(tc.Args, 2) {
			ev("contentBlockDelta", map[string]any{"contentBlockIndex": idx, "delta": map[string]any{"toolUse": map[string]any{"input": p}}, "p": "abcd"})
		}
		ev("contentBlockStop", map[string]any{"contentBlockIndex": idx, "p": "abcd"})
		idx++
	}
	if w.errMsg != "" {
		ev("modelStreamErrorException", map[string]any{"message": w.errMsg, "originalStatusCode": 500, "originalMessage": w.errMsg})
		return
	}
	ev("messageStop", map[string]any{"stopReason": bedrockStop(a), "p": "abcd"})
	ev("metadata", map[string]any{"usage": map[string]any{"inputTokens": a.Prompt, "outputTokens": a.Output, "totalTokens": a.Prompt + a.Output},
		"metrics": map[string]any{"latencyMs": 1}, "p": "abcd"})
}

func (bedrockDialect) writeError(w http.ResponseWriter, status int, msg string) {
	typ := map[int]string{400: "ValidationException", 403: "AccessDeniedException", 404: "ResourceNotFoundException",
		429: "ThrottlingException", 503: "ServiceUnavailableException"}[status]
	if typ == "" {
		typ = "InternalServerException"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-ErrorType", typ+":http://internal.amazon.com/coral/com.amazon.bedrock/")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"message": msg})
}
