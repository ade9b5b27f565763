package mcp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"tollgate.dev/tollgate/dataplane/routetable"
)

// fingerprint identifies everything about a server that changes how the
// gateway connects to it. Connections and discovered tool lists are keyed by
// it, so a new endpoint or a rotated credential never reuses an old session.
// It is a hash so the credential never sits in a map key or a log line.
func fingerprint(s *routetable.MCPServer) string {
	h := sha256.New()
	for _, f := range []string{s.ID, s.Endpoint, string(s.Transport), s.AuthHeader, s.AuthValue} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// authTransport injects the upstream credential into every request the SDK
// client makes to the server's own origin. Requests to any other origin (a
// redirect, or an SSE server announcing a foreign message endpoint) go out
// without it, so a misbehaving server cannot make the gateway hand the
// credential to a third party.
type authTransport struct {
	base   http.RoundTripper
	origin string // canonical scheme://host:port of the endpoint
	header string
	value  string
}

func (t *authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.header == "" || canonicalOrigin(r.URL) != t.origin {
		return t.base.RoundTrip(r)
	}
	r2 := r.Clone(r.Context())
	r2.Header.Set(t.header, t.value)
	return t.base.RoundTrip(r2)
}

// canonicalOrigin is scheme://host:port with the default port made explicit.
func canonicalOrigin(u *url.URL) string {
	if u == nil {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return scheme + "://" + strings.ToLower(u.Hostname()) + ":" + port
}

// conn is one upstream MCP session: either the discovery session of a server
// (keyID "") or the session a virtual key's calls use. Keys never share a
// session, so whatever state an upstream keeps per session stays per key.
type conn struct {
	poolKey string
	fp      string
	keyID   string

	mu     sync.Mutex // serialises connecting
	cs     *sdk.ClientSession
	cancel context.CancelFunc

	// guarded by upstreams.mu
	refs     int
	retired  bool
	lastUsed time.Time
}

// upstreams owns every session to every upstream server.
type upstreams struct {
	base          http.RoundTripper
	checkRedirect func(*http.Request, []*http.Request) error
	ctx           context.Context // cancelled by Gateway.Close
	impl          *sdk.Implementation
	// onListChanged is called when a server announces that its tools changed.
	onListChanged func(fp string)
	idleTimeout   time.Duration
	now           func() time.Time

	mu        sync.Mutex
	conns     map[string]*conn
	lastSweep time.Time
}

// acquire returns the session for (server, key), connecting if needed. The
// caller must call release when its request is done.
func (u *upstreams) acquire(s *routetable.MCPServer, keyID string, connectTimeout time.Duration) (*conn, *sdk.ClientSession, error) {
	fp := fingerprint(s)
	pk := fp + "\x00" + keyID
	u.mu.Lock()
	c := u.conns[pk]
	if c == nil {
		c = &conn{poolKey: pk, fp: fp, keyID: keyID}
		u.conns[pk] = c
	}
	c.refs++
	c.lastUsed = u.now()
	u.sweepLocked()
	u.mu.Unlock()

	cs, err := c.session(u, s, connectTimeout)
	if err != nil {
		u.release(c)
		return nil, nil, err
	}
	return c, cs, nil
}

// session connects c if it has no live session. The attempt is bounded by
// timeout but not by any one caller's context: the session outlives the call
// that opened it, and the SSE transport ties its stream to the context it
// connected with.
func (c *conn) session(u *upstreams, s *routetable.MCPServer, timeout time.Duration) (*sdk.ClientSession, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cs != nil {
		return c.cs, nil
	}
	ctx, cancel := context.WithCancel(u.ctx)
	timer := time.AfterFunc(timeout, cancel)
	cs, err := u.connect(ctx, s, c.keyID != "")
	if !timer.Stop() {
		// The deadline fired while connecting; whatever came back is bound to
		// a cancelled context and unusable.
		if cs != nil {
			_ = cs.Close()
		}
		cancel()
		return nil, fmt.Errorf("connect timed out after %s", timeout)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	c.cs, c.cancel = cs, cancel
	return cs, nil
}

// connect opens an initialized SDK client session to s.
func (u *upstreams) connect(ctx context.Context, s *routetable.MCPServer, callsOnly bool) (*sdk.ClientSession, error) {
	ep, err := url.Parse(s.Endpoint)
	if err != nil || (ep.Scheme != "http" && ep.Scheme != "https") || ep.Host == "" {
		return nil, errors.New("invalid endpoint")
	}
	hc := &http.Client{
		Transport: &authTransport{
			base:   u.base,
			origin: canonicalOrigin(ep),
			header: s.AuthHeader,
			value:  s.AuthValue,
		},
		CheckRedirect: u.checkRedirect,
	}
	var t sdk.Transport
	switch s.Transport {
	case routetable.MCPSSE:
		t = &sdk.SSEClientTransport{Endpoint: s.Endpoint, HTTPClient: hc}
	case routetable.MCPStreamableHTTP, "":
		// Sessions that only carry one key's calls skip the standalone
		// stream: list changes arrive on the server's discovery session.
		t = &sdk.StreamableClientTransport{Endpoint: s.Endpoint, HTTPClient: hc, DisableStandaloneSSE: callsOnly}
	default:
		return nil, fmt.Errorf("unsupported transport %q", s.Transport)
	}
	fp := fingerprint(s)
	client := sdk.NewClient(u.impl, &sdk.ClientOptions{
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
			if u.onListChanged != nil {
				u.onListChanged(fp)
			}
		},
	})
	return client.Connect(ctx, t, nil)
}

// invalidate drops cs from c if it is still c's session, so the next call
// reconnects. Used after a transport failure.
func (u *upstreams) invalidate(c *conn, cs *sdk.ClientSession) {
	c.mu.Lock()
	if c.cs != cs {
		c.mu.Unlock()
		return
	}
	cancel := c.cancel
	c.cs, c.cancel = nil, nil
	c.mu.Unlock()
	go closeSession(cs, cancel)
}

// release ends one use of c, closing it if it was retired meanwhile.
func (u *upstreams) release(c *conn) {
	u.mu.Lock()
	c.refs--
	c.lastUsed = u.now()
	closeNow := c.retired && c.refs == 0
	u.mu.Unlock()
	if closeNow {
		c.close()
	}
}

// retire removes every session for which keep returns false (all of them
// when keep is nil). Sessions in use are closed when their last call ends,
// so in-flight calls finish on the configuration they started with.
func (u *upstreams) retire(keep func(fp, keyID string) bool) {
	u.mu.Lock()
	var closing []*conn
	for pk, c := range u.conns {
		if keep != nil && keep(c.fp, c.keyID) {
			continue
		}
		delete(u.conns, pk)
		c.retired = true
		if c.refs == 0 {
			closing = append(closing, c)
		}
	}
	u.mu.Unlock()
	for _, c := range closing {
		c.close()
	}
}

// sweepLocked closes per-key sessions idle for longer than idleTimeout. It
// runs at most once a minute, on the acquire path, so no goroutine is needed.
func (u *upstreams) sweepLocked() {
	now := u.now()
	if now.Sub(u.lastSweep) < time.Minute {
		return
	}
	u.lastSweep = now
	for pk, c := range u.conns {
		if c.keyID != "" && c.refs == 0 && now.Sub(c.lastUsed) > u.idleTimeout {
			delete(u.conns, pk)
			c.retired = true
			go c.close()
		}
	}
}

// closeAll closes every session; used by Gateway.Close.
func (u *upstreams) closeAll() {
	u.retire(nil)
}

func (c *conn) close() {
	c.mu.Lock()
	cs, cancel := c.cs, c.cancel
	c.cs, c.cancel = nil, nil
	c.mu.Unlock()
	if cs != nil {
		closeSession(cs, cancel)
	}
}

func closeSession(cs *sdk.ClientSession, cancel context.CancelFunc) {
	_ = cs.Close()
	if cancel != nil {
		cancel()
	}
}

// Codes the SDK's client side uses for failures of its own transport, not
// answers from the server: a failed HTTP exchange is wrapped in "rejected
// by transport" (-32005); a closed session answers "client is closing"
// (-32003).
var (
	errRejected      = &jsonrpc.Error{Code: -32005}
	errClientClosing = &jsonrpc.Error{Code: -32003}
)

// isTransportError reports whether err means the session itself is broken
// or the server never answered (as opposed to the server answering with a
// JSON-RPC error).
func isTransportError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, errRejected) || errors.Is(err, errClientClosing) {
		return true
	}
	var werr *jsonrpc.Error
	return !errors.As(err, &werr)
}

