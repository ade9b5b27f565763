package openai

import "encoding/json"

// EmbeddingRequest is a POST /v1/embeddings body. Input is kept raw: it may
// be a string, an array of strings, or arrays of token ids.
type EmbeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format,omitempty"`
	Dimensions     *int            `json:"dimensions,omitempty"`
	User           string          `json:"user,omitempty"`
}

// Inputs returns Input as strings when it is a string or an array of
// strings; ok is false for token-id inputs.
func (r *EmbeddingRequest) Inputs() (in []string, ok bool) {
	var one string
	if json.Unmarshal(r.Input, &one) == nil {
		return []string{one}, true
	}
	if json.Unmarshal(r.Input, &in) == nil {
		return in, true
	}
	return nil, false
}

// EmbeddingResponse is the /v1/embeddings answer.
type EmbeddingResponse struct {
	Object string      `json:"object"` // "list"
	Data   []Embedding `json:"data"`
	Model  string      `json:"model"`
	Usage  *Usage      `json:"usage,omitempty"`
}

// Embedding is one vector. Embedding holds []float64 or, with
// encoding_format=base64, a base64 string.
type Embedding struct {
	Object    string          `json:"object"` // "embedding"
	Index     int             `json:"index"`
	Embedding json.RawMessage `json:"embedding"`
}

// ModelList is the /v1/models answer.
type ModelList struct {
	Object string        `json:"object"` // "list"
	Data   []ModelObject `json:"data"`
}

// ModelObject is one entry of /v1/models.
type ModelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"` // "model"
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}
