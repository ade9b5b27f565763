package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"tollgate.dev/tollgate/dataplane/guard"
	"tollgate.dev/tollgate/dataplane/metering"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/server"
	"tollgate.dev/tollgate/dataplane/translate/providers"
	"tollgate.dev/tollgate/test/bench/upstream"
)

// The whole-request benchmarks run the public handler (auth, parse,
// validate, sensitive-data guard, route, translate, upstream round trip,
// response translation, metrics) against upstream.Transport, which answers from memory: no
// sockets, so only the gateway's own work is measured. The load harness
// (go run ./test/bench) measures the same paths over loopback.

const benchKey = "tg-bench-0123456789abcdefghijklmnopqrstuvwxyzABCDEF"

// benchTable routes bench-<dialect> to a provider of that dialect; the
// stream variants reach the upstream with a 50-chunk profile.
func benchTable(extraKeys int) *routetable.Table {
	t := &routetable.Table{Keys: []routetable.Key{{ID: "bench/app", Namespace: "bench", Name: "app", Team: "bench", Hash: server.HashKey(benchKey),
		Budget:     &routetable.Budget{Amount: "1000000000", Currency: "USD", Period: routetable.PeriodMonthly},
		TeamBudget: &routetable.Budget{Amount: "1000000000", Currency: "USD", Period: routetable.PeriodMonthly}}}}
	for i := range extraKeys {
		k := fmt.Sprintf("tg-other-%040d", i)
		t.Keys = append(t.Keys, routetable.Key{ID: fmt.Sprintf("bench/k%d", i), Namespace: "bench", Name: fmt.Sprintf("k%d", i), Team: "bench", Hash: server.HashKey(k)})
	}
	for _, p := range []struct {
		name string
		typ  routetable.ProviderType
	}{{"openai", routetable.ProviderOpenAI}, {"anthropic", routetable.ProviderAnthropic}} {
		t.Providers = append(t.Providers, routetable.Provider{ID: "bench/" + p.name, Namespace: "bench", Name: p.name, Type: p.typ,
			BaseURL: "http://upstream.invalid/u/50/0s", Locality: routetable.LocalityExternal, APIKey: "sk-bench-" + p.name,
			DefaultMaxTokens: 1024, Currency: "USD",
			Models: []routetable.Model{{Name: "upstream-" + p.name, InputPrice: "2.00", OutputPrice: "8.00", CacheReadPrice: "0.50"}}})
		model := "bench-" + p.name
		t.Routes = append(t.Routes, routetable.Route{ID: "bench/" + model, Namespace: "bench", Name: model, Model: model,
			Targets: []routetable.Target{{Provider: "bench/" + p.name, Model: "upstream-" + p.name, Weight: 1}}, Retry: routetable.Retry{Attempts: 1}})
	}
	if err := t.Finalize(); err != nil {
		panic(err)
	}
	return t
}

// benchServer is a data plane as dataplane.Run wires it (guard, metrics);
// metered adds a metering.Meter in file mode (budgets checked, cost
// computed and accounted per request, no reporting).
func benchServer(b *testing.B, metered bool) http.Handler {
	b.Helper()
	t := benchTable(0)
	opts := server.Options{
		Translators: providers.For,
		Client:      &http.Client{Transport: upstream.Transport{}},
		Log:         logr.Discard(),
		Guard:       guard.New(nil),
	}
	if metered {
		m := metering.New(metering.Options{Registerer: prometheus.NewRegistry(), Log: logr.Discard()})
		m.SetTable(t)
		b.Cleanup(m.Close)
		opts.Meter = m
	}
	s := server.New(opts)
	if err := s.SetTable(t); err != nil {
		b.Fatal(err)
	}
	return s.Handler()
}

// discardWriter is a ResponseWriter that keeps the status and drops the
// body, reused across iterations so the benchmark allocates nothing itself.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}
func (w *discardWriter) Flush() {}

