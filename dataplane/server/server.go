// Package server is the data plane's HTTP front door: it authenticates the
// virtual key, parses and validates the request, applies policy (budgets,
// rate limits, sensitive data), asks the router for targets, drives the
// provider translators attempt by attempt with failover, and streams the
// translated answer back, flushing each event as soon as it exists.
package server

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"tollgate.dev/tollgate/dataplane/router"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// TranslatorFor returns the translator for a provider type.
type TranslatorFor func(routetable.ProviderType) (translate.Translator, bool)

// Meter enforces budgets and rate limits and accounts usage. The data plane
// works without one (nothing is metered), which is what unit tests of the
// proxy path use; production wires the metering package.
type Meter interface {
	// Admit is called before any upstream call; a non-nil error refuses the
	// request (e.g. 429 budget_exceeded). release must be called when the
	// request ends, with the tokens it used, so reservations are settled.
	Admit(key *routetable.Key, route *routetable.Route, estimatedTokens int) (release func(), err *openai.APIError)
	// Record accounts one finished request.
	Record(rec UsageRecord)
}

// UsageRecord is what one request consumed.
type UsageRecord struct {
	Key      *routetable.Key
	Route    *routetable.Route
	Provider *routetable.Provider
	Model    string // upstream model
	Usage    *openai.Usage
	Status   int
	Stream   bool
	Latency  time.Duration
	TTFT     time.Duration
}

// Guard applies a sensitive-data policy to a request. It may rewrite the
// request (redaction) and may restrict it to sovereign targets.
type Guard interface {
	Inspect(req *openai.ChatRequest, route *routetable.Route, key *routetable.Key) (GuardVerdict, *openai.APIError)
}

// TextGuard is implemented by guards that also police plain texts: the
// inputs of an embeddings request carry the same data as prompts. texts
// may be rewritten in place (redaction).
type TextGuard interface {
	InspectTexts(texts []string, route *routetable.Route, key *routetable.Key) (GuardVerdict, *openai.APIError)
}

// GuardVerdict is the outcome of a Guard.
type GuardVerdict struct {
	// SovereignOnly restricts the request to InCluster/OnPrem providers.
	SovereignOnly bool
	// Findings summarises what was detected ("Email=2,PaymentCard=1"),
	// kinds and counts only, never values. Sent as x-tollgate-data-findings.
	Findings string
	// Restore, when set, maps placeholders in the answer back to the
	// original values (reversible redaction).
	Restore func(string) string
	// Flush returns what Restore held back (the possible start of a
	// placeholder split across chunks); called once where an answer ends.
	Flush func() string
}

// Options configure a Server.
type Options struct {
	Translators TranslatorFor
	// Client sends upstream requests; nil builds a tuned default.
	Client *http.Client
	Media  translate.MediaFetcher
	Meter  Meter
	Guard  Guard
	Log    logr.Logger
	// MaxBodyBytes bounds request bodies (default 32 MiB).
	MaxBodyBytes int64
	// MaxResponseBytes bounds non-streaming upstream bodies (default 64 MiB).
	MaxResponseBytes int64
	// DefaultRequestTimeout applies when a route sets none (default 10 min).
	DefaultRequestTimeout time.Duration
	Metrics               *Metrics
	Health                *router.Health
	// MCP, when set, serves the MCP endpoint at /mcp.
	MCP http.Handler
	// BodyTimeout bounds reading a whole request body (default 2 min).
	BodyTimeout time.Duration
}

// Server serves the OpenAI-compatible and Anthropic-compatible endpoints.
type Server struct {
	opts   Options
	table  atomic.Pointer[routetable.Table]
	router router.Router
	client *http.Client
	log    logr.Logger
	m      *Metrics
	// draining is set on shutdown: readiness fails so load balancers stop
	// sending; requests that still arrive are served.
	draining atomic.Bool
	// handlers counts requests in flight, so Close flushes usage only after
	// the last one has recorded its own.
	handlers sync.WaitGroup
	streams  streamLimiter
}

// New returns a Server without a routing table; it answers 503 until
// SetTable is called.
func New(opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 32 << 20
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = 64 << 20
	}
	if opts.DefaultRequestTimeout <= 0 {
		opts.DefaultRequestTimeout = 10 * time.Minute
	}
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = 2 * time.Minute
	}
	if opts.Health == nil {
		opts.Health = router.NewHealth(router.DefaultHealthConfig, nil)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	opts.Metrics.healthSource = opts.Health
	s := &Server{opts: opts, log: opts.Log, m: opts.Metrics}
	s.router = router.Router{Health: opts.Health}
	s.client = opts.Client
	if s.client == nil {
		s.client = &http.Client{Transport: NewUpstreamTransport()}
	}
	return s
}

