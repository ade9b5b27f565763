package server

import (
	"io"
	"net/http"

	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/sse"
	"tollgate.dev/tollgate/dataplane/translate"
)

// relay is an upstream stream on its way to the client: translated chunk
// by chunk into the client's dialect, or, when the provider speaks that
// dialect already, forwarded event by event.
type relay interface {
	// next reads the next unit from upstream: io.EOF at a clean end,
	// otherwise errors as translate.ChunkReader's.
	next() error
	// start writes the response headers.
	start(w http.ResponseWriter)
	// write sends the unit last read to the client.
	write() error
	// end finishes the stream, with an in-stream error when err is not nil.
	end(err *openai.APIError)
	// usage is the usage upstream reported, nil if none.
	usage() *openai.Usage
}

// relayFor picks the native relay when the translator can forward the
// provider's own events to this client (same dialect, nothing to restore),
// else the translating one.
func (s *Server) relayFor(rq *request, tr translate.Translator, body io.Reader, target translate.Target) relay {
	if ns, ok := tr.(translate.NativeStreamer); ok && ns.Dialect() == rq.in.dialect() && rq.verdict.Restore == nil {
		return &eventRelay{er: ns.ChatStreamNative(body, target, rq.meta)}
	}
	return &chunkRelay{cr: tr.ChatStream(body, target, rq.meta), rq: rq}
}

// chunkRelay translates: upstream chunks in the canonical form, written in
// the client's dialect by its inbound, with redacted values restored.
type chunkRelay struct {
	cr  translate.ChunkReader
	rq  *request
	out streamOut
	c   *openai.ChatChunk
	u   *openai.Usage
}

func (r *chunkRelay) next() error {
	c, err := r.cr.Next()
	if err != nil {
		return err
	}
	r.c = c
	if c.Usage != nil {
		r.u = c.Usage // before the writer drops it for clients that did not ask
	}
	return nil
}

func (r *chunkRelay) start(w http.ResponseWriter) {
	r.out = r.rq.in.startStream(w, r.rq.meta, r.rq.req.WantsUsageChunk())
}

func (r *chunkRelay) write() error {
	if r.rq.verdict.Restore != nil {
		restoreChunk(r.c, r.rq.verdict)
	}
	return r.out.chunk(r.c)
}

func (r *chunkRelay) end(err *openai.APIError) {
	if err != nil {
		r.out.end(err)
		return
	}
	r.out.end(nil)
}

func (r *chunkRelay) usage() *openai.Usage { return r.u }

// eventRelay forwards the provider's events as they came (envelope
// replaced by the translator); the stream's own end marker was forwarded
// with the last event, so a clean end writes nothing more.
type eventRelay struct {
	er   translate.EventReader
	sw   *sse.Writer
	name string
	data []byte
}

func (r *eventRelay) next() error {
	name, data, err := r.er.Next()
	if err != nil {
		return err
	}
	r.name, r.data = name, data
	return nil
}

func (r *eventRelay) start(w http.ResponseWriter) {
	startSSE(w)
	r.sw = sse.NewWriter(w)
}

func (r *eventRelay) write() error { return r.sw.Event(r.name, r.data) }

func (r *eventRelay) end(err *openai.APIError) {
	if err != nil {
		name, data := r.er.ErrorEvent(err)
		_ = r.sw.Event(name, data)
	}
}

func (r *eventRelay) usage() *openai.Usage { return r.er.Usage() }