// scrubber removes a server's credential from text that may reach a client
// or a log: upstream error messages and tool results sometimes echo request
// headers back.
type scrubber []string

func newScrubber(s *routetable.MCPServer) scrubber {
	var out scrubber
	add := func(v string) {
		v = strings.TrimSpace(v)
		// Very short values would corrupt unrelated text and are not
		// credentials worth the name.
		if len(v) >= 8 {
			out = append(out, v)
		}
	}
	add(s.AuthValue)
	if _, tok, ok := strings.Cut(s.AuthValue, " "); ok {
		add(tok) // "Bearer <token>": the token alone is the secret
	}
	if u, err := url.Parse(s.Endpoint); err == nil {
		if p, ok := u.User.Password(); ok {
			add(p)
		}
		// Endpoints sometimes carry their credential in the query
		// ("?api_key=..."); the endpoint itself is not secret, but a
		// long query value may be.
		for _, vs := range u.Query() {
			for _, v := range vs {
				add(v)
			}
		}
	}
	return out
}

const redacted = "[REDACTED]"

func (sc scrubber) String(s string) string {
	for _, v := range sc {
		s = strings.ReplaceAll(s, v, redacted)
	}
	return s
}

// jsonForms lists every secret as it appears inside a JSON string literal,
// so JSON text can be scrubbed without decoding it.
func (sc scrubber) jsonForms() []string {
	out := make([]string, 0, len(sc))
	for _, v := range sc {
		b, _ := json.Marshal(v)
		out = append(out, strings.Trim(string(b), `"`))
	}
	return out
}

// JSON scrubs secrets out of encoded JSON, returning b itself when it holds
// none.
func (sc scrubber) JSON(b []byte) []byte {
	s := string(b)
	changed := false
	for _, f := range sc.jsonForms() {
		if strings.Contains(s, f) {
			s = strings.ReplaceAll(s, f, redacted)
			changed = true
		}
	}
	if !changed {
		return b
	}
	return []byte(s)
}
