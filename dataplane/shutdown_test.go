package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/go-logr/logr"

	"tollgate.dev/tollgate/controllers/compiler"
	"tollgate.dev/tollgate/controllers/push"
	"tollgate.dev/tollgate/dataplane/metering"
	"tollgate.dev/tollgate/test/fakeprovider"
)

// running is a data plane started by startRun.
type running struct {
	public, admin string // host:port
	cancel        context.CancelFunc
	done          chan error
}

// startRun runs the data plane in file mode against providerURL with o
// (listen addresses, config dir and Ready are filled in here).
func startRun(t *testing.T, providerURL string, o Options) *running {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "gateway.yaml"), []byte(fileModeManifests(providerURL, "small")), 0o600); err != nil {
		t.Fatal(err)
	}
	ready := make(chan [2]string, 1)
	o.Listen, o.AdminListen, o.ConfigDir = "127.0.0.1:0", "127.0.0.1:0", dir
	o.Ready = func(p, a string) { ready <- [2]string{p, a} }
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Run(ctx, o, logr.Discard()) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(o.DrainDelay + o.ShutdownGrace + 10*time.Second):
			t.Error("Run did not return at cleanup")
		}
	})
	select {
	case a := <-ready:
		r.public, r.admin = a[0], a[1]
	case err := <-r.done:
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("data plane did not start")
	}
	return r
}

// waitReturn waits at most within for Run to return, and returns how long
// that took.
func (r *running) waitReturn(t *testing.T, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		r.done <- nil // for the cleanup
		return time.Since(start)
	case <-time.After(within):
		t.Fatalf("Run did not return within %v", within)
		return 0
	}
}

