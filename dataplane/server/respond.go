package server

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/sse"
	"tollgate.dev/tollgate/dataplane/translate"
	oaitr "tollgate.dev/tollgate/dataplane/translate/openai"
)

// openaiInbound is the OpenAI Chat Completions dialect.
type openaiInbound struct{}

func (openaiInbound) dialect() openai.Dialect { return openai.DialectOpenAI }

func (openaiInbound) parse(_ *http.Request, body []byte) (*openai.ChatRequest, *openai.APIError) {
	return oaitr.ParseChatRequest(body)
}

func (openaiInbound) writeError(w http.ResponseWriter, e *openai.APIError) { writeOpenAIError(w, e) }

func (openaiInbound) writeResponse(w http.ResponseWriter, resp *openai.ChatResponse) {
	writeJSON(w, http.StatusOK, resp)
}

func (openaiInbound) startStream(w http.ResponseWriter, _ translate.StreamMeta, includeUsage bool) streamOut {
	startSSE(w)
	return &openaiStream{sw: sse.NewWriter(w), includeUsage: includeUsage}
}

// startSSE writes the headers of an event stream and commits them.
func startSSE(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
}

type openaiStream struct {
	sw           *sse.Writer
	includeUsage bool
	// buf is the reused buffer openai.AppendChunk encodes every common chunk
	// into; jbuf and enc encode the others (json.Encoder writes what
	// json.Marshal returns, plus a newline), also without a fresh slice
	// per chunk.
	buf  []byte
	jbuf bytes.Buffer
	enc  *json.Encoder
}

func (o *openaiStream) chunk(c *openai.ChatChunk) error {
	if !c.ForClient(o.includeUsage) {
		return nil
	}
	if o.buf == nil {
		o.buf = make([]byte, 0, 256) // most chunks are 150-250 bytes; grows once for more
	}
	b, ok := openai.AppendChunk(o.buf[:0], c)
	o.buf = b[:0]
	if ok {
		return o.sw.Event("", b)
	}
	if o.enc == nil {
		o.enc = json.NewEncoder(&o.jbuf)
	}
	o.jbuf.Reset()
	if err := o.enc.Encode(c); err != nil {
		return err
	}
	b = o.jbuf.Bytes()
	return o.sw.Event("", b[:len(b)-1])
}

func (o *openaiStream) end(err error) {
	if err != nil {
		var aerr *openai.APIError
		if !errors.As(err, &aerr) {
			aerr = openai.NewError(http.StatusBadGateway, openai.TypeServer, "stream_error", "", err.Error())
		}
		_ = o.sw.Event("", aerr.MarshalBody())
		return
	}
	_ = o.sw.Done()
}

// writeOpenAIError writes e in OpenAI's error shape with its status and,
// for 429s, Retry-After.
func writeOpenAIError(w http.ResponseWriter, e *openai.APIError) {
	if e.RetryAfter > 0 {
		secs := int(e.RetryAfter.Seconds())
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	status := e.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(e.MarshalBody())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeOpenAIError(w, openai.NewError(http.StatusInternalServerError, openai.TypeServer, "internal_error", "", "could not encode response"))
		return
	}
	writeJSONBytes(w, status, b)
}

// writeJSONBytes writes an encoded JSON body with its length, so the
// answer goes out in one write without chunked encoding.
func writeJSONBytes(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
