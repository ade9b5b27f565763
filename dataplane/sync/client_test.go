package sync_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"

	"tollgate.dev/tollgate/controllers/push"
	"tollgate.dev/tollgate/dataplane/routetable"
	tgsync "tollgate.dev/tollgate/dataplane/sync"
	"tollgate.dev/tollgate/dataplane/sync/wire"
)

const (
	testToken = "s3cr3t-push-token"
	// secretAPIKey is planted in every table; it must never show up in a
	// response to an unauthenticated caller or in a log line.
	secretAPIKey = "sk-never-log-me"
	waitFor      = 10 * time.Second
)

// table builds a valid, finalized table whose version depends on n.
func table(t testing.TB, n int) *routetable.Table {
	t.Helper()
	tb := &routetable.Table{
		Generations: map[string]int64{"Route/default/chat": int64(n)},
		Providers: []routetable.Provider{{
			ID: "default/openai", Namespace: "default", Name: "openai",
			Type: routetable.ProviderOpenAI, BaseURL: "https://api.openai.com/v1",
			Locality: routetable.LocalityExternal, APIKey: secretAPIKey,
		}},
		Routes: []routetable.Route{{
			ID: "default/chat", Namespace: "default", Name: "chat", Model: fmt.Sprintf("chat-%d", n),
			Targets: []routetable.Target{{Provider: "default/openai", Model: "gpt-4o", Weight: 1}},
			Retry:   routetable.Retry{Attempts: 1},
		}},
	}
	if err := tb.Finalize(); err != nil {
		t.Fatal(err)
	}
	return tb
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitFor, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// logSink records log lines so tests can check that no secret is logged.
type logSink struct {
	t    testing.TB
	mu   gosync.Mutex
	b    strings.Builder
	done bool // the test is finishing: handlers still running must not call t.Log
}

func newLogSink(t testing.TB) *logSink {
	l := &logSink{t: t}
	t.Cleanup(func() {
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return l
}

func (l *logSink) logger(name string) logr.Logger {
	return testr.NewWithInterface(l, testr.Options{Verbosity: 1}).WithName(name)
}

func (l *logSink) Helper() {}
func (l *logSink) Log(args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(&l.b, args...)
	if !l.done {
		l.t.Log(args...)
	}
}
func (l *logSink) Logf(format string, args ...any) { l.Log(fmt.Sprintf(format, args...)) }

func (l *logSink) assertNoSecrets(t testing.TB, secrets ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range secrets {
		if strings.Contains(l.b.String(), s) {
			t.Errorf("a secret (%q) was logged", s)
		}
	}
}

// controller serves a push.Server on a fixed loopback address and can be
// stopped and restarted on the same address.
type controller struct {
	t    testing.TB
	addr string
	mu   gosync.Mutex
	srv  *http.Server
}

func startController(t testing.TB, h http.Handler) *controller {
	t.Helper()
	c := &controller{t: t, addr: "127.0.0.1:0"}
	c.start(h)
	t.Cleanup(c.stop)
	return c
}

func (c *controller) start(h http.Handler) {
	c.t.Helper()
	var l net.Listener
	var err error
	// The old listener's port may take a moment to be free again.
	for i := 0; i < 500; i++ {
		if l, err = net.Listen("tcp", c.addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	c.addr = l.Addr().String()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	c.mu.Lock()
	c.srv = srv
	c.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// stop closes the listener and every connection, like a crashed controller.
func (c *controller) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv != nil {
		_ = c.srv.Close()
		c.srv = nil
	}
}

func (c *controller) url() string { return "http://" + c.addr }

// replica is a sync.Client with a recording Apply.
type replica struct {
	c       *tgsync.Client
	mu      gosync.Mutex
	applied []string
	last    time.Time // when the last table was applied
	fail    atomic.Bool
	done    chan error
	cancel  context.CancelFunc
}

func (r *replica) versions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.applied...)
}

func startReplica(t testing.TB, id, url string, log logr.Logger, configure func(*tgsync.Client)) *replica {
	t.Helper()
	r := &replica{done: make(chan error, 1)}
	r.c = &tgsync.Client{
		URL: url, Token: testToken, ReplicaID: id, Log: log.WithName(id),
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Apply: func(tb *routetable.Table) error {
			if r.fail.Load() {
				return errors.New("apply refused by test")
			}
			if _, ok := tb.RouteForModel("default", tb.Routes[0].Model); !ok {
				return errors.New("table not finalized")
			}
			r.mu.Lock()
			r.applied = append(r.applied, tb.Version)
			r.last = time.Now()
			r.mu.Unlock()
			return nil
		},
	}
	if configure != nil {
		configure(r.c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *replica) stop(t testing.TB) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	case <-time.After(waitFor):
		t.Error("Run did not return after its context was cancelled")
	}
}

func newServer(log logr.Logger, auth push.Authenticator) *push.Server {
	if auth == nil {
		auth = push.NewStaticTokenAuth(testToken)
	}
	return push.NewServer(push.Options{
		Auth: auth, Log: log.WithName("push"),
		Heartbeat: 50 * time.Millisecond, ReplicaTimeout: 500 * time.Millisecond,
	})
}

func ackedBy(s *push.Server, version string, ids ...string) bool {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for _, r := range s.Replicas() {
		if want[r.ID] && r.Connected && r.AckedVersion == version && r.Acked != nil {
			delete(want, r.ID)
		}
	}
	return len(want) == 0
}

func TestFullTableOnConnect(t *testing.T) {
	logs := newLogSink(t)
	s := newServer(logs.logger("controller"), nil)
	t1 := table(t, 1)
	s.Publish(t1)
	ctl := startController(t, s.Handler())

	r := startReplica(t, "dp-0", ctl.url(), logs.logger("dataplane"), nil)
	eventually(t, "the table to be applied", func() bool { return r.c.Version() == t1.Version })
	if !r.c.Synced() {
		t.Error("Synced() = false after a table was applied")
	}
	eventually(t, "the ack to be visible", func() bool { return ackedBy(s, t1.Version, "dp-0") })
	reps := s.Replicas()
	if len(reps) != 1 || reps[0].Acked.Generations["Route/default/chat"] != 1 || reps[0].Identity == "" {
		t.Errorf("Replicas() = %+v", reps)
	}
	logs.assertNoSecrets(t, secretAPIKey, testToken)
}

func TestWaitsForFirstPublish(t *testing.T) {
	logs := newLogSink(t)
	s := newServer(logs.logger("controller"), nil)
	ctl := startController(t, s.Handler())
	r := startReplica(t, "dp-0", ctl.url(), logs.logger("dataplane"), nil)
	eventually(t, "the replica to connect", func() bool {
		reps := s.Replicas()
		return len(reps) == 1 && reps[0].Connected
	})
	if r.c.Synced() {
		t.Fatal("Synced() = true before anything was published")
	}
	t1 := table(t, 1)
	s.Publish(t1)
	eventually(t, "the table to be applied", func() bool { return r.c.Version() == t1.Version })
}

func TestPushToThreeReplicas(t *testing.T) {
	logs := newLogSink(t)
	s := newServer(logs.logger("controller"), nil)
	ctl := startController(t, s.Handler())
	ids := []string{"dp-0", "dp-1", "dp-2"}
	var reps []*replica
	for _, id := range ids {
		reps = append(reps, startReplica(t, id, ctl.url(), logs.logger("dataplane"), nil))
	}
	eventually(t, "3 replicas to connect", func() bool {
		n := 0
		for _, r := range s.Replicas() {
			if r.Connected {
				n++
			}
		}
		return n == 3
	})
	// Drain the connect notifications.
	select {
	case <-s.Changes():
	default:
	}

	var worst, total time.Duration
	const rounds = 20
	for i := 1; i <= rounds; i++ {
		tb := table(t, i)
		start := time.Now()
		s.Publish(tb)
		eventually(t, "all replicas to apply "+tb.Version, func() bool {
			for _, r := range reps {
				if r.c.Version() != tb.Version {
					return false
				}
			}
			return true
		})
		var d time.Duration
		for _, r := range reps {
			r.mu.Lock()
			d = max(d, r.last.Sub(start))
			r.mu.Unlock()
		}
		total += d
		worst = max(worst, d)
		eventually(t, "all acks of "+tb.Version, func() bool { return ackedBy(s, tb.Version, ids...) })
	}
	t.Logf("Publish -> applied on all 3 replicas (loopback, timed inside Apply): mean %s, worst %s over %d versions",
		total/rounds, worst, rounds)
	select {
	case <-s.Changes():
	default:
		t.Error("Changes() did not fire for acks")
	}
	for _, r := range s.Replicas() {
		if r.Acked.Generations["Route/default/chat"] != rounds {
			t.Errorf("replica %s acked generation %d, want %d", r.ID, r.Acked.Generations["Route/default/chat"], rounds)
		}
	}
	// Every replica applied the versions in order (coalescing may skip
	// some, never reorder).
	for _, r := range reps {
		v := r.versions()
		if len(v) == 0 || v[len(v)-1] != table(t, rounds).Version {
			t.Errorf("replica applied %v", v)
		}
	}
	logs.assertNoSecrets(t, secretAPIKey, testToken)
}

func TestBadTokenIsRefused(t *testing.T) {
	logs := newLogSink(t)
	s := newServer(logs.logger("controller"), nil)
	s.Publish(table(t, 1))
	ctl := startController(t, s.Handler())

	for name, hdr := range map[string]string{
		"missing":     "",
		"wrong":       "Bearer not-the-token",
		"wrong-case":  "Bearer " + strings.ToUpper(testToken),
		"not-bearer":  "Basic " + testToken,
		"prefix-only": "Bearer " + testToken[:4],
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, ctl.url()+wire.StreamPath+"?replica=x", strings.NewReader(""))
			if hdr != "" {
				req.Header.Set("Authorization", hdr)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", resp.StatusCode)
			}
			if strings.Contains(string(body), secretAPIKey) || strings.Contains(string(body), "providers") {
				t.Errorf("401 body leaks the table: %q", body)
			}
		})
	}

	// A client with a bad token never gets a table and keeps retrying.
	r := startReplica(t, "dp-bad", ctl.url(), logs.logger("dataplane"), func(c *tgsync.Client) { c.Token = "nope" })
	eventually(t, "several refused attempts", func() bool { return strings.Count(logText(logs), "401") >= 3 })
	if r.c.Synced() || len(r.versions()) != 0 || len(s.Replicas()) != 0 {
		t.Errorf("unauthenticated replica got something: synced=%v applied=%v replicas=%v", r.c.Synced(), r.versions(), s.Replicas())
	}
	logs.assertNoSecrets(t, secretAPIKey, testToken, "nope")
}

