// Package upstream is a lean fake LLM provider for load tests and Go
// benchmarks. Unlike test/fakeprovider (which parses every dialect, records
// every request and scripts faults), it answers from precomputed bytes so
// that it is never the bottleneck of a measurement: the body is read and
// discarded, the dialect is chosen by path and streaming by a byte search.
//
// It speaks the OpenAI Chat Completions and Anthropic Messages wire formats,
// whole or streamed in a chosen number of chunks. A path prefix selects a
// profile, so one server can serve fast and slow streams at once:
//
//	/u/<chunks>/<interval>/v1/chat/completions   e.g. /u/50/20ms/v1/chat/completions
//
// Without a prefix a stream has DefaultChunks chunks and no delay.
// RequestBody and MessagesRequestBody are the client requests the harness
// sends in each dialect.
package upstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultChunks is the number of content chunks of a stream without a
// profile prefix.
const DefaultChunks = 50

// Dialect is a provider wire format.
type Dialect uint8

// The dialects the upstream speaks.
const (
	OpenAI Dialect = iota
	Anthropic
)

// DialectOf picks the wire format from a request path.
func DialectOf(path string) Dialect {
	if strings.HasSuffix(path, "/messages") {
		return Anthropic
	}
	return OpenAI
}

// Profile is a stream shape: how many content chunks, and the pause
// between consecutive events.
type Profile struct {
	Chunks   int
	Interval time.Duration
}

// ParseProfile reads an optional "/u/<chunks>/<interval>" prefix and returns
// the profile and the rest of the path.
func ParseProfile(path string) (Profile, string) {
	p := Profile{Chunks: DefaultChunks}
	if !strings.HasPrefix(path, "/u/") {
		return p, path
	}
	parts := strings.SplitN(path[3:], "/", 3)
	if len(parts) < 3 {
		return p, path
	}
	if n, err := strconv.Atoi(parts[0]); err == nil && n > 0 {
		p.Chunks = n
	}
	if d, err := time.ParseDuration(parts[1]); err == nil {
		p.Interval = d
	}
	return p, "/" + parts[2]
}

// PathPrefix is the path prefix selecting profile p ("" for the default).
func (p Profile) PathPrefix() string {
	if p.Chunks == DefaultChunks && p.Interval == 0 {
		return ""
	}
	return fmt.Sprintf("/u/%d/%s", p.Chunks, p.Interval)
}

// Text of one content chunk: a short word, like one or two real tokens.
func chunkText(i int) string { return "tok" + strconv.Itoa(i) + " " }

// replyText is the whole answer of a non-streaming response.
var replyText = strings.Repeat("The quick brown fox jumps over the lazy dog. ", 8)

// Response returns the non-streaming answer body of a dialect.
func Response(d Dialect) []byte {
	var v any
	switch d {
	case Anthropic:
		v = map[string]any{
			"id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-bench",
			"content":     []any{map[string]any{"type": "text", "text": replyText}},
			"stop_reason": "end_turn", "stop_sequence": nil,
			"usage": map[string]any{"input_tokens": 120, "output_tokens": 80, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
		}
	default:
		v = map[string]any{
			"id": "chatcmpl-bench", "object": "chat.completion", "created": 1767225600, "model": "gpt-bench",
			"system_fingerprint": "fp_bench",
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": replyText}}},
			"usage": map[string]any{"prompt_tokens": 120, "completion_tokens": 80, "total_tokens": 200},
		}
	}
	b, _ := json.Marshal(v)
	return b
}

// Events returns the SSE events (each "data: ...\n\n", with "event:" lines
// for Anthropic) of a stream with n content chunks. usage adds OpenAI's
// usage chunk (Anthropic always reports usage).
func Events(d Dialect, n int, usage bool) [][]byte {
	var out [][]byte
	add := func(typ string, v any) {
		b, _ := json.Marshal(v)
		var e []byte
		if typ != "" {
			e = append(e, "event: "+typ+"\n"...)
		}
		e = append(e, "data: "...)
		e = append(e, b...)
		e = append(e, "\n\n"...)
		out = append(out, e)
	}
	switch d {
	case Anthropic:
		add("message_start", map[string]any{"type": "message_start", "message": map[string]any{
			"id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-bench", "content": []any{},
			"stop_reason": nil, "stop_sequence": nil, "usage": map[string]any{"input_tokens": 120, "output_tokens": 1}}})
		add("content_block_start", map[string]any{"type": "content_block_start", "index": 0,
			"content_block": map[string]any{"type": "text", "text": ""}})
		for i := range n {
			add("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
				"delta": map[string]any{"type": "text_delta", "text": chunkText(i)}})
		}
		add("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
		add("message_delta", map[string]any{"type": "message_delta",
			"delta": map[string]any{"stop_reason": "end_turn", "stop_sequence": nil}, "usage": map[string]any{"output_tokens": n}})
		add("message_stop", map[string]any{"type": "message_stop"})
	default:
		base := func(delta map[string]any, finish any) map[string]any {
			return map[string]any{"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1767225600,
				"model": "gpt-bench", "system_fingerprint": "fp_bench",
				"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
		}
		for i := range n {
			delta := map[string]any{"content": chunkText(i)}
			if i == 0 {
				delta["role"] = "assistant"
			}
			add("", base(delta, nil))
		}
		add("", base(map[string]any{}, "stop"))
		if usage {
			add("", map[string]any{"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1767225600,
				"model": "gpt-bench", "choices": []any{},
				"usage": map[string]any{"prompt_tokens": 120, "completion_tokens": n, "total_tokens": 120 + n}})
		}
		out = append(out, []byte("data: [DONE]\n\n"))
	}
	return out
}

// WantsStream reports whether a request body asks for a stream.
func WantsStream(body []byte) bool {
	return bytes.Contains(body, []byte(`"stream":true`)) || bytes.Contains(body, []byte(`"stream": true`))
}

// wantsUsage reports whether an OpenAI request body asks for a usage chunk.
func wantsUsage(body []byte) bool {
	return bytes.Contains(body, []byte(`"include_usage":true`)) || bytes.Contains(body, []byte(`"include_usage": true`))
}

// payloads caches precomputed bodies by shape.
type payloads struct {
	mu     sync.Mutex
	whole  [2][]byte
	events map[streamKey][][]byte
	joined map[streamKey][]byte
}

type streamKey struct {
	d     Dialect
	n     int
	usage bool
}

var cache = &payloads{events: map[streamKey][][]byte{}, joined: map[streamKey][]byte{}}

func (p *payloads) get(k streamKey) ([][]byte, []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ev, ok := p.events[k]
	if !ok {
		ev = Events(k.d, k.n, k.usage)
		p.events[k] = ev
		p.joined[k] = bytes.Join(ev, nil)
	}
	return ev, p.joined[k]
}

func (p *payloads) response(d Dialect) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.whole[d] == nil {
		p.whole[d] = Response(d)
	}
	return p.whole[d]
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// readBody reads r into a pooled buffer; put it back with bufPool.Put.
func readBody(r io.Reader) (*[]byte, error) {
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			*bp = b
			return bp, nil
		}
		if err != nil {
			*bp = b
			return bp, err
		}
	}
}

