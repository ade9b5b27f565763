package bedrock

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	json "github.com/go-json-experiment/json/v1"
	wire "tollgate.dev/tollgate/dataplane/schema/bedrock"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// countTokensBody is the documented body of the Bedrock Runtime CountTokens
// operation for a Converse request: {"input": {"converse": {...}}}.
type countTokensBody struct {
	Input struct {
		Converse converseTokensRequest `json:"converse"`
	} `json:"input"`
}

// converseTokensRequest is ConverseTokensRequest: the Converse members that
// make up the prompt (no inferenceConfig).
type converseTokensRequest struct {
	Messages                     []wire.Message       `json:"messages"`
	System                       []wire.SystemContent `json:"system,omitempty"`
	ToolConfig                   *wire.ToolConfig     `json:"toolConfig,omitempty"`
	AdditionalModelRequestFields json.RawMessage      `json:"additionalModelRequestFields,omitempty"`
}

// counter signs the requests of the package-level CountTokensRequest; like
// any Translator it only holds the signer's derived-key cache.
var counter = &Translator{}

// CountTokensRequest builds POST {BaseURL}/model/{modelId}/count-tokens
// for target t (Bedrock Runtime CountTokens), authorized as ChatRequest
// authorizes Converse calls: SigV4 for service "bedrock" with the provider's
// credentials and region, or Bearer with a Bedrock API key.
func CountTokensRequest(ctx context.Context, req *openai.ChatRequest, t translate.Target) (*http.Request, error) {
	return counter.CountTokensRequest(ctx, req, t)
}

// CountTokensRequest is the package-level CountTokensRequest signed with
// tr's clock and key cache. The counted prompt is exactly the Converse body
// ChatRequest would send to t (BuildConverse: the same messages, system,
// toolConfig and additionalModelRequestFields, after any redaction), so the
// count is the count of what the gateway sends.
func (tr *Translator) CountTokensRequest(ctx context.Context, req *openai.ChatRequest, t translate.Target) (*http.Request, error) {
	p := t.Provider
	if p == nil {
		return nil, errors.New("bedrock: target has no provider")
	}
	if t.Model == "" {
		return nil, errors.New("bedrock: target has no model")
	}
	conv, err := BuildConverse(ctx, translate.WithoutCarriedState(req), t)
	if err != nil {
		return nil, err
	}
	var body countTokensBody
	body.Input.Converse = converseTokensRequest{Messages: conv.Messages, System: conv.System,
		ToolConfig: conv.ToolConfig, AdditionalModelRequestFields: conv.AdditionalModelRequestFields}
	b, err := json.Marshal(&body)
	if err != nil {
		return nil, fmt.Errorf("bedrock: encode count-tokens request: %w", err)
	}
	u, region, err := endpoint(p, t.Model, false)
	if err != nil {
		return nil, err
	}
	cu, err := url.Parse(u)
	if err != nil {
		return nil, fmt.Errorf("bedrock: provider %s has an invalid base URL", p.ID)
	}
	cu.RawPath = strings.TrimSuffix(cu.EscapedPath(), "/converse") + "/count-tokens"
	cu.Path = strings.TrimSuffix(cu.Path, "/converse") + "/count-tokens"
	return tr.signedJSONRequest(ctx, p, cu.String(), region, b, contentTypeJSON)
}

// ParseCountTokensResponse reads the inputTokens of a CountTokens answer
// ({"inputTokens": N}).
func ParseCountTokensResponse(body []byte) (int, error) {
	var v struct {
		InputTokens *int `json:"inputTokens"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.InputTokens == nil || *v.InputTokens < 0 {
		return 0, malformed("CountTokens response without a valid inputTokens")
	}
	return *v.InputTokens, nil
}