func logText(l *logSink) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestControllerGoesAway(t *testing.T) {
	logs := newLogSink(t)
	s := newServer(logs.logger("controller"), nil)
	t1 := table(t, 1)
	s.Publish(t1)
	ctl := startController(t, s.Handler())
	r := startReplica(t, "dp-0", ctl.url(), logs.logger("dataplane"), nil)
	eventually(t, "t1 applied", func() bool { return r.c.Version() == t1.Version })

	ctl.stop()
	eventually(t, "the server to notice the replica left", func() bool {
		reps := s.Replicas()
		return len(reps) == 1 && !reps[0].Connected
	})
	// While the controller is away the replica keeps serving t1; give it a
	// few reconnect attempts to prove it does not drop it.
	eventually(t, "reconnect attempts", func() bool { return strings.Count(logText(logs), "reconnecting") >= 3 })
	if r.c.Version() != t1.Version || !r.c.Synced() {
		t.Fatalf("replica dropped its table while the controller was away: version=%q synced=%v", r.c.Version(), r.c.Synced())
	}

	// A restarted controller (a new push.Server, same address) with a newer
	// table: the replica catches up.
	s2 := newServer(logs.logger("controller2"), nil)
	t2 := table(t, 2)
	s2.Publish(t2)
	ctl.start(s2.Handler())
	eventually(t, "t2 applied after the controller returned", func() bool { return r.c.Version() == t2.Version })
	eventually(t, "the ack reached the new controller", func() bool { return ackedBy(s2, t2.Version, "dp-0") })
	if got := r.versions(); len(got) != 2 || got[0] != t1.Version || got[1] != t2.Version {
		t.Errorf("applied %v, want [t1 t2]", got)
	}
}

