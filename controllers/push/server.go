// Package push is the server side of the control-plane -> data-plane push
// channel: data-plane replicas hold one long-lived, full-duplex HTTP request
// open to the controller; the controller writes every routing table it
// publishes down that request at once, and the replica writes back which
// version it applied (or why it could not). The messages are in
// dataplane/sync/wire, the client in dataplane/sync, the protocol in
// docs/push-channel.md.
//
// The table carries provider credentials, so every stream is authenticated
// (see Authenticator) and neither tables nor tokens are ever logged.
package push

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"
	"unicode"

	"github.com/go-logr/logr"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/sync/wire"
)

// Defaults for Options.
const (
	DefaultHeartbeat = wire.DefaultHeartbeat
	// maxReplicaMessage bounds one line from a replica: acks are tiny, a
	// heartbeat's report is bounded by wire.Report.Bound.
	maxReplicaMessage = wire.MaxReplicaMessage
	maxReplicaID      = 253
)

// Options configure a Server.
type Options struct {
	// Auth authenticates every stream. Required: without it every stream is
	// refused.
	Auth Authenticator
	Log  logr.Logger
	// Heartbeat is how often both sides send a heartbeat (default 10s).
	Heartbeat time.Duration
	// ReplicaTimeout is how long a replica may stay silent before its stream
	// is closed, and how long a disconnected replica is still listed by
	// Replicas (default 3 x Heartbeat).
	ReplicaTimeout time.Duration
}

// Replica is what the controller knows about one data-plane replica.
type Replica struct {
	// ID is the name the replica gave (its pod name).
	ID string
	// Connected is true while the replica holds a stream open.
	Connected bool
	// AckedVersion is the version of the table the replica last said it
	// serves ("" before its first ack).
	AckedVersion string
	// Acked is that table, nil if the server no longer (or never) had it,
	// e.g. after a controller restart.
	Acked *routetable.Table
	// LastSeen is when the replica last sent anything.
	LastSeen time.Time
	// Identity is the authenticated identity of the stream (never a token).
	Identity string
	// NackedVersion and Error describe the last table the replica rejected;
	// both are cleared when it acknowledges a newer one.
	NackedVersion string
	Error         string
	// Report is the replica's latest view of its upstreams (target health,
	// MCP servers), nil before its first report. It is not cleared when the
	// replica disconnects; callers decide whether to trust a disconnected
	// replica's report.
	Report *wire.Report
}

// Server is the controller's end of the push channel. It is safe for
// concurrent use.
type Server struct {
	o       Options
	changes chan struct{}

	mu       sync.Mutex
	latest   *published
	updated  chan struct{} // closed and replaced on every Publish
	tables   map[string]*routetable.Table
	replicas map[string]*replicaState
	nextConn uint64
}

type published struct {
	table *routetable.Table
	line  []byte // the encoded wire.TypeTable message, newline-terminated
}

type replicaState struct {
	id       string
	identity string
	conn     uint64 // id of the live stream, 0 if none
	cancel   context.CancelFunc
	acked    string
	nacked   string
	err      string
	sent     []string // versions sent on the live stream and not yet answered
	lastSeen time.Time
	report   *wire.Report
	// notified is the report as of the last Changes notification it caused,
	// so jitter below wire.SameHealth's resolution never notifies.
	notified *wire.Report
}

// NewServer returns a Server with nothing published yet: replicas that
// connect before the first Publish wait for it.
func NewServer(o Options) *Server {
	if o.Heartbeat <= 0 {
		o.Heartbeat = wire.DefaultHeartbeat
	}
	if o.ReplicaTimeout <= 0 {
		o.ReplicaTimeout = 3 * o.Heartbeat
	}
	if o.Auth == nil {
		o.Auth = denyAll{}
	}
	return &Server{
		o:        o,
		changes:  make(chan struct{}, 1),
		updated:  make(chan struct{}),
		tables:   map[string]*routetable.Table{},
		replicas: map[string]*replicaState{},
	}
}

// Handler serves the push channel (wire.StreamPath). Mount it on the controller's
// push listener; the server should allow long-lived requests (no
// WriteTimeout/ReadTimeout; ReadHeaderTimeout is fine).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+wire.StreamPath, s.stream)
	return mux
}