// Handler is the upstream HTTP handler.
type Handler struct{}

// ServeHTTP answers any POST under .../chat/completions or .../messages.
func (Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bp, err := readBody(r.Body)
	defer bufPool.Put(bp)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	prof, path := ParseProfile(r.URL.Path)
	d := DialectOf(path)
	h := w.Header()
	if !WantsStream(*bp) {
		b := cache.response(d)
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{strconv.Itoa(len(b))}
		_, _ = w.Write(b)
		return
	}
	events, _ := cache.get(streamKey{d, prof.Chunks, d == OpenAI && wantsUsage(*bp)})
	h["Content-Type"] = []string{"text/event-stream"}
	h["Cache-Control"] = []string{"no-cache"}
	f, _ := w.(http.Flusher)
	for i, e := range events {
		if i > 0 && prof.Interval > 0 {
			select {
			case <-time.After(prof.Interval):
			case <-r.Context().Done():
				return
			}
		}
		if _, err := w.Write(e); err != nil {
			return
		}
		if f != nil && (prof.Interval > 0 || i == 0) {
			f.Flush()
		}
	}
}

// Transport is an http.RoundTripper that answers from memory, for Go
// benchmarks that should measure only the gateway's own work: no sockets,
// no upstream goroutines. Streams come back whole in one body (the
// chunking is left to the gateway's readers).
type Transport struct{}

// RoundTrip implements http.RoundTripper.
func (Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		bp, err := readBody(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		defer bufPool.Put(bp)
		body = *bp
	}
	prof, path := ParseProfile(r.URL.Path)
	d := DialectOf(path)
	resp := &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Request: r}
	var b []byte
	if WantsStream(body) {
		_, b = cache.get(streamKey{d, prof.Chunks, d == OpenAI && wantsUsage(body)})
		resp.Header["Content-Type"] = []string{"text/event-stream"}
		resp.ContentLength = -1
	} else {
		b = cache.response(d)
		resp.Header["Content-Type"] = []string{"application/json"}
		resp.ContentLength = int64(len(b))
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// RequestBody is the OpenAI chat request that the load harness and the Go
// benchmarks send: a system prompt and a user turn of about 1 KiB, like a
// short RAG-free chat turn; streams ask for the usage chunk.
func RequestBody(model string, stream bool) []byte {
	v := map[string]any{
		"model": model,
		"messages": []any{
			map[string]any{"role": "system", "content": "You are a concise assistant for an internal engineering team. Answer in plain English."},
			map[string]any{"role": "user", "content": strings.Repeat("Summarise the trade-offs of connection pooling in HTTP proxies. ", 14)},
		},
		"max_tokens":  256,
		"temperature": 0.2,
	}
	if stream {
		// Usage asked for, as SDKs commonly do; it also keeps the upstream
		// stream identical whether or not the gateway is in between (the
		// gateway always asks upstream for usage).
		v["stream"] = true
		v["stream_options"] = map[string]any{"include_usage": true}
	}
	b, _ := json.Marshal(v)
	return b
}

// MessagesRequestBody is the Anthropic Messages twin of RequestBody, as the
// Anthropic SDK sends it to POST /v1/messages: the same system prompt and
// user turn (about 1 KiB), max_tokens and temperature.
func MessagesRequestBody(model string, stream bool) []byte {
	v := map[string]any{
		"model":       model,
		"max_tokens":  256,
		"temperature": 0.2,
		"system":      "You are a concise assistant for an internal engineering team. Answer in plain English.",
		"messages": []any{
			map[string]any{"role": "user", "content": strings.Repeat("Summarise the trade-offs of connection pooling in HTTP proxies. ", 14)},
		},
	}
	if stream {
		v["stream"] = true
	}
	b, _ := json.Marshal(v)
	return b
}