func TestReconnectToSameTableDoesNotReapply(t *testing.T) {
	logs := newLogSink(t)
	s := newServer(logs.logger("controller"), nil)
	t1 := table(t, 1)
	s.Publish(t1)
	ctl := startController(t, s.Handler())
	r := startReplica(t, "dp-0", ctl.url(), logs.logger("dataplane"), nil)
	eventually(t, "t1 acked", func() bool { return ackedBy(s, t1.Version, "dp-0") })
	ctl.stop()
	eventually(t, "disconnect", func() bool { return !s.Replicas()[0].Connected })
	ctl.start(s.Handler())
	eventually(t, "reconnect and ack", func() bool { return ackedBy(s, t1.Version, "dp-0") })
	if got := r.versions(); len(got) != 1 {
		t.Errorf("applied %v, want t1 once", got)
	}
}

func TestBadTableIsRejected(t *testing.T) {
	logs := newLogSink(t)
	s := newServer(logs.logger("controller"), nil)
	t1 := table(t, 1)
	s.Publish(t1)
	ctl := startController(t, s.Handler())
	r := startReplica(t, "dp-0", ctl.url(), logs.logger("dataplane"), nil)
	eventually(t, "t1 acked", func() bool { return ackedBy(s, t1.Version, "dp-0") })

	// A table that does not pass Finalize on the replica: a route pointing
	// at a provider that is not in the table.
	bad := table(t, 2)
	bad.Routes[0].Targets[0].Provider = "default/missing"
	s.Publish(bad)
	eventually(t, "the nack", func() bool {
		reps := s.Replicas()
		return len(reps) == 1 && reps[0].NackedVersion == bad.Version
	})
	rep := s.Replicas()[0]
	if !strings.Contains(rep.Error, "unknown provider") || rep.AckedVersion != t1.Version || rep.Acked == nil {
		t.Errorf("after a bad table: %+v", rep)
	}
	if r.c.Version() != t1.Version {
		t.Errorf("replica serves %q, want the old table %q", r.c.Version(), t1.Version)
	}

	// A table whose Apply fails is rejected the same way.
	r.fail.Store(true)
	t3 := table(t, 3)
	s.Publish(t3)
	eventually(t, "the nack of t3", func() bool { return s.Replicas()[0].NackedVersion == t3.Version })
	if e := s.Replicas()[0].Error; !strings.Contains(e, "apply refused by test") {
		t.Errorf("nack error = %q", e)
	}
	// And a good table after that is applied and clears the error.
	r.fail.Store(false)
	t4 := table(t, 4)
	s.Publish(t4)
	eventually(t, "t4 acked", func() bool { return ackedBy(s, t4.Version, "dp-0") })
	if rep := s.Replicas()[0]; rep.Error != "" || rep.NackedVersion != "" {
		t.Errorf("error not cleared by a later ack: %+v", rep)
	}
	logs.assertNoSecrets(t, secretAPIKey, testToken)
}

