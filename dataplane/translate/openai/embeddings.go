package openai

import (
	"bytes"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// EmbeddingResponse parses a /v1/embeddings answer. Vectors (float arrays,
// or base64 strings with encoding_format=base64) are passed through as raw
// JSON, never decoded and re-encoded. The model is the target's (Azure
// reports the underlying model, not the deployment), object names are
// filled in when a compatible server leaves them out, and a 2xx error
// object is returned as *openai.APIError.
func (t *Translator) EmbeddingResponse(body []byte, tg translate.Target) (*openai.EmbeddingResponse, error) {
	var w struct {
		Data  []openai.Embedding `json:"data"`
		Model string             `json:"model"`
		Usage *openai.Usage      `json:"usage"`
		Error json.RawMessage    `json:"error"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, malformed(t.flavor, "embeddings response is not a list")
	}
	if w.Data == nil && hasValue(w.Error) {
		return nil, errorFromEvent(eventError(w.Error))
	}
	if w.Data == nil {
		return nil, malformed(t.flavor, "embeddings response has no data")
	}
	model := tg.Model
	if model == "" {
		model = w.Model
	}
	for i := range w.Data {
		e := &w.Data[i]
		v := bytes.TrimSpace(e.Embedding)
		if len(v) == 0 || (v[0] != '[' && v[0] != '"') {
			return nil, malformed(t.flavor, "embeddings response: embedding is neither an array nor a base64 string")
		}
		e.Embedding = v
		e.Object = "embedding"
	}
	if w.Usage != nil {
		fillTotal(w.Usage)
	}
	return &openai.EmbeddingResponse{Object: "list", Data: w.Data, Model: model, Usage: w.Usage}, nil
}
