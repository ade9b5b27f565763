package probe_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"tollgate.dev/tollgate/dataplane/probe"
	"tollgate.dev/tollgate/dataplane/router"
	"tollgate.dev/tollgate/dataplane/routetable"
)

const (
	apiKey  = "sk-probe-never-log-me"
	waitFor = 10 * time.Second
)

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitFor, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logBuffer collects log lines so tests can check no credential is logged.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.buf.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 2})
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func table(typ routetable.ProviderType, baseURL string, interval time.Duration) *routetable.Table {
	return &routetable.Table{
		Providers: []routetable.Provider{{
			ID: "ns/local", Namespace: "ns", Name: "local", Type: typ, BaseURL: baseURL,
			APIKey: apiKey, HealthCheckInterval: interval,
		}},
		Routes: []routetable.Route{{
			ID: "ns/chat", Namespace: "ns", Name: "chat", Model: "chat",
			Targets:   []routetable.Target{{Provider: "ns/local", Model: "llama", Weight: 1}},
			Fallbacks: []routetable.Target{{Provider: "ns/local", Model: "qwen", Weight: 1}},
		}},
	}
}

func status(h *router.Health, model string) (router.TargetStatus, bool) {
	for _, s := range h.Snapshot() {
		if s.Key == (router.TargetKey{Provider: "ns/local", Model: model}) {
			return s, true
		}
	}
	return router.TargetStatus{}, false
}

func ejected(h *router.Health, model string) bool {
	s, _ := status(h, model)
	return s.Ejected
}

func newProber(t *testing.T, h *router.Health, log logr.Logger) *probe.Prober {
	p := probe.New(probe.Options{Health: h, Log: log, ConfirmDelay: 10 * time.Millisecond, Timeout: time.Second, MinInterval: time.Millisecond})
	t.Cleanup(p.Close)
	return p
}

// A provider nobody listens for is ejected (every target a route uses)
// within the confirmation delay, with no user traffic at all.
func TestDeadEndpointIsEjected(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // connection refused from now on

	h := router.NewHealth(router.DefaultHealthConfig, nil)
	logs := &logBuffer{}
	p := newProber(t, h, logs.logger())
	start := time.Now()
	p.SetTable(table(routetable.ProviderOpenAICompatible, "http://"+addr, time.Hour))
	eventually(t, "both targets ejected", func() bool { return ejected(h, "llama") && ejected(h, "qwen") })
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("ejection took %s", d)
	}
	if strings.Contains(logs.String(), apiKey) {
		t.Errorf("log contains the API key:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "ejecting") {
		t.Errorf("no ejection logged:\n%s", logs)
	}
}

