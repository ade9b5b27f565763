package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/sync/wire"
)

const waitFor = 10 * time.Second

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

func testTable(t testing.TB, n int) *routetable.Table {
	t.Helper()
	tb := &routetable.Table{
		Generations: map[string]int64{"Route/default/chat": int64(n)},
		Providers: []routetable.Provider{{
			ID: "default/p", Namespace: "default", Name: "p", Type: routetable.ProviderOpenAI,
			BaseURL: "http://127.0.0.1:1", APIKey: "sk-secret",
		}},
		Routes: []routetable.Route{{
			ID: "default/chat", Namespace: "default", Name: "chat", Model: fmt.Sprint("m", n),
			Targets: []routetable.Target{{Provider: "default/p", Model: "x", Weight: 1}},
		}},
	}
	if err := tb.Finalize(); err != nil {
		t.Fatal(err)
	}
	return tb
}

// rawReplica speaks the wire protocol by hand, so the server can be tested
// with replicas that misbehave (stay silent, ack late, reconnect).
type rawReplica struct {
	t      testing.TB
	pw     *io.PipeWriter
	dec    *json.Decoder
	resp   *http.Response
	cancel context.CancelFunc
}

func dial(t testing.TB, url, id, token string) (*rawReplica, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+wire.StreamPath+"?"+wire.ReplicaParam+"="+id, pr)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &rawReplica{t: t, pw: pw, dec: json.NewDecoder(resp.Body), resp: resp, cancel: cancel}
	t.Cleanup(r.close)
	return r, resp.StatusCode
}

func (r *rawReplica) close() {
	r.cancel()
	_ = r.pw.Close()
	_ = r.resp.Body.Close()
}

// next returns the next message that is not a heartbeat.
func (r *rawReplica) next() (wire.Message, error) {
	for {
		var m wire.Message
		if err := r.dec.Decode(&m); err != nil {
			return m, err
		}
		if m.Type != wire.TypeHeartbeat {
			return m, nil
		}
	}
}

func (r *rawReplica) send(m wire.Message) {
	b, _ := json.Marshal(m)
	if _, err := r.pw.Write(append(b, '\n')); err != nil {
		r.t.Fatal(err)
	}
}

func newTestServer(t *testing.T, heartbeat, timeout time.Duration) (*Server, string) {
	s := NewServer(Options{
		Auth: NewStaticTokenAuth("tok"), Log: testr.New(t),
		Heartbeat: heartbeat, ReplicaTimeout: timeout,
	})
	hs := httptest.NewUnstartedServer(s.Handler())
	hs.Start()
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
	})
	return s, hs.URL
}

func replica(s *Server, id string) (Replica, bool) {
	for _, r := range s.Replicas() {
		if r.ID == id {
			return r, true
		}
	}
	return Replica{}, false
}

func TestStaticTokenAuth(t *testing.T) {
	a := NewStaticTokenAuth("secret")
	for hdr, ok := range map[string]bool{
		"Bearer secret":   true,
		"bearer secret":   true,
		"Bearer  secret ": true,
		"Bearer secret2":  false,
		"Bearer secre":    false,
		"Bearer ":         false,
		"secret":          false,
		"":                false,
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Authorization", hdr)
		id, err := a.Authenticate(r)
		if ok != (err == nil) || (err != nil && !errors.Is(err, ErrUnauthenticated)) {
			t.Errorf("%q: identity %q, err %v", hdr, id, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: error %q mentions the token", hdr, err)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("Authorization", "Bearer ")
	if _, err := NewStaticTokenAuth("").Authenticate(r); err == nil {
		t.Error("an empty configured token accepted a request")
	}
}

func TestRejectsBeforeSendingAnything(t *testing.T) {
	s, url := newTestServer(t, 10*time.Second, time.Minute)
	s.Publish(testTable(t, 1))
	r, code := dial(t, url, "dp-0", "wrong")
	if code != http.StatusUnauthorized || r.resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("status %d, WWW-Authenticate %q", code, r.resp.Header.Get("WWW-Authenticate"))
	}
	body, _ := io.ReadAll(r.resp.Body)
	if strings.Contains(string(body), "sk-secret") {
		t.Error("401 body contains the table")
	}
	for _, id := range []string{"", "has%20space", strings.Repeat("x", 300)} {
		_, code := dial(t, url, id, "tok")
		if code != http.StatusBadRequest {
			t.Errorf("replica %q: status %d, want 400", id, code)
		}
	}
	if len(s.Replicas()) != 0 {
		t.Errorf("rejected streams were registered: %v", s.Replicas())
	}
	// Other methods and paths are not served.
	resp, err := http.Get(url + wire.StreamPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d", resp.StatusCode)
	}
}

type failingAuth struct{}

func (failingAuth) Authenticate(*http.Request) (string, error) {
	return "", errors.New("apiserver unreachable")
}

func TestTransientAuthFailureIs503(t *testing.T) {
	s := NewServer(Options{Auth: failingAuth{}, Log: testr.New(t)})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	resp, err := http.Post(hs.URL+wire.StreamPath+"?replica=a", wire.ContentType, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", resp.StatusCode)
	}
}

func TestSilentReplicaIsDisconnectedAndForgotten(t *testing.T) {
	s, url := newTestServer(t, 20*time.Millisecond, 150*time.Millisecond)
	r, code := dial(t, url, "dp-0", "tok")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if m, err := r.next(); err != nil || m.Type != wire.TypeHello || m.HeartbeatMillis != 20 {
		t.Fatalf("first message %+v, %v", m, err)
	}
	eventually(t, "the replica to be listed", func() bool { _, ok := replica(s, "dp-0"); return ok })
	// Say nothing: the server must end the stream after ReplicaTimeout.
	start := time.Now()
	for {
		if _, err := r.next(); err != nil {
			break
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("silent replica dropped after %s", d)
	}
	eventually(t, "disconnected", func() bool { rep, ok := replica(s, "dp-0"); return ok && !rep.Connected })
	eventually(t, "forgotten", func() bool { _, ok := replica(s, "dp-0"); return !ok })
}

func TestHeartbeatsKeepAReplica(t *testing.T) {
	s, url := newTestServer(t, 20*time.Millisecond, 400*time.Millisecond)
	r, _ := dial(t, url, "dp-0", "tok")
	done := make(chan struct{})
	defer close(done)
	go func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				b, _ := json.Marshal(wire.Message{Type: wire.TypeHeartbeat})
				if _, err := r.pw.Write(append(b, '\n')); err != nil {
					return
				}
			}
		}
	}()
	// Count server heartbeats for 2 replica timeouts; the stream must stay up.
	deadline := time.Now().Add(800 * time.Millisecond)
	beats := 0
	for time.Now().Before(deadline) {
		var m wire.Message
		if err := r.dec.Decode(&m); err != nil {
			t.Fatalf("stream ended although the replica sent heartbeats: %v", err)
		}
		if m.Type == wire.TypeHeartbeat {
			beats++
		}
	}
	if beats < 5 {
		t.Errorf("only %d server heartbeats in 800ms at a 20ms interval", beats)
	}
	if rep, _ := replica(s, "dp-0"); !rep.Connected {
		t.Error("replica not connected")
	}
}

