// Package fakeprovider is a loopback LLM provider for tests, benchmarks and
// `make run`. One server speaks every native wire format Tollgate
// translates to (OpenAI, Azure OpenAI, Anthropic, Gemini, Ollama, Bedrock
// Converse), parsed here with its own minimal decoding so tests do not
// check the translators against themselves.
//
// The "model" is deterministic so agent loops can be asserted:
//   - with tools declared and the last message from the user, it calls the
//     first tool with {"input": <user text>} (every tool, in parallel, when
//     the text contains "parallel");
//   - after tool results, it answers "tool said: <results joined by ' | '>";
//   - otherwise it answers "echo: <last user text>".
//
// Faults are scriptable (fail the first N requests, 429 with Retry-After,
// delay before the first byte, die mid-stream, an error event mid-stream, a
// length-truncated answer) and every request is recorded for assertions.
//
// Embeddings endpoints (OpenAI and Azure /embeddings, Ollama /api/embed,
// Gemini :embedContent and :batchEmbedContents) answer the deterministic
// vectors of Embedding.
//
// Token counting endpoints (Anthropic /v1/messages/count_tokens, Gemini
// :countTokens, Bedrock /count-tokens) answer the prompt tokens the usage of
// an answer to the same prompt reports.
package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Behavior scripts faults. The zero value is a healthy provider.
type Behavior struct {
	// FailFirst requests are answered with FailStatus (default 500).
	FailFirst  int
	FailStatus int
	// FailEvery n-th request fails (0 = never); with FailRatio it is random.
	FailRatio float64
	// RetryAfter is sent with 429 answers (seconds).
	RetryAfter int
	// FirstByteDelay waits before the response headers.
	FirstByteDelay time.Duration
	// DieAfterChunks closes the connection after this many stream events
	// (0 = never).
	DieAfterChunks int
	// Chunks splits a streamed text answer into this many pieces (default 4).
	Chunks int
	// ChunkDelay waits between stream events.
	ChunkDelay time.Duration
	// Reply overrides the text answer.
	Reply string
	// Thinking is sent as the model's reasoning before the answer: Ollama
	// message.thinking, Anthropic thinking and Bedrock reasoningContent
	// blocks (signed "fake-signature"), a Gemini thought part; streamed
	// ahead of the answer, in events of their own.
	Thinking string
	// Truncated ends answers as cut by the output token limit (OpenAI
	// "length", Anthropic and Bedrock "max_tokens", Gemini "MAX_TOKENS",
	// Ollama done_reason "length").
	Truncated bool
	// StreamError replaces the end of a streamed answer, after its content,
	// with an in-stream error carrying this message (OpenAI error data
	// line, Anthropic error event, Bedrock exception frame, Ollama error
	// line; Gemini ignores it).
	StreamError string
}

// Recorded is one request as received.
type Recorded struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// Server is a running fake provider.
type Server struct {
	URL string
	srv *httptest.Server

	mu       sync.Mutex
	behavior Behavior
	requests []Recorded
	count    atomic.Int64
	rnd      uint64
}

// Start starts a fake provider on 127.0.0.1.
func Start(b Behavior) *Server {
	s := &Server{behavior: b, rnd: 0x9E3779B97F4A7C15}
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	return s
}

// StartOn starts a fake provider on a given listener (for `make run`).
func StartOn(l net.Listener, b Behavior) *Server {
	s := &Server{behavior: b, rnd: 0x9E3779B97F4A7C15}
	s.srv = httptest.NewUnstartedServer(s)
	s.srv.Listener.Close()
	s.srv.Listener = l
	s.srv.Start()
	s.URL = s.srv.URL
	return s
}

// Close stops the server and closes client connections.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// SetBehavior changes the script for subsequent requests.
func (s *Server) SetBehavior(b Behavior) {
	s.mu.Lock()
	s.behavior = b
	s.mu.Unlock()
}

// Requests returns what was received so far.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recorded(nil), s.requests...)
}

// Count is the number of requests received.
func (s *Server) Count() int { return int(s.count.Load()) }

// Reset forgets recorded requests.
func (s *Server) Reset() {
	s.mu.Lock()
	s.requests = nil
	s.mu.Unlock()
	s.count.Store(0)
}

func (s *Server) random() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rnd ^= s.rnd << 13
	s.rnd ^= s.rnd >> 7
	s.rnd ^= s.rnd << 17
	return float64(s.rnd>>11) / float64(1<<53)
}