// Publish makes t (finalized) the latest table: every connected replica is
// sent it now, replicas that connect later get it first. Publishing the
// version that is already latest is a no-op.
func (s *Server) Publish(t *routetable.Table) {
	if t == nil || t.Version == "" {
		s.o.Log.Error(errors.New("table not finalized"), "Refusing to publish a routing table without a version")
		return
	}
	raw, err := json.Marshal(t)
	if err != nil {
		s.o.Log.Error(err, "Cannot encode routing table", "version", t.Version)
		return
	}
	line, err := json.Marshal(wire.Message{Type: wire.TypeTable, Version: t.Version, Table: raw})
	if err != nil {
		s.o.Log.Error(err, "Cannot encode routing table", "version", t.Version)
		return
	}
	line = append(line, '\n')

	s.mu.Lock()
	if s.latest != nil && s.latest.table.Version == t.Version {
		s.mu.Unlock()
		return
	}
	s.latest = &published{table: t, line: line}
	s.tables[t.Version] = t
	close(s.updated)
	s.updated = make(chan struct{})
	s.pruneLocked(time.Now())
	connected := 0
	for _, r := range s.replicas {
		if r.conn != 0 {
			connected++
		}
	}
	s.mu.Unlock()
	s.o.Log.Info("Published routing table", "version", t.Version, "bytes", len(raw), "connectedReplicas", connected)
}