func (w *discardWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// serveLoop sends body to h b.N times through one reused request.
func serveLoop(b *testing.B, h http.Handler, body []byte) {
	b.Helper()
	servePathLoop(b, h, "/v1/chat/completions", body)
}

func servePathLoop(b *testing.B, h http.Handler, path string, body []byte) {
	b.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://gateway"+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+benchKey)
	req.Header.Set("Content-Type", "application/json")
	rd := bytes.NewReader(body)
	w := &discardWriter{h: http.Header{}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	c0 := cpuTime()
	defer func() { b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op") }()
	for b.Loop() {
		rd.Reset(body)
		req.Body = io.NopCloser(rd)
		req.ContentLength = int64(len(body))
		w.reset()
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK || w.n == 0 {
			b.Fatalf("status %d, %d bytes", w.status, w.n)
		}
	}
}

// cpuTime is the process's user+system CPU time. On a shared machine
// ns/op (wall time) includes time spent waiting for a core; cpu-ns/op,
// reported next to it, does not (it includes the GC's background work,
// which is part of the cost of a request).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkChat is one non-streaming chat completion, end to end, without
// and with metering.
func BenchmarkChat(b *testing.B) {
	for _, d := range []string{"openai", "anthropic"} {
		b.Run(d, func(b *testing.B) { serveLoop(b, benchServer(b, false), upstream.RequestBody("bench-"+d, false)) })
		b.Run(d+"/metered", func(b *testing.B) { serveLoop(b, benchServer(b, true), upstream.RequestBody("bench-"+d, false)) })
	}
}

// BenchmarkChatStream is one metered streamed chat completion of 50 content
// chunks, end to end; per-chunk cost is ns/op divided by about 53.
func BenchmarkChatStream(b *testing.B) {
	for _, d := range []string{"openai", "anthropic"} {
		b.Run(d, func(b *testing.B) { serveLoop(b, benchServer(b, true), upstream.RequestBody("bench-"+d, true)) })
	}
}

// BenchmarkMessages is one Anthropic-native /v1/messages request (as
// Claude Code or the Anthropic SDK send it), metered, routed to an OpenAI
// and to an Anthropic upstream.
func BenchmarkMessages(b *testing.B) {
	for _, d := range []string{"openai", "anthropic"} {
		for _, stream := range []bool{false, true} {
			name := d
			if stream {
				name += "/stream"
			}
			b.Run(name, func(b *testing.B) {
				servePathLoop(b, benchServer(b, true), "/v1/messages", messagesBody("bench-"+d, stream))
			})
		}
	}
}

// messagesBody is the Anthropic Messages twin of upstream.RequestBody.
func messagesBody(model string, stream bool) []byte {
	return []byte(fmt.Sprintf(`{"model":%q,"max_tokens":256,"temperature":0.2,"stream":%t,`+
		`"system":"You are a concise assistant for an internal engineering team. Answer in plain English.",`+
		`"messages":[{"role":"user","content":%q}]}`,
		model, stream, strings.Repeat("Summarise the trade-offs of connection pooling in HTTP proxies. ", 14)))
}

// BenchmarkChatParallel runs non-streaming requests from GOMAXPROCS
// goroutines: contention on shared state (metrics, health, table) shows
// here and not in BenchmarkChat.
func BenchmarkChatParallel(b *testing.B) {
	h := benchServer(b, true)
	body := upstream.RequestBody("bench-openai", false)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest(http.MethodPost, "http://gateway/v1/chat/completions", nil)
		req.Header.Set("Authorization", "Bearer "+benchKey)
		rd := bytes.NewReader(body)
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			rd.Reset(body)
			req.Body = io.NopCloser(rd)
			w.reset()
			h.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				b.Errorf("status %d", w.status)
				return
			}
		}
	})
}

// BenchmarkAuthenticate is the virtual-key lookup of every request: hash
// the presented key, find it by hash, compare in constant time.
func BenchmarkAuthenticate(b *testing.B) {
	for _, n := range []int{1, 10000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			t := benchTable(n - 1)
			req, _ := http.NewRequest(http.MethodPost, "http://gateway/v1/chat/completions", nil)
			req.Header.Set("Authorization", "Bearer "+benchKey)
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				if _, aerr := server.Authenticate(req, t, now); aerr != nil {
					b.Fatal(aerr)
				}
			}
		})
	}
}