// A provider that answers 503 is ejected; once it answers 200 its targets
// are back in service at the next probe.
func TestRecoveryUnejects(t *testing.T) {
	var up atomic.Bool
	var probes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probes.Add(1)
		if !up.Load() {
			http.Error(w, "loading model", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"object":"list","data":[]}`))
	}))
	defer srv.Close()

	h := router.NewHealth(router.DefaultHealthConfig, nil)
	p := newProber(t, h, logr.Discard())
	p.SetTable(table(routetable.ProviderOpenAICompatible, srv.URL, 50*time.Millisecond))
	eventually(t, "ejection", func() bool { return ejected(h, "llama") })

	// Further failed probes keep it ejected.
	n := probes.Load()
	eventually(t, "more probes", func() bool { return probes.Load() >= n+3 })
	if !ejected(h, "llama") {
		t.Fatal("un-ejected while still failing")
	}

	up.Store(true)
	eventually(t, "recovery", func() bool { return !ejected(h, "llama") && !ejected(h, "qwen") })
}

// Successful probes of a healthy provider record nothing: passive outlier
// detection keeps working on real traffic, and a provider that was never
// used shows no attempts.
func TestHealthyProbesRecordNothing(t *testing.T) {
	var probes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probes.Add(1)
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	h := router.NewHealth(router.DefaultHealthConfig, nil)
	p := newProber(t, h, logr.Discard())
	p.SetTable(table(routetable.ProviderOllama, srv.URL, 20*time.Millisecond))
	eventually(t, "a few probes", func() bool { return probes.Load() >= 3 })
	if s, ok := status(h, "llama"); ok && (s.Attempts != 0 || s.Ejected) {
		t.Errorf("healthy probes recorded %+v", s)
	}
}

// Each provider type gets its cheap listing endpoint with its own way of
// presenting the credential.
func TestRequestPerType(t *testing.T) {
	for _, tc := range []struct {
		typ          routetable.ProviderType
		base         string
		url          string
		header, want string
	}{
		{routetable.ProviderOpenAI, "https://api.openai.com", "https://api.openai.com/v1/models", "Authorization", "Bearer " + apiKey},
		{routetable.ProviderOpenAICompatible, "http://vllm:8000/v1/", "http://vllm:8000/v1/models", "Authorization", "Bearer " + apiKey},
		{routetable.ProviderOllama, "http://ollama:11434", "http://ollama:11434/api/tags", "Authorization", "Bearer " + apiKey},
		{routetable.ProviderAnthropic, "https://api.anthropic.com", "https://api.anthropic.com/v1/models", "x-api-key", apiKey},
		{routetable.ProviderGemini, "https://generativelanguage.googleapis.com", "https://generativelanguage.googleapis.com/v1beta/models", "x-goog-api-key", apiKey},
		{routetable.ProviderAzureOpenAI, "https://x.openai.azure.com", "https://x.openai.azure.com/openai/models?api-version=2025-01-01", "api-key", apiKey},
	} {
		t.Run(string(tc.typ), func(t *testing.T) {
			prov := &routetable.Provider{ID: "ns/p", Type: tc.typ, BaseURL: tc.base, APIKey: apiKey, APIVersion: "2025-01-01",
				Headers: map[string]string{"Authorization": "Bearer injected", "X-Extra": "1"}}
			if tc.typ == routetable.ProviderAnthropic {
				prov.APIVersion = ""
			}
			req, err := probe.Request(context.Background(), prov)
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != http.MethodGet || req.URL.String() != tc.url {
				t.Errorf("%s %s, want GET %s", req.Method, req.URL, tc.url)
			}
			if got := req.Header.Get(tc.header); got != tc.want {
				t.Errorf("%s = %q, want %q", tc.header, got, tc.want)
			}
			if req.Header.Get("X-Extra") != "1" {
				t.Error("static header missing")
			}
			if tc.typ == routetable.ProviderAnthropic && req.Header.Get("anthropic-version") == "" {
				t.Error("anthropic-version missing")
			}
		})
	}
	if probe.Supported(routetable.ProviderBedrock) {
		t.Error("Bedrock claims to be probeable")
	}
}

// Removing the health check (or the provider) from the table stops its
// probes.
func TestSetTableStopsProbes(t *testing.T) {
	var probes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probes.Add(1)
		if r.Header.Get("Authorization") != "Bearer "+apiKey || r.URL.Path != "/v1/models" {
			http.Error(w, "bad probe", http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	h := router.NewHealth(router.DefaultHealthConfig, nil)
	p := newProber(t, h, logr.Discard())
	p.SetTable(table(routetable.ProviderOpenAI, srv.URL, 10*time.Millisecond))
	eventually(t, "probes", func() bool { return probes.Load() >= 2 })
	if ejected(h, "llama") {
		t.Fatal("a well-formed probe was refused by the test server")
	}
	p.SetTable(table(routetable.ProviderOpenAI, srv.URL, 0))
	time.Sleep(50 * time.Millisecond) // a probe in flight may still land
	n := probes.Load()
	time.Sleep(100 * time.Millisecond)
	if got := probes.Load(); got != n {
		t.Errorf("%d probes after the health check was removed", got-n)
	}
}

func TestHealthyCodes(t *testing.T) {
	for code, want := range map[int]bool{200: true, 204: true, 404: true, 405: true, 429: true, 400: false, 401: false, 403: false, 500: false, 502: false, 503: false} {
		if got := probe.Healthy(code); got != want {
			t.Errorf("Healthy(%d) = %v, want %v", code, got, want)
		}
	}
}

// A provider that stays dead stays ejected after the router's cool-down:
// the next failed probe re-ejects it, so no user request has to find out.
func TestStaysEjectedPastCoolDown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := router.NewHealth(router.DefaultHealthConfig, clock)
	p := newProber(t, h, logr.Discard())
	p.SetTable(table(routetable.ProviderOpenAI, srv.URL, 5*time.Millisecond))
	eventually(t, "ejection", func() bool { return ejected(h, "llama") })
	mu.Lock()
	now = now.Add(router.DefaultHealthConfig.MaxEjection + time.Second)
	mu.Unlock()
	eventually(t, "re-ejection", func() bool { return ejected(h, "llama") })
}