// rotatingAuth accepts exactly one token at a time and records what it saw.
type rotatingAuth struct {
	mu     gosync.Mutex
	accept string
	seen   []string
}

func (a *rotatingAuth) set(tok string) {
	a.mu.Lock()
	a.accept = tok
	a.mu.Unlock()
}

func (a *rotatingAuth) Authenticate(r *http.Request) (string, error) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen = append(a.seen, tok)
	if tok != a.accept {
		return "", push.ErrUnauthenticated
	}
	return "token-" + fmt.Sprint(len(a.seen)), nil
}

func TestTokenFileRotation(t *testing.T) {
	logs := newLogSink(t)
	auth := &rotatingAuth{accept: "token-A"}
	s := newServer(logs.logger("controller"), auth)
	t1 := table(t, 1)
	s.Publish(t1)
	ctl := startController(t, s.Handler())
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("token-A\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startReplica(t, "dp-0", ctl.url(), logs.logger("dataplane"), func(c *tgsync.Client) {
		c.Token, c.TokenFile = "", file
	})
	eventually(t, "t1 applied with token A", func() bool { return r.c.Version() == t1.Version })
	if tok, err := r.c.BearerToken(); err != nil || tok != "token-A" {
		t.Errorf("BearerToken() = %q, %v", tok, err)
	}

	// kubelet rotates the token (atomic rename, like a projected volume);
	// the controller now accepts only the new one. Drop the stream.
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte("token-B"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	auth.set("token-B")
	ctl.stop()
	t2 := table(t, 2)
	s.Publish(t2)
	ctl.start(s.Handler())
	eventually(t, "t2 applied with token B", func() bool { return r.c.Version() == t2.Version })
	auth.mu.Lock()
	last := auth.seen[len(auth.seen)-1]
	auth.mu.Unlock()
	if last != "token-B" {
		t.Errorf("last token presented = %q, want token-B", last)
	}
	logs.assertNoSecrets(t, "token-A", "token-B", secretAPIKey)
}