// openStream starts a streaming chat request and returns once the first
// event is in hand; the rest of the body arrives on the channel.
func openStream(t *testing.T, base string) <-chan string {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+base+"/v1/chat/completions",
		strings.NewReader(`{"model":"small","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+fileModeKey)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("first event: %v", err)
	}
	out := make(chan string, 1)
	go func() {
		defer resp.Body.Close()
		rest, _ := io.ReadAll(br)
		out <- first + string(rest)
	}()
	return out
}

func readyz(admin string) int {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + admin + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// poll calls f every 10ms until it is true or within passes.
func poll(t *testing.T, within time.Duration, what string, f func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !f() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// TestGracefulShutdown cancels Run while a ~1s stream is in flight:
// readiness fails first while the listener still accepts (the drain
// delay), then the listener closes and new connections are refused, the
// stream finishes completely with [DONE], and Run returns well within the
// grace period.
func TestGracefulShutdown(t *testing.T) {
	fake := fakeprovider.Start(fakeprovider.Behavior{Chunks: 20, ChunkDelay: 50 * time.Millisecond, Reply: strings.Repeat("ab", 20)})
	defer fake.Close()
	const drain, grace = 400 * time.Millisecond, 5 * time.Second
	r := startRun(t, fake.URL, Options{DrainDelay: drain, ShutdownGrace: grace, MaxBodyBytes: 1 << 20})
	poll(t, 5*time.Second, "readyz 200 before shutdown", func() bool { return readyz(r.admin) == http.StatusOK })

	stream := openStream(t, r.public)
	cancelled := time.Now()
	r.cancel()

	// Readiness fails first, while the public listener is still open.
	poll(t, drain, "readyz 503 during the drain delay", func() bool { return readyz(r.admin) == http.StatusServiceUnavailable })
	if !dialable(r.public) {
		t.Fatal("the listener closed before readiness had failed for the drain delay")
	}
	// Then the listener closes: new connections are refused while the
	// stream is still running.
	closed := poll(t, drain+2*time.Second, "new connections refused after the drain delay", func() bool { return !dialable(r.public) })
	t.Logf("listener closed %v after cancel (drain delay %v)", closed.Round(time.Millisecond), drain)

	select {
	case body := <-stream:
		if !strings.HasSuffix(strings.TrimSpace(body), "data: [DONE]") || strings.Contains(body, `"error"`) {
			t.Fatalf("the in-flight stream did not finish cleanly:\n%s", body)
		}
		if n := strings.Count(body, `"content":"ab"`); n != 20 {
			t.Errorf("the in-flight stream carries %d of the 20 pieces of the answer:\n%s", n, body)
		}
	case <-time.After(grace):
		t.Fatal("the in-flight stream did not finish within the grace period")
	}
	r.waitReturn(t, grace+time.Second)
	t.Logf("Run returned %v after cancel", time.Since(cancelled).Round(time.Millisecond))
	if time.Since(cancelled) > drain+grace {
		t.Errorf("Run took %v to return; drain %v + grace %v is the bound", time.Since(cancelled), drain, grace)
	}
}

// TestShutdownCutsStreamsLongerThanGrace cancels Run during a ~6s stream
// with a 300ms grace: the stream is cut (no [DONE]) and Run returns within
// the bound.
func TestShutdownCutsStreamsLongerThanGrace(t *testing.T) {
	fake := fakeprovider.Start(fakeprovider.Behavior{Chunks: 20, ChunkDelay: 300 * time.Millisecond})
	defer fake.Close()
	const grace = 300 * time.Millisecond
	r := startRun(t, fake.URL, Options{ShutdownGrace: grace, MaxBodyBytes: 1 << 20})
	stream := openStream(t, r.public)
	cancelled := time.Now()
	r.cancel()
	r.waitReturn(t, grace+2*time.Second)
	t.Logf("Run returned %v after cancel (grace %v)", time.Since(cancelled).Round(time.Millisecond), grace)
	select {
	case body := <-stream:
		if strings.Contains(body, "data: [DONE]") {
			t.Fatalf("a stream longer than the grace period finished anyway:\n%s", body)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the client's stream was not cut after the grace period")
	}
}

// TestPublicServerHardening checks the public listener's limits: a client
// that sends its headers slower than ReadHeaderTimeout is disconnected,
// oversized headers get 431, oversized bodies an OpenAI 413 error (with
// and without Content-Length), and the replica keeps serving.
func TestPublicServerHardening(t *testing.T) {
	fake := fakeprovider.Start(fakeprovider.Behavior{})
	defer fake.Close()
	const rht = 300 * time.Millisecond
	r := startRun(t, fake.URL, Options{ShutdownGrace: time.Second, MaxBodyBytes: 1 << 20, ReadHeaderTimeout: rht, BodyTimeout: rht})
	base := "http://" + r.public

	t.Run("slowloris", func(t *testing.T) {
		c, err := net.Dial("tcp", r.public)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			head := "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + fileModeKey + "\r\n"
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := c.Write([]byte{head[i%len(head)]}); err != nil {
					return
				}
			}
		}()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.Copy(io.Discard, c) // returns when the server closes
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("the slow client was still connected after 5s (ReadHeaderTimeout %v)", rht)
		}
		t.Logf("slow client disconnected after %v (ReadHeaderTimeout %v)", time.Since(start).Round(time.Millisecond), rht)
	})

	t.Run("slow body", func(t *testing.T) {
		// Headers at once, then the body a byte at a time, forever: the
		// request must end within the body read timeout, not hold the
		// connection and its goroutine.
		c, err := net.Dial("tcp", r.public)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		_, _ = io.WriteString(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+fileModeKey+"\r\nContent-Length: 100000\r\n\r\n{")
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer to a body trickling in for 5s (body read timeout %v): %v", rht, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestTimeout || !bytes.Contains(b, []byte(`"code":"request_timeout"`)) {
			t.Fatalf("got %d %s; want a 408 OpenAI error", resp.StatusCode, b)
		}
		t.Logf("slow body answered %d after %v", resp.StatusCode, time.Since(start).Round(time.Millisecond))
	})

	t.Run("slow body with a wrong key", func(t *testing.T) {
		// Refused before the body is read: the answer must not wait for
		// the body net/http would otherwise drain first.
		c, err := net.Dial("tcp", r.public)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		_, _ = io.WriteString(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tg-wrong\r\nContent-Length: 1000\r\n\r\n{")
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer to an unauthenticated request whose body trickles in: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("got %d, want 401", resp.StatusCode)
		}
		t.Logf("answered %d after %v", resp.StatusCode, time.Since(start).Round(time.Millisecond))
	})

	t.Run("oversized headers", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+fileModeKey)
		req.Header.Set("X-Padding", strings.Repeat("a", 128<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", resp.StatusCode)
		}
	})

	for _, chunked := range []bool{false, true} {
		t.Run("oversized body, chunked="+map[bool]string{false: "false", true: "true"}[chunked], func(t *testing.T) {
			body := `{"model":"small","messages":[{"role":"user","content":"` + strings.Repeat("a", 2<<20) + `"}]}`
			var rd io.Reader = strings.NewReader(body)
			if chunked {
				rd = io.MultiReader(rd) // hides the length: Transfer-Encoding: chunked
			}
			req, _ := http.NewRequest("POST", base+"/v1/chat/completions", rd)
			req.Header.Set("Authorization", "Bearer "+fileModeKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !bytes.Contains(b, []byte(`"code":"request_too_large"`)) {
				t.Fatalf("got %d %s; want a 413 OpenAI error", resp.StatusCode, b)
			}
		})
	}

	req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(`{"model":"small","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+fileModeKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after the hardening cases the replica answered %d", resp.StatusCode)
	}
}