func TestAckedTablesAreKept(t *testing.T) {
	s, url := newTestServer(t, 10*time.Second, time.Minute)
	t1, t2, t3 := testTable(t, 1), testTable(t, 2), testTable(t, 3)
	s.Publish(t1)
	r, _ := dial(t, url, "dp-0", "tok")
	if m, _ := r.next(); m.Type != wire.TypeHello {
		t.Fatalf("got %+v", m)
	}
	if m, _ := r.next(); m.Type != wire.TypeTable || m.Version != t1.Version {
		t.Fatalf("got %+v", m)
	}
	r.send(wire.Message{Type: wire.TypeAck, Version: t1.Version})
	eventually(t, "ack of t1", func() bool { rep, _ := replica(s, "dp-0"); return rep.Acked == t1 })

	// Two newer versions are published; the replica has not answered them.
	s.Publish(t2)
	s.Publish(t3)
	s.Publish(t3) // a no-op
	s.Publish(nil)
	s.Publish(&routetable.Table{})
	rep, _ := replica(s, "dp-0")
	if rep.Acked != t1 {
		t.Fatalf("the acked table was dropped: %+v", rep)
	}
	// Drain what was sent; it may be coalesced to t3 only.
	got := map[string]bool{}
	for !got[t3.Version] {
		m, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		got[m.Version] = true
	}
	if got[t2.Version] {
		// t2 was sent: the replica may still ack it, so it is kept.
		s.mu.Lock()
		_, kept := s.tables[t2.Version]
		s.mu.Unlock()
		if !kept {
			t.Error("a table sent and not yet answered was dropped")
		}
	}
	r.send(wire.Message{Type: wire.TypeAck, Version: t3.Version})
	eventually(t, "ack of t3", func() bool { rep, _ := replica(s, "dp-0"); return rep.Acked == t3 })
	s.mu.Lock()
	n := len(s.tables)
	s.mu.Unlock()
	if n != 1 {
		t.Errorf("%d tables kept, want only the latest", n)
	}

	// A late ack of a version the server no longer has: listed, Acked nil.
	r.send(wire.Message{Type: wire.TypeAck, Version: "0123456789abcdef"})
	eventually(t, "unknown ack", func() bool {
		rep, _ := replica(s, "dp-0")
		return rep.AckedVersion == "0123456789abcdef" && rep.Acked == nil
	})
}

func TestReconnectSupersedesTheOldStream(t *testing.T) {
	s, url := newTestServer(t, 10*time.Second, time.Minute)
	s.Publish(testTable(t, 1))
	old, _ := dial(t, url, "dp-0", "tok")
	if m, _ := old.next(); m.Type != wire.TypeHello {
		t.Fatal(m)
	}
	<-s.Changes()
	fresh, _ := dial(t, url, "dp-0", "tok")
	if m, _ := fresh.next(); m.Type != wire.TypeHello {
		t.Fatal(m)
	}
	// The old stream is closed by the server.
	for {
		if _, err := old.next(); err != nil {
			break
		}
	}
	old.close()
	// The replica is still connected through the fresh stream.
	eventually(t, "one connected replica", func() bool {
		reps := s.Replicas()
		return len(reps) == 1 && reps[0].Connected
	})
	select {
	case <-s.Changes():
	case <-time.After(waitFor):
		t.Error("no change notification for a reconnect")
	}
	// Nacks are recorded with their message.
	m, _ := fresh.next()
	fresh.send(wire.Message{Type: wire.TypeNack, Version: m.Version, Error: "boom"})
	eventually(t, "nack", func() bool {
		rep, _ := replica(s, "dp-0")
		return rep.Error == "boom" && rep.NackedVersion == m.Version
	})
}
