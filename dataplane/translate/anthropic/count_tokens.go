package anthropic

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	json "github.com/go-json-experiment/json/v1"
	wire "tollgate.dev/tollgate/dataplane/schema/anthropic"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// ParseCountTokensRequest parses and validates a POST
// /v1/messages/count_tokens body (Anthropic's Token Counting API): a
// Messages body without max_tokens. It goes through ParseMessagesRequest,
// so both endpoints accept and refuse the same model, messages, system,
// tools, tool_choice and thinking. A max_tokens the client sends anyway is
// validated as in Messages and then dropped; the result is never a stream.
func ParseCountTokensRequest(body []byte) (*openai.ChatRequest, *openai.APIError) {
	req, aerr := ParseMessagesRequest(body)
	if aerr != nil && aerr.Param != nil && *aerr.Param == "max_tokens" {
		req, aerr = ParseMessagesRequest(withMaxTokens(body))
	}
	if aerr != nil {
		return nil, aerr
	}
	req.MaxCompletionTokens = nil
	req.Stream, req.StreamOptions = false, nil
	return req, nil
}

// withMaxTokens returns body with "max_tokens":1 as its first member, the
// field Messages requires and counting does not take. ParseMessagesRequest
// checks max_tokens only after decoding the object and finding its model,
// so body is an object with at least one member; a max_tokens of the
// client's own comes later in the object and still wins (last name wins).
func withMaxTokens(body []byte) []byte {
	i := bytes.IndexByte(body, '{')
	if i < 0 {
		return body
	}
	const member = `"max_tokens":1,`
	out := make([]byte, 0, len(body)+len(member))
	out = append(out, body[:i+1]...)
	out = append(out, member...)
	return append(out, body[i+1:]...)
}

// countTokensBody is the documented body of POST /v1/messages/count_tokens:
// the Messages fields that make up the prompt, without max_tokens, stream,
// sampling options or metadata (Anthropic refuses fields it does not take).
type countTokensBody struct {
	Model      string           `json:"model"`
	Messages   []wire.Message   `json:"messages"`
	System     *wire.Content    `json:"system,omitempty"`
	Tools      []wire.Tool      `json:"tools,omitempty"`
	ToolChoice *wire.ToolChoice `json:"tool_choice,omitempty"`
	Thinking   *wire.Thinking   `json:"thinking,omitempty"`
}

// CountTokensRequest builds POST {BaseURL}/v1/messages/count_tokens for
// target t. The prompt is exactly what ChatRequest would send to t (the
// target model, the same message, tool and thinking mapping, after any
// redaction), so the count is the count of what the gateway sends; the
// headers are ChatRequest's (the provider's credential, anthropic-version,
// the provider's own headers). Counting is not a hot path, so the body is
// taken from ChatRequest's rather than building the request twice over.
func CountTokensRequest(ctx context.Context, req *openai.ChatRequest, t translate.Target) (*http.Request, error) {
	r := *req
	r.Stream, r.StreamOptions = false, nil
	hr, err := Translator{}.ChatRequest(ctx, &r, t)
	if err != nil {
		return nil, err
	}
	msg, err := io.ReadAll(hr.Body)
	if err != nil {
		return nil, fmt.Errorf("anthropic: read built request: %w", err)
	}
	var body countTokensBody
	if err := json.Unmarshal(msg, &body); err != nil {
		return nil, fmt.Errorf("anthropic: decode built request: %w", err)
	}
	b, err := json.Marshal(&body)
	if err != nil {
		return nil, fmt.Errorf("anthropic: encode count_tokens request: %w", err)
	}
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, hr.URL.JoinPath("count_tokens").String(), bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("anthropic: build count_tokens request for provider %s: invalid base URL", t.Provider.ID)
	}
	out.Header = hr.Header
	return out, nil
}

// ParseCountTokensResponse reads the input_tokens of a Token Counting API
// answer ({"input_tokens": N}).
func ParseCountTokensResponse(body []byte) (int, error) {
	var v struct {
		InputTokens *int `json:"input_tokens"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.InputTokens == nil || *v.InputTokens < 0 {
		return 0, upstreamMalformed("count_tokens response without a valid input_tokens")
	}
	return *v.InputTokens, nil
}

// CountTokensResponse is the Token Counting API answer for n input tokens.
func CountTokensResponse(n int) []byte {
	b := strconv.AppendInt([]byte(`{"input_tokens":`), int64(n), 10)
	return append(b, '}')
}