// TestShutdownFlushesUsage runs the data plane against a push server that
// also takes usage reports, and cancels Run while a stream is in flight:
// the stream finishes, and the last report, acknowledged before Run
// returns, counts every request including that stream.
func TestShutdownFlushesUsage(t *testing.T) {
	fake := fakeprovider.Start(fakeprovider.Behavior{Chunks: 10, ChunkDelay: 50 * time.Millisecond, Reply: strings.Repeat("ab", 10)})
	defer fake.Close()
	in, err := compiler.ParseManifests("usage", []byte(fileModeManifests(fake.URL, "small")))
	if err != nil {
		t.Fatal(err)
	}
	out := compiler.Compile(in)
	if out.Err != nil {
		t.Fatal(out.Err)
	}
	const token = "push-token-for-the-usage-test-0123456789"
	ps := push.NewServer(push.Options{Auth: push.NewStaticTokenAuth(token), Log: logr.Discard()})
	ps.Publish(out.Table)
	var mu gosync.Mutex
	var lastRequests int64
	var reports int
	mux := http.NewServeMux()
	mux.Handle("/", ps.Handler())
	mux.HandleFunc("POST /v1/usage", func(w http.ResponseWriter, r *http.Request) {
		var rep metering.Report
		if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var n int64
		for _, k := range rep.Keys {
			n += k.Requests
		}
		mu.Lock()
		if len(rep.Keys) > 0 {
			lastRequests = n
		}
		reports++
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(metering.Ack{Seq: rep.Seq, Replicas: 1})
	})
	hs := httptest.NewServer(mux)
	defer hs.Close()

	ready := make(chan [2]string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", ControllerURL: hs.URL, Token: token, ReplicaID: "usage-0",
			ShutdownGrace: 5 * time.Second, MaxBodyBytes: 1 << 20, Ready: func(p, a string) { ready <- [2]string{p, a} }}, logr.Discard())
	}()
	var public string
	select {
	case a := <-ready:
		public = a[0]
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("data plane did not start")
	}
	served := 0
	chat := func() int {
		req, _ := http.NewRequest("POST", "http://"+public+"/v1/chat/completions", strings.NewReader(`{"model":"small","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+fileModeKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			served++
		}
		return resp.StatusCode
	}
	poll(t, 10*time.Second, "the pushed table is served", func() bool { return chat() == http.StatusOK })
	for i := 0; i < 3; i++ {
		if code := chat(); code != http.StatusOK {
			t.Fatalf("chat: %d", code)
		}
	}
	stream := openStream(t, public)
	served++
	cancel()
	if body := <-stream; !strings.Contains(body, "data: [DONE]") {
		t.Fatalf("the in-flight stream did not finish:\n%s", body)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	mu.Lock()
	defer mu.Unlock()
	if lastRequests != int64(served) {
		t.Fatalf("the last usage report before exit counts %d requests; %d were served (%d reports)", lastRequests, served, reports)
	}
	t.Logf("%d reports; the last counts all %d requests", reports, served)
}
