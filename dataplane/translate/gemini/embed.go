package gemini

import (
	"bytes"
	"context"
	"net/http"
	"strings"

	json "github.com/go-json-experiment/json/v1"
	wire "tollgate.dev/tollgate/dataplane/schema/gemini"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// EmbeddingRequest builds POST
// {BaseURL}/v1beta/models/{model}:batchEmbedContents with one request per
// input string; dimensions maps to outputDimensionality. Token-id inputs
// cannot be sent to Gemini and are a client error.
func (Translator) EmbeddingRequest(ctx context.Context, req *openai.EmbeddingRequest, t translate.Target) (*http.Request, error) {
	body, err := BuildEmbeddingRequest(req, t.Model)
	if err != nil {
		return nil, err
	}
	hr, err := newRequest(ctx, t, "/v1beta/models/"+modelPath(t.Model)+":batchEmbedContents", body)
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Accept", "application/json")
	return hr, nil
}

// BuildEmbeddingRequest maps an OpenAI embeddings request to a
// BatchEmbedContentsRequest for model.
func BuildEmbeddingRequest(req *openai.EmbeddingRequest, model string) (*wire.BatchEmbedContentsRequest, error) {
	inputs, ok := req.Inputs()
	if !ok {
		return nil, badRequest("input", "input must be a string or an array of strings for Gemini embedding models")
	}
	if len(inputs) == 0 {
		return nil, badRequest("input", "input must not be empty")
	}
	name := "models/" + strings.TrimPrefix(model, "models/")
	out := &wire.BatchEmbedContentsRequest{Requests: make([]wire.EmbedContentRequest, len(inputs))}
	for i, in := range inputs {
		out.Requests[i] = wire.EmbedContentRequest{
			Model:                name,
			Content:              wire.Content{Parts: []wire.Part{{Text: in}}},
			OutputDimensionality: req.Dimensions,
		}
	}
	return out, nil
}

// EmbeddingResponse maps a batchEmbedContents answer to an OpenAI list,
// passing each vector through without re-encoding the floats. Gemini does
// not report token usage for embeddings, so Usage is nil.
func (Translator) EmbeddingResponse(body []byte, t translate.Target) (*openai.EmbeddingResponse, error) {
	var r struct {
		Embeddings []struct {
			Values json.RawMessage `json:"values"`
		} `json:"embeddings"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, malformed("embeddings response")
	}
	out := &openai.EmbeddingResponse{Object: "list", Model: t.Model, Data: make([]openai.Embedding, len(r.Embeddings))}
	for i, e := range r.Embeddings {
		v := bytes.TrimSpace(e.Values)
		if len(v) == 0 || v[0] != '[' {
			return nil, malformed("embeddings response: values is not an array")
		}
		out.Data[i] = openai.Embedding{Object: "embedding", Index: i, Embedding: v}
	}
	return out, nil
}
