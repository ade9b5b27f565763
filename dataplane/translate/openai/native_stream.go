package openai

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"

	json "github.com/go-json-experiment/json/v1"

	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

var _ translate.NativeStreamer = (*Translator)(nil)

// ChatStreamNative implements translate.NativeStreamer: an OpenAI client's
// stream from an OpenAI-dialect upstream. It runs the same reader as
// ChatStream, so the stream keeps every guarantee of the ChunkReader
// contract, but a chunk the reader passes unchanged (a pristine one: the
// common case with OpenAI itself) goes out as the upstream's own bytes with
// the envelope replaced, keeping what the canonical chunk does not model
// (annotations, audio deltas, obfuscation padding...), and without being
// encoded again. Chunks the reader had to normalise, and those it adds
// (a missing finish_reason, the usage chunk), are written from their
// canonical form. The usage chunk goes out only when the client asked for
// it (meta.IncludeUsage); it always counts for metering.
func (t *Translator) ChatStreamNative(body io.Reader, _ translate.Target, meta translate.StreamMeta) translate.EventReader {
	return &nativeStream{r: newStreamReader(body, t.flavor, meta), envelope: envelopeValues(meta)}
}

type nativeStream struct {
	r    *streamReader
	buf  []byte
	done bool
	// envelope holds the gateway's id, object, created and model values,
	// encoded once for the whole stream.
	envelope [4][]byte
}

// envelopeValues encodes meta as the JSON values spliceChunk writes.
func envelopeValues(meta translate.StreamMeta) [4][]byte {
	return [4][]byte{
		translate.Quote(meta.ID),
		[]byte(`"` + openai.ObjectChatCompletionChunk + `"`),
		strconv.AppendInt(nil, meta.Created, 10),
		translate.Quote(meta.Model),
	}
}

// Next implements translate.EventReader.
func (n *nativeStream) Next() (string, []byte, error) {
	for !n.done {
		c, raw, err := n.r.next()
		if err == io.EOF {
			n.done = true
			return "", doneMarker, nil
		}
		if err != nil {
			return "", nil, err
		}
		if raw != nil {
			if b, ok := spliceChunk(n.buf[:0], raw, &n.r.wire, &n.envelope); ok {
				n.buf = b
				return "", b, nil
			}
		}
		if !c.ForClient(n.r.meta.IncludeUsage) {
			continue
		}
		if b, ok := openai.AppendChunk(n.buf[:0], c); ok {
			n.buf = b
			return "", b, nil
		}
		b, err := json.Marshal(c)
		if err != nil {
			return "", nil, err
		}
		return "", b, nil
	}
	return "", nil, io.EOF
}

// Usage implements translate.EventReader.
func (n *nativeStream) Usage() *openai.Usage { return n.r.usage }

// ErrorEvent implements translate.EventReader: OpenAI's in-stream error,
// a data event holding an error object.
func (n *nativeStream) ErrorEvent(err error) (string, []byte) {
	var aerr *openai.APIError
	if !errors.As(err, &aerr) {
		aerr = openai.NewError(http.StatusBadGateway, openai.TypeServer, "stream_error", "", "the upstream stream failed")
	}
	return "", aerr.MarshalBody()
}

// chunkEnvelope are the chunk keys spliceChunk replaces, in the order of
// wireChunk.envelope.
var chunkEnvelope = []string{"id", "object", "created", "model"}

func envelopeIndex(key []byte) int {
	switch string(key) {
	case "id":
		return 0
	case "object":
		return 1
	case "created":
		return 2
	}
	return 3
}

// spliceChunk appends the upstream event raw with the gateway's envelope
// values (env, see envelopeValues) in place of the upstream's (those it
// lacks go first) and every other byte as it came, from where fastChunk
// found the envelope (w); false when an envelope key came twice or in
// other case.
func spliceChunk(dst, raw []byte, w *wireChunk, env *[4][]byte) ([]byte, bool) {
	if w.envelopeRepeated {
		return nil, false
	}
	open := bytes.IndexByte(raw, '{') + 1 // fastChunk accepted an object
	dst = append(dst, raw[:open]...)
	for i, e := range w.envelope {
		if e.end == 0 {
			dst = append(dst, '"')
			dst = append(dst, chunkEnvelope[i]...)
			dst = append(dst, '"', ':')
			dst = append(dst, env[i]...)
			dst = append(dst, ',')
		}
	}
	at := open
	for {
		next := -1 // the envelope value that comes next in raw
		for i, e := range w.envelope {
			if e.end != 0 && e.start >= at && (next < 0 || e.start < w.envelope[next].start) {
				next = i
			}
		}
		if next < 0 {
			break
		}
		dst = append(dst, raw[at:w.envelope[next].start]...)
		dst = append(dst, env[next]...)
		at = w.envelope[next].end
	}
	return append(dst, raw[at:]...), true
}
