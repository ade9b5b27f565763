package openai

import (
	"encoding/base64"
	"encoding/binary"
	"math"

	json "github.com/go-json-experiment/json/v1"
)

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

// EncodeBase64 rewrites float-array vectors as OpenAI's base64 form
// (little-endian float32s) for clients that asked for
// encoding_format=base64 from a provider that only returns floats. Vectors
// already in base64 are left alone.
func (r *EmbeddingResponse) EncodeBase64() error {
	for i := range r.Data {
		raw := r.Data[i].Embedding
		if len(raw) == 0 || raw[0] != '[' {
			continue
		}
		var floats []float64
		if err := json.Unmarshal(raw, &floats); err != nil {
			return err
		}
		buf := make([]byte, 4*len(floats))
		for j, f := range floats {
			binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(float32(f)))
		}
		enc, _ := json.Marshal(base64.StdEncoding.EncodeToString(buf))
		r.Data[i].Embedding = enc
	}
	return nil
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
