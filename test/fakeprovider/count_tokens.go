package fakeprovider

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// countTokensPath is Anthropic's Token Counting API.
const countTokensPath = "/v1/messages/count_tokens"

// counter is implemented by dialects with a token counting API. Each
// answers with the input tokens the fake model reports in the usage of an
// answer to the same prompt, so a count and the later usage agree.
type counter interface {
	count(w http.ResponseWriter, r *http.Request, body []byte)
}

// isCountPath reports whether a path is a token counting API of any
// dialect: Anthropic's count_tokens, Gemini's models.countTokens, Bedrock's
// CountTokens.
func isCountPath(p string) bool {
	return strings.HasSuffix(p, countTokensPath) || strings.HasSuffix(p, ":countTokens") || strings.HasSuffix(p, "/count-tokens")
}

// count answers the Token Counting API ({"input_tokens": N}).
func (d anthropicDialect) count(w http.ResponseWriter, _ *http.Request, body []byte) {
	conv, _, err := parseAnthropic(body, false)
	if err != nil {
		d.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, map[string]any{"input_tokens": answer(conv, "").Prompt})
}

// count answers models.countTokens ({"totalTokens": N}) for either
// documented body: {"generateContentRequest": {"model": "models/...", ...}}
// (whose model must be the one in the path) or {"contents": [...]}.
func (d geminiDialect) count(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		GenerateContentRequest json.RawMessage `json:"generateContentRequest"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		d.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	prompt := body
	if len(req.GenerateContentRequest) > 0 {
		var m struct {
			Model string `json:"model"`
		}
		_ = json.Unmarshal(req.GenerateContentRequest, &m)
		model, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1beta/"), ":")
		if m.Model != model {
			d.writeError(w, http.StatusBadRequest, "* CountTokensRequest.generate_content_request.model: model "+m.Model+" does not match "+model)
			return
		}
		prompt = req.GenerateContentRequest
	}
	conv, _, err := d.parse(r, prompt)
	if err != nil {
		d.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	n := answer(conv, "").Prompt
	writeJSON(w, map[string]any{"totalTokens": n, "promptTokensDetails": []any{map[string]any{"modality": "TEXT", "tokenCount": n}}})
}

// count answers CountTokens ({"inputTokens": N}) for a Converse input
// ({"input": {"converse": {...}}}), signed as Converse calls are.
func (d bedrockDialect) count(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		Input struct {
			Converse json.RawMessage `json:"converse"`
		} `json:"input"`
	}
	err := json.Unmarshal(body, &req)
	if err == nil && len(req.Input.Converse) == 0 {
		err = errors.New("input.converse is required")
	}
	var conv Conversation
	if err == nil {
		conv, _, err = d.parse(r, req.Input.Converse)
	}
	if err != nil {
		d.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, map[string]any{"inputTokens": answer(conv, "").Prompt})
}