func TestSilentControllerIsAbandoned(t *testing.T) {
	// A controller that says hello and then never speaks again (a dead
	// connection behind a half-open NAT, say): the replica must give up on it
	// after three heartbeats and reconnect.
	var conns atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Add(1)
		_ = http.NewResponseController(w).EnableFullDuplex()
		w.Header().Set("Content-Type", wire.ContentType)
		_, _ = io.WriteString(w, `{"type":"hello","heartbeatMillis":20}`+"\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	logs := newLogSink(t)
	ctl := startController(t, h)
	startReplica(t, "dp-0", ctl.url(), logs.logger("dataplane"), nil)
	eventually(t, "a reconnect after silence", func() bool { return conns.Load() >= 2 })
	if !strings.Contains(logText(logs), "silent") {
		t.Error("the reconnect was not attributed to silence")
	}
}

func TestRunValidatesAndStops(t *testing.T) {
	c := &tgsync.Client{URL: "http://127.0.0.1:1", Token: "x", ReplicaID: "a"}
	if err := c.Run(context.Background()); err == nil {
		t.Error("Run without Apply succeeded")
	}
	c.Apply = func(*routetable.Table) error { return nil }
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := c.Run(ctx); err != nil {
		t.Errorf("Run = %v, want nil when ctx ends", err)
	}
	if _, err := (&tgsync.Client{}).BearerToken(); !errors.Is(err, tgsync.ErrNoToken) {
		t.Errorf("BearerToken with nothing configured = %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	_ = os.WriteFile(empty, nil, 0o600)
	if _, err := (&tgsync.Client{TokenFile: empty}).BearerToken(); !errors.Is(err, tgsync.ErrNoToken) {
		t.Errorf("BearerToken with an empty file = %v", err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://x/usage", nil)
	if err := (&tgsync.Client{Token: "tok"}).Authorize(req); err != nil || req.Header.Get("Authorization") != "Bearer tok" {
		t.Errorf("Authorize: %v %q", err, req.Header.Get("Authorization"))
	}
}

// TestHTTP2 runs the channel over h2c (prior knowledge) and over TLS with
// ALPN h2: the stream is full duplex there without any special casing.
func TestHTTP2(t *testing.T) {
	for _, mode := range []string{"h2c", "tls"} {
		t.Run(mode, func(t *testing.T) {
			logs := newLogSink(t)
			s := newServer(logs.logger("controller"), nil)
			t1 := table(t, 1)
			s.Publish(t1)
			var proto atomic.Int32
			hs := httptestServer(s.Handler(), &proto)
			var client *http.Client
			if mode == "h2c" {
				hs.Config.Protocols = new(http.Protocols)
				hs.Config.Protocols.SetHTTP1(true)
				hs.Config.Protocols.SetUnencryptedHTTP2(true)
				hs.Start()
				tr := &http.Transport{Protocols: new(http.Protocols)}
				tr.Protocols.SetUnencryptedHTTP2(true)
				client = &http.Client{Transport: tr}
			} else {
				hs.EnableHTTP2 = true
				hs.StartTLS()
				client = hs.Client()
			}
			t.Cleanup(func() { hs.CloseClientConnections(); hs.Close() })
			r := startReplica(t, "dp-0", hs.URL, logs.logger("dataplane"), func(c *tgsync.Client) { c.HTTPClient = client })
			eventually(t, "t1 acked", func() bool { return ackedBy(s, t1.Version, "dp-0") })
			t2 := table(t, 2)
			s.Publish(t2)
			eventually(t, "t2 acked", func() bool { return ackedBy(s, t2.Version, "dp-0") && r.c.Version() == t2.Version })
			if p := proto.Load(); p != 2 {
				t.Errorf("stream used HTTP/%d, want HTTP/2", p)
			}
			r.stop(t)
		})
	}
}

func httptestServer(h http.Handler, proto *atomic.Int32) *httptest.Server {
	return httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(int32(r.ProtoMajor))
		h.ServeHTTP(w, r)
	}))
}

// BenchmarkPublishLargeTable measures Publish -> applied on 3 replicas for a
// table with 10,000 virtual keys and 200 routes (about 1.9 MB of JSON): encode
// once, write to 3 streams, decode + Finalize + Apply on each replica.
func BenchmarkPublishLargeTable(b *testing.B) {
	s := newServer(logr.Discard(), nil)
	ctl := startController(b, s.Handler())
	var reps []*replica
	for i := range 3 {
		reps = append(reps, startReplica(b, fmt.Sprint("dp-", i), ctl.url(), logr.Discard(), nil))
	}
	big := func(n int) *routetable.Table {
		tb := table(b, n)
		for i := range 200 {
			r := tb.Routes[0]
			r.ID, r.Name, r.Model = fmt.Sprint("default/r", i), fmt.Sprint("r", i), fmt.Sprint("model-", i)
			tb.Routes = append(tb.Routes, r)
		}
		for i := range 10000 {
			tb.Keys = append(tb.Keys, routetable.Key{
				ID: fmt.Sprint("default/k", i), Namespace: "default", Name: fmt.Sprint("k", i),
				Hash: fmt.Sprintf("%064x", i), Team: "team", AllowedRoutes: []string{"default/chat"},
			})
		}
		if err := tb.Finalize(); err != nil {
			b.Fatal(err)
		}
		return tb
	}
	tables := []*routetable.Table{big(1), big(2)}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tb := tables[i%2]
		s.Publish(tb)
		for _, r := range reps {
			for r.c.Version() != tb.Version {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	b.StopTimer()
	raw, _ := json.Marshal(tables[0])
	b.ReportMetric(float64(len(raw))/1e6, "MB/table")
}
