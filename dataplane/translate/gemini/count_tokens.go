package gemini

import (
	"context"
	"net/http"
	"strings"

	json "github.com/go-json-experiment/json/v1"
	wire "tollgate.dev/tollgate/dataplane/schema/gemini"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// countTokensBody is the documented body of models.countTokens when the
// whole prompt is counted: a generateContentRequest, which then has to name
// its model ("models/{model}").
type countTokensBody struct {
	GenerateContentRequest countContentRequest `json:"generateContentRequest"`
}

type countContentRequest struct {
	Model string `json:"model"`
	wire.GenerateContentRequest
}

// CountTokensRequest builds POST {BaseURL}/v1beta/models/{model}:countTokens
// for target t, Google's token counting API. The counted request is exactly
// the GenerateContentRequest ChatRequest would send to t (BuildRequest: the
// same contents, systemInstruction, tools, toolConfig and generationConfig,
// after any redaction), so the count is the count of what the gateway
// sends; URL and headers follow ChatRequest's (the provider's base URL and
// headers, the key in x-goog-api-key, never in the URL).
func CountTokensRequest(ctx context.Context, req *openai.ChatRequest, t translate.Target) (*http.Request, error) {
	body, err := BuildRequest(ctx, req, t.Media)
	if err != nil {
		return nil, err
	}
	count := &countTokensBody{GenerateContentRequest: countContentRequest{
		Model:                  "models/" + strings.TrimPrefix(t.Model, "models/"),
		GenerateContentRequest: *body,
	}}
	hr, err := newRequest(ctx, t, "/v1beta/models/"+modelPath(t.Model)+":countTokens", count)
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Accept", "application/json")
	return hr, nil
}

// ParseCountTokensResponse reads the totalTokens of a countTokens answer
// ({"totalTokens": N, ...}). Google leaves zero-valued fields out of its
// JSON, but a prompt the gateway sends is never zero tokens, so an answer
// without totalTokens is refused rather than read as 0.
func ParseCountTokensResponse(body []byte) (int, error) {
	var v struct {
		TotalTokens *int `json:"totalTokens"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.TotalTokens == nil || *v.TotalTokens < 0 {
		return 0, malformed("countTokens response without a valid totalTokens")
	}
	return *v.TotalTokens, nil
}