// NewUpstreamTransport returns the transport used for providers: generous
// keep-alive pools (one gateway multiplexes many clients onto few
// upstreams), no overall timeout (streams are long; deadlines come from the
// route), and HTTP/2 where the provider offers it.
func NewUpstreamTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = 0
	t.ForceAttemptHTTP2 = true
	return t
}

// SetTable atomically swaps in a new routing table. Requests in flight keep
// the table they started with.
func (s *Server) SetTable(t *routetable.Table) error {
	s.table.Store(t)
	s.m.tableVersion(t.Version)
	return nil
}

// Table returns the current table (nil before the first).
func (s *Server) Table() *routetable.Table { return s.table.Load() }

// Health returns the live target health tracker.
func (s *Server) Health() *router.Health { return s.opts.Health }

// closeWait bounds how long Close waits for handlers whose connections
// were cut at the end of the shutdown grace to return.
const closeWait = 5 * time.Second

// Close flushes what the server still holds (usage not yet reported) once
// no request is in flight any more, waiting at most closeWait for handlers
// that are still unwinding.
func (s *Server) Close() {
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeWait):
		s.log.Info("Requests still unwinding at close; their usage may not be reported", "waited", closeWait)
	}
	if c, ok := s.opts.Meter.(interface{ Close() }); ok {
		c.Close()
	}
}

// Drain makes readiness fail so load balancers stop sending new requests.
func (s *Server) Drain() { s.draining.Store(true) }

// Ready reports whether the server has a table and is not draining.
func (s *Server) Ready() bool { return s.table.Load() != nil && !s.draining.Load() }

// Handler returns the public API handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.handleChat)
	mux.HandleFunc("POST /chat/completions", s.handleChat)
	mux.HandleFunc("POST /v1/messages", s.handleMessages)
	mux.HandleFunc("POST /v1/messages/count_tokens", s.handleCountTokens)
	mux.HandleFunc("POST /v1/embeddings", s.handleEmbeddings)
	mux.HandleFunc("POST /embeddings", s.handleEmbeddings)
	mux.HandleFunc("GET /v1/models", s.handleModels)
	mux.HandleFunc("GET /models", s.handleModels)
	mux.HandleFunc("GET /v1/models/{model...}", s.handleModel)
	mux.HandleFunc("GET /models/{model...}", s.handleModel)
	if s.opts.MCP != nil {
		mux.Handle("/mcp", s.opts.MCP)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeOpenAIError(w, openai.NewError(http.StatusNotFound, openai.TypeNotFound, "unknown_url",
			"", "Unknown request URL: "+r.Method+" "+r.URL.Path+". Tollgate serves /v1/chat/completions, /v1/messages, /v1/messages/count_tokens, /v1/embeddings, /v1/models and /mcp."))
	})
	return s.recoverPanics(s.boundBodies(mux))
}

// boundBodies gives a request body BodyTimeout to arrive. ReadHeaderTimeout
// covers headers only, and net/http drains up to 256 KiB of a body the
// handler did not read before it answers, so even an early refusal (401,
// unknown URL) would wait for a body trickling in. readBody lifts the
// deadline once the body is complete; /mcp reads its own bodies and keeps
// long-lived streams, so it is left alone.
func (s *Server) boundBodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && r.URL.Path != "/mcp" {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.opts.BodyTimeout))
		}
		next.ServeHTTP(w, r)
	})
}

// recoverPanics turns a panic in one request into a 500 for that request
// and a metric, never a crashed replica.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.handlers.Add(1)
		defer s.handlers.Done()
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.m.Panics.Inc()
				s.log.Error(nil, "Recovered panic in request handler", "path", r.URL.Path, "panic", v)
				if w.Header().Get("Content-Type") != "" {
					// The answer (an event stream, or a JSON body) was
					// already under way: a JSON error glued after it would
					// corrupt it. Cut the connection instead.
					panic(http.ErrAbortHandler)
				}
				writeOpenAIError(w, openai.NewError(http.StatusInternalServerError, openai.TypeServer, "internal_error", "", "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