// ServeHTTP dispatches on the native API paths.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := readAll(r)
	n := int(s.count.Add(1))
	s.mu.Lock()
	b := s.behavior
	s.requests = append(s.requests, Recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	s.mu.Unlock()

	if b.FirstByteDelay > 0 {
		select {
		case <-time.After(b.FirstByteDelay):
		case <-r.Context().Done():
			return
		}
	}
	fail := n <= b.FailFirst || (b.FailRatio > 0 && s.random() < b.FailRatio)
	d := dialectOf(r)
	if fail {
		status := b.FailStatus
		if status == 0 {
			status = http.StatusInternalServerError
		}
		if status == http.StatusTooManyRequests && b.RetryAfter > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(b.RetryAfter))
		}
		d.writeError(w, status, fmt.Sprintf("injected failure %d", status))
		return
	}
	if d == nil {
		http.Error(w, `{"error":{"message":"unknown path `+r.URL.Path+`","type":"invalid_request_error"}}`, http.StatusNotFound)
		return
	}
	if isEmbedPath(r.URL.Path) {
		if e, ok := d.(embedder); ok {
			e.embed(w, r, body)
			return
		}
		d.writeError(w, http.StatusNotFound, "this provider has no embeddings endpoint")
		return
	}
	if isCountPath(r.URL.Path) {
		if c, ok := d.(counter); ok {
			c.count(w, r, body)
			return
		}
		d.writeError(w, http.StatusNotFound, "this provider has no token counting endpoint")
		return
	}
	conv, stream, err := d.parse(r, body)
	if err != nil {
		d.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ans := answer(conv, b.Reply)
	ans.Thinking, ans.Truncated = b.Thinking, b.Truncated
	if !stream {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(d.response(conv, ans))
		return
	}
	chunks := b.Chunks
	if chunks <= 0 {
		chunks = 4
	}
	sw := &streamWriter{w: w, rc: http.NewResponseController(w), dieAfter: b.DieAfterChunks, delay: b.ChunkDelay, errMsg: b.StreamError}
	d.stream(sw, conv, ans, chunks)
}

// Conversation is the provider-neutral gist of a request.
type Conversation struct {
	Model       string
	LastUser    string
	ToolResults []string
	Tools       []string
	PromptChars int
}

// Answer is what the fake model replies.
type Answer struct {
	Text      string
	ToolCalls []ToolCall
	Prompt    int
	Output    int
	// Thinking and Truncated come from the Behavior.
	Thinking  string
	Truncated bool
}

// ToolCall is a call the fake model makes.
type ToolCall struct {
	ID   string
	Name string
	Args string // JSON object
}

func answer(c Conversation, reply string) Answer {
	a := Answer{Prompt: max(c.PromptChars/4, 1)}
	switch {
	case len(c.ToolResults) > 0:
		a.Text = "tool said: " + strings.Join(c.ToolResults, " | ")
	case len(c.Tools) > 0 && c.LastUser != "":
		args, _ := json.Marshal(map[string]string{"input": c.LastUser})
		tools := c.Tools[:1]
		if strings.Contains(c.LastUser, "parallel") {
			tools = c.Tools
		}
		for i, t := range tools {
			a.ToolCalls = append(a.ToolCalls, ToolCall{ID: fmt.Sprintf("call_%d_%s", i, t), Name: t, Args: string(args)})
		}
	case reply != "":
		a.Text = reply
	default:
		a.Text = "echo: " + c.LastUser
	}
	a.Output = max(len(a.Text)/4, 1)
	for _, tc := range a.ToolCalls {
		a.Output += len(tc.Args) / 4
	}
	return a
}

// split cuts s into n nearly equal pieces (at rune boundaries).
func split(s string, n int) []string {
	r := []rune(s)
	if n > len(r) {
		n = max(len(r), 1)
	}
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, string(r[i*len(r)/n:(i+1)*len(r)/n]))
	}
	return out
}

type streamWriter struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	n        int
	dieAfter int
	delay    time.Duration
	dead     bool
	// errMsg, if set, replaces the stream's end with an error event.
	errMsg string
}

// write sends one event's bytes; after dieAfter events it drops the
// connection without a proper end.
func (s *streamWriter) write(b []byte) {
	if s.dead {
		return
	}
	if s.dieAfter > 0 && s.n >= s.dieAfter {
		s.dead = true
		if hj, ok := s.w.(http.Hijacker); ok {
			_ = s.rc.Flush()
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
		panic(http.ErrAbortHandler)
	}
	if s.n > 0 && s.delay > 0 {
		time.Sleep(s.delay)
	}
	_, _ = s.w.Write(b)
	_ = s.rc.Flush()
	s.n++
}

func (s *streamWriter) sse(event string, v any) {
	b, _ := json.Marshal(v)
	var out []byte
	if event != "" {
		out = append(out, "event: "+event+"\n"...)
	}
	out = append(out, "data: "...)
	out = append(out, b...)
	out = append(out, "\n\n"...)
	s.write(out)
}

func readAll(r *http.Request) ([]byte, error) {
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return []byte(sb.String()), nil
}
