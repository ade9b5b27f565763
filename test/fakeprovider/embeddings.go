package fakeprovider

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"strings"
)

// DefaultEmbeddingDims is the length of fake embedding vectors when the
// request does not ask for a dimension.
const DefaultEmbeddingDims = 8

// Embedding returns the deterministic unit vector the fake provider answers
// for text embedded by model, so tests can assert exact vectors. Values are
// rounded to 6 decimals so they survive JSON round trips unchanged.
func Embedding(model, text string, dims int) []float64 {
	if dims <= 0 {
		dims = DefaultEmbeddingDims
	}
	h := fnv.New64a()
	h.Write([]byte(model))
	h.Write([]byte{0})
	h.Write([]byte(text))
	x := h.Sum64() | 1
	v := make([]float64, dims)
	var norm float64
	for i := range v {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		v[i] = float64(x>>11)/float64(1<<53)*2 - 1
		norm += v[i] * v[i]
	}
	norm = math.Sqrt(norm)
	for i := range v {
		v[i] = math.Round(v[i]/norm*1e6) / 1e6
	}
	return v
}

// embedTokens is the fake token count of one input.
func embedTokens(text string) int { return max(len(text)/4, 1) }

// embedder is implemented by dialects with an embeddings endpoint.
type embedder interface {
	embed(w http.ResponseWriter, r *http.Request, body []byte)
}

// isEmbedPath reports whether a path is an embeddings endpoint of any
// dialect.
func isEmbedPath(p string) bool {
	return strings.HasSuffix(p, "/embeddings") || strings.HasSuffix(p, "/api/embed") ||
		strings.Contains(p, ":embedContent") || strings.Contains(p, ":batchEmbedContents")
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// ---- OpenAI /v1/embeddings and Azure deployments/<d>/embeddings ----

// openaiInputs decodes the input member: a string, an array of strings, an
// array of token ids or an array of token-id arrays (token ids are embedded
// as their decimal text).
func openaiInputs(raw json.RawMessage) ([]string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}, nil
	}
	var ss []string
	if json.Unmarshal(raw, &ss) == nil && len(ss) > 0 {
		return ss, nil
	}
	var ids []int
	if json.Unmarshal(raw, &ids) == nil && len(ids) > 0 {
		return []string{fmt.Sprint(ids)}, nil
	}
	var idss [][]int
	if json.Unmarshal(raw, &idss) == nil && len(idss) > 0 {
		out := make([]string, len(idss))
		for i, ids := range idss {
			out[i] = fmt.Sprint(ids)
		}
		return out, nil
	}
	return nil, errors.New("'input' must be a non-empty string, array of strings, or array of token arrays")
}

func (d openaiDialect) embed(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		Model          string          `json:"model"`
		Input          json.RawMessage `json:"input"`
		EncodingFormat string          `json:"encoding_format"`
		Dimensions     int             `json:"dimensions"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		d.writeError(w, http.StatusBadRequest, "We could not parse the JSON body of your request.")
		return
	}
	model := req.Model
	if dep := deploymentOf(r.URL.Path); dep != "" {
		model = dep
	}
	if model == "" {
		d.writeError(w, http.StatusBadRequest, "you must provide a model parameter")
		return
	}
	inputs, err := openaiInputs(req.Input)
	if err != nil {
		d.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64" {
		d.writeError(w, http.StatusBadRequest, "'encoding_format' must be 'float' or 'base64'")
		return
	}
	data := make([]any, len(inputs))
	tokens := 0
	for i, in := range inputs {
		v := Embedding(model, in, req.Dimensions)
		var emb any = v
		if req.EncodingFormat == "base64" {
			b := make([]byte, 4*len(v))
			for j, f := range v {
				binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(float32(f)))
			}
			emb = base64.StdEncoding.EncodeToString(b)
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": emb}
		tokens += embedTokens(in)
	}
	writeJSON(w, map[string]any{"object": "list", "data": data, "model": model,
		"usage": map[string]any{"prompt_tokens": tokens, "total_tokens": tokens}})
}

// ---- Ollama /api/embed (and the legacy /api/embeddings) ----

func (d ollamaDialect) embed(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		Model      string          `json:"model"`
		Input      json.RawMessage `json:"input"`
		Prompt     *string         `json:"prompt"`
		Dimensions int             `json:"dimensions"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		d.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Model == "" {
		d.writeError(w, http.StatusBadRequest, "model is required")
		return
	}
	if strings.HasSuffix(r.URL.Path, "/api/embeddings") { // legacy: one prompt
		if req.Prompt == nil {
			d.writeError(w, http.StatusBadRequest, "prompt is required")
			return
		}
		writeJSON(w, map[string]any{"embedding": Embedding(req.Model, *req.Prompt, req.Dimensions)})
		return
	}
	var inputs []string
	var s string
	if json.Unmarshal(req.Input, &s) == nil {
		inputs = []string{s}
	} else if json.Unmarshal(req.Input, &inputs) != nil || len(inputs) == 0 {
		d.writeError(w, http.StatusBadRequest, "invalid input type")
		return
	}
	vecs := make([][]float64, len(inputs))
	tokens := 0
	for i, in := range inputs {
		vecs[i] = Embedding(req.Model, in, req.Dimensions)
		tokens += embedTokens(in)
	}
	writeJSON(w, map[string]any{"model": req.Model, "embeddings": vecs, "total_duration": 1000, "load_duration": 10, "prompt_eval_count": tokens})
}

// ---- Gemini :embedContent and :batchEmbedContents ----

type geminiEmbedRequest struct {
	Model   string `json:"model"`
	Content struct {
		Parts []struct {
			Text string `json:"text"`
		} `json:"parts"`
	} `json:"content"`
	TaskType             string `json:"taskType"`
	OutputDimensionality int    `json:"outputDimensionality"`
}

func (g geminiEmbedRequest) text() string {
	var b strings.Builder
	for _, p := range g.Content.Parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

func (d geminiDialect) embed(w http.ResponseWriter, r *http.Request, body []byte) {
	model := strings.TrimPrefix(r.URL.Path, "/v1beta/models/")
	model, op, _ := strings.Cut(model, ":")
	if op == "embedContent" {
		var req geminiEmbedRequest
		if err := json.Unmarshal(body, &req); err != nil {
			d.writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if len(req.Content.Parts) == 0 {
			d.writeError(w, http.StatusBadRequest, "* EmbedContentRequest.content: contents is not specified")
			return
		}
		writeJSON(w, map[string]any{"embedding": map[string]any{"values": Embedding(model, req.text(), req.OutputDimensionality)}})
		return
	}
	var req struct {
		Requests []geminiEmbedRequest `json:"requests"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		d.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(req.Requests) == 0 {
		d.writeError(w, http.StatusBadRequest, "* BatchEmbedContentsRequest.requests: requests is not specified")
		return
	}
	embs := make([]any, len(req.Requests))
	for i, rq := range req.Requests {
		if rq.Model != "models/"+model {
			d.writeError(w, http.StatusBadRequest, fmt.Sprintf("* BatchEmbedContentsRequest.requests[%d].model: model %q does not match the request URL's models/%s", i, rq.Model, model))
			return
		}
		if len(rq.Content.Parts) == 0 {
			d.writeError(w, http.StatusBadRequest, fmt.Sprintf("* BatchEmbedContentsRequest.requests[%d].content: contents is not specified", i))
			return
		}
		embs[i] = map[string]any{"values": Embedding(model, rq.text(), rq.OutputDimensionality)}
	}
	writeJSON(w, map[string]any{"embeddings": embs})
}
