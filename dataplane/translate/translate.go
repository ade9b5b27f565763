// Package translate defines the narrow contract every provider translator
// implements. The canonical form is the OpenAI Chat Completions schema
// (package schema/openai): a translator maps a canonical request to its
// provider's native HTTP request, and the provider's native answers (whole
// bodies, streams, errors) back to canonical responses, chunks and errors.
//
// Translators are pure with respect to the network: they build requests and
// parse bytes; the data-plane proxy sends and receives.
package translate

import (
	"context"
	"io"
	"net/http"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
)

// Target is one resolved upstream for one attempt.
type Target struct {
	Provider *routetable.Provider
	// Model is the upstream model name (the route target's model).
	Model string
	// Media loads images given by http(s) URL for providers that need bytes
	// inline. Nil means only data: URLs can be inlined.
	Media MediaFetcher
}

// StreamMeta is what a stream translator needs to produce OpenAI chunks that
// look like one coherent stream.
type StreamMeta struct {
	// ID is the stable chat.completion.chunk id for every chunk.
	ID string
	// Created is the unix time stamped on every chunk.
	Created int64
	// Model is the model name reported to the client.
	Model string
	// IncludeUsage is set when the client asked for a usage chunk
	// (stream_options.include_usage); a native stream sends it only then.
	IncludeUsage bool
}

// Translator maps canonical requests to one provider's native API and back.
type Translator interface {
	// ChatRequest builds the upstream HTTP request (URL, headers incl.
	// credentials, body) for req sent to t. req.Stream selects the
	// streaming endpoint or parameter. Streaming requests must ask upstream
	// for usage whenever the provider supports it, whatever the client asked.
	// An error that is the client's fault is an *openai.APIError with
	// status 400.
	ChatRequest(ctx context.Context, req *openai.ChatRequest, t Target) (*http.Request, error)
	// ChatResponse parses a 2xx non-streaming upstream body.
	ChatResponse(body []byte, t Target, meta StreamMeta) (*openai.ChatResponse, error)
	// ChatStream translates a 2xx streaming upstream body, lazily, event by
	// event: nothing is read from body before Next is called.
	ChatStream(body io.Reader, t Target, meta StreamMeta) ChunkReader
	// Error maps a non-2xx upstream answer to an OpenAI error with the right
	// status, keeping the upstream message; 429 keeps its Retry-After.
	Error(status int, header http.Header, body []byte) *openai.APIError
}

// ChunkReader yields translated chunks one at a time.
//
// Contract, for every implementation:
//   - every chunk carries meta.ID, meta.Created, meta.Model and object
//     "chat.completion.chunk";
//   - the first chunk of each choice carries delta.role "assistant";
//   - a tool call's id, type and name appear in its first delta only, and
//     argument fragments follow with the same index;
//   - exactly one finish_reason per choice;
//   - if upstream reported usage, it is returned last, as a chunk with empty
//     choices and Usage set (the proxy strips it when the client did not ask);
//   - an error event from upstream mid-stream is returned as *openai.APIError;
//   - io.EOF after the last chunk; io.ErrUnexpectedEOF if upstream ended
//     before its end-of-stream marker.
type ChunkReader interface {
	Next() (*openai.ChatChunk, error)
}

// NativeResponder is implemented by translators whose provider speaks a
// client dialect (the OpenAI family speaks OpenAI's, Anthropic its own).
// ChatResponseBytes returns a non-streaming answer as a client of that
// dialect gets it, made from the provider's own bytes with only the
// envelope replaced (id, model), and its usage; ok is false when the
// answer needs the canonical path, and then the caller uses ChatResponse.
// Everything the canonical form does not model reaches the client.
type NativeResponder interface {
	Dialect() openai.Dialect
	ChatResponseBytes(body []byte, t Target, meta StreamMeta) (out []byte, usage *openai.Usage, ok bool)
}

// NativeStreamer is NativeResponder for streams: the provider's events
// reach a client of the same dialect as they came, envelope replaced.
type NativeStreamer interface {
	Dialect() openai.Dialect
	ChatStreamNative(body io.Reader, t Target, meta StreamMeta) EventReader
}

// EventReader yields a provider's stream events as the client gets them.
// Errors follow ChunkReader's contract: io.EOF after the last event, an
// *openai.APIError for an error the provider reported, io.ErrUnexpectedEOF
// when the stream ended before its end marker; the first error sticks.
type EventReader interface {
	// Next returns the next event to forward; name may be empty.
	Next() (name string, data []byte, err error)
	// Usage is the usage the provider reported so far, nil if none.
	Usage() *openai.Usage
	// ErrorEvent renders a failure after the stream started the way the
	// dialect reports one in-stream.
	ErrorEvent(err error) (name string, data []byte)
}

// Embedder is implemented by translators whose provider has embeddings.
type Embedder interface {
	EmbeddingRequest(ctx context.Context, req *openai.EmbeddingRequest, t Target) (*http.Request, error)
	EmbeddingResponse(body []byte, t Target) (*openai.EmbeddingResponse, error)
}

// MediaFetcher loads an image given by URL, bounded in size and time.
type MediaFetcher interface {
	Fetch(ctx context.Context, url string) (mediaType string, data []byte, err error)
}