// Replicas lists the connected replicas and those disconnected less than
// ReplicaTimeout ago, sorted by ID.
func (s *Server) Replicas() []Replica {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(time.Now())
	out := make([]Replica, 0, len(s.replicas))
	for _, r := range s.replicas {
		out = append(out, Replica{
			ID:            r.id,
			Connected:     r.conn != 0,
			AckedVersion:  r.acked,
			Acked:         s.tables[r.acked],
			LastSeen:      r.lastSeen,
			Identity:      r.identity,
			NackedVersion: r.nacked,
			Error:         r.err,
			Report:        r.report,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Changes receives (coalesced, buffered 1) whenever a replica connects,
// disconnects, acks or nacks, or its report changes meaningfully
// (wire.SameHealth). Call Replicas to see the new state.
func (s *Server) Changes() <-chan struct{} { return s.changes }

func (s *Server) notify() {
	select {
	case s.changes <- struct{}{}:
	default:
	}
}

// pruneLocked forgets replicas disconnected for longer than ReplicaTimeout
// and the tables no replica may still acknowledge.
func (s *Server) pruneLocked(now time.Time) {
	keep := map[string]bool{}
	if s.latest != nil {
		keep[s.latest.table.Version] = true
	}
	for id, r := range s.replicas {
		if r.conn == 0 && now.Sub(r.lastSeen) > s.o.ReplicaTimeout {
			delete(s.replicas, id)
			continue
		}
		keep[r.acked] = true
		for _, v := range r.sent {
			keep[v] = true
		}
	}
	for v := range s.tables {
		if !keep[v] {
			delete(s.tables, v)
		}
	}
}

func validReplicaID(id string) bool {
	if id == "" || len(id) > maxReplicaID {
		return false
	}
	for _, r := range id {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// stream serves one replica for the lifetime of its connection.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// HTTP/1.1 needs full duplex to read acks while writing tables; HTTP/2
	// always has it and reports ErrNotSupported. Enable it before any
	// response: otherwise net/http drains the (endless) request body before
	// sending even a 401.
	if err := rc.EnableFullDuplex(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.o.Log.Error(err, "Cannot enable full-duplex streaming")
		w.Header().Set("Connection", "close")
		http.Error(w, "full duplex unavailable", http.StatusInternalServerError)
		return
	}
	identity, err := s.o.Auth.Authenticate(r)
	if err != nil {
		w.Header().Set("Connection", "close")
		if errors.Is(err, ErrUnauthenticated) {
			s.o.Log.Info("Rejected push stream", "remote", r.RemoteAddr, "reason", err.Error())
			w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate-push"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		s.o.Log.Error(err, "Cannot authenticate push stream", "remote", r.RemoteAddr)
		http.Error(w, "authentication unavailable", http.StatusServiceUnavailable)
		return
	}
	id := r.URL.Query().Get(wire.ReplicaParam)
	if !validReplicaID(id) {
		w.Header().Set("Connection", "close")
		http.Error(w, "missing or invalid replica parameter", http.StatusBadRequest)
		return
	}
	log := s.o.Log.WithValues("replica", id, "identity", identity)

	w.Header().Set("Content-Type", wire.ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	conn := s.register(id, identity, func() { cancel(errSuperseded) })
	log.Info("Replica connected", "remote", r.RemoteAddr)
	defer func() {
		s.unregister(id, conn)
		log.Info("Replica disconnected", "reason", context.Cause(ctx).Error())
	}()

	write := func(line []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(s.o.ReplicaTimeout))
		if _, err := w.Write(line); err != nil {
			return err
		}
		return rc.Flush()
	}
	hello, _ := json.Marshal(wire.Message{Type: wire.TypeHello, HeartbeatMillis: s.o.Heartbeat.Milliseconds()})
	if err := write(append(hello, '\n')); err != nil {
		cancel(fmt.Errorf("write hello: %w", err))
		return
	}

	var lastHeard sync.Mutex
	heard := time.Now()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		err := s.readReplica(r.Body, rc, id, conn, func() {
			lastHeard.Lock()
			heard = time.Now()
			lastHeard.Unlock()
		})
		cancel(err)
	}()
	defer func() {
		// Unblock the reader (HTTP/1.1 would otherwise wait for the body
		// while finishing the response).
		_ = rc.SetReadDeadline(time.Now())
		<-readDone
	}()

	heartbeat, _ := json.Marshal(wire.Message{Type: wire.TypeHeartbeat})
	heartbeat = append(heartbeat, '\n')
	tick := time.NewTicker(s.o.Heartbeat)
	defer tick.Stop()
	sent := ""
	for {
		s.mu.Lock()
		p, updated := s.latest, s.updated
		if p != nil && p.table.Version != sent {
			if st := s.replicas[id]; st != nil && st.conn == conn {
				st.sent = append(st.sent, p.table.Version)
			}
		}
		s.mu.Unlock()
		if p != nil && p.table.Version != sent {
			if err := write(p.line); err != nil {
				cancel(fmt.Errorf("write table: %w", err))
				return
			}
			sent = p.table.Version
			log.V(1).Info("Sent routing table", "version", sent)
			continue
		}
		select {
		case <-updated:
		case <-tick.C:
			lastHeard.Lock()
			silent := time.Since(heard)
			lastHeard.Unlock()
			if silent > s.o.ReplicaTimeout {
				cancel(fmt.Errorf("replica silent for %s", silent.Round(time.Millisecond)))
				return
			}
			if err := write(heartbeat); err != nil {
				cancel(fmt.Errorf("write heartbeat: %w", err))
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

var errSuperseded = errors.New("superseded by a newer stream of the same replica")

// readReplica handles the replica's messages until its body ends or fails.
func (s *Server) readReplica(body io.Reader, rc *http.ResponseController, id string, conn uint64, heard func()) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 4096), maxReplicaMessage)
	for {
		_ = rc.SetReadDeadline(time.Now().Add(s.o.ReplicaTimeout))
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return fmt.Errorf("read: %w", err)
			}
			return errors.New("replica closed the stream")
		}
		heard()
		var m wire.Message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return fmt.Errorf("bad message from replica: %w", err)
		}
		s.handle(id, conn, m)
	}
}

func (s *Server) handle(id string, conn uint64, m wire.Message) {
	s.mu.Lock()
	st := s.replicas[id]
	if st == nil || st.conn != conn {
		s.mu.Unlock()
		return
	}
	st.lastSeen = time.Now()
	changed := false
	switch m.Type {
	case wire.TypeAck, wire.TypeHeartbeat:
		if m.Version != "" && m.Version != st.acked {
			st.acked = m.Version
			changed = true
		}
		if m.Type == wire.TypeAck && st.nacked != "" {
			st.nacked, st.err = "", ""
			changed = true
		}
		if m.Report != nil {
			// Reports are read only through Replicas, which copies the
			// pointer; a report is never modified after it is stored.
			st.report = m.Report
			if !wire.SameHealth(st.notified, m.Report) {
				st.notified = m.Report
				changed = true
			}
		}
	case wire.TypeNack:
		st.nacked, st.err = m.Version, m.Error
		changed = true
		s.o.Log.Info("Replica rejected routing table", "replica", id, "version", m.Version, "error", m.Error)
	}
	if m.Type == wire.TypeAck || m.Type == wire.TypeNack {
		if i := slices.Index(st.sent, m.Version); i >= 0 {
			st.sent = slices.Delete(st.sent, 0, i+1)
		}
		if m.Type == wire.TypeAck {
			s.o.Log.V(1).Info("Replica acknowledged routing table", "replica", id, "version", m.Version)
		}
	}
	if changed {
		s.pruneLocked(st.lastSeen)
	}
	s.mu.Unlock()
	if changed {
		s.notify()
	}
}

func (s *Server) register(id, identity string, cancel context.CancelFunc) uint64 {
	s.mu.Lock()
	s.nextConn++
	conn := s.nextConn
	st := s.replicas[id]
	if st == nil {
		st = &replicaState{id: id}
		s.replicas[id] = st
	} else if st.cancel != nil {
		st.cancel() // a stale stream of a replica that reconnected
	}
	st.conn, st.cancel, st.identity = conn, cancel, identity
	st.sent = nil
	st.lastSeen = time.Now()
	s.mu.Unlock()
	s.notify()
	return conn
}

func (s *Server) unregister(id string, conn uint64) {
	s.mu.Lock()
	st := s.replicas[id]
	if st == nil || st.conn != conn {
		s.mu.Unlock()
		return
	}
	st.conn, st.cancel, st.sent = 0, nil, nil
	st.lastSeen = time.Now()
	s.pruneLocked(st.lastSeen)
	s.mu.Unlock()
	s.notify()
}
