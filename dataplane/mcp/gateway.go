// Package mcp is the data plane's MCP control plane: one Streamable HTTP
// endpoint (/mcp) in front of every upstream MCP server the routing table
// names. A client authenticates with its virtual key and sees, as one MCP
// server, exactly the tools its key may call; each call is forwarded to the
// upstream that owns the tool with the upstream's credential injected, and
// written to an audit trail.
//
// The protocol on both sides is the official MCP Go SDK: its server side
// (StreamableHTTPHandler) faces clients, its client side (Streamable HTTP and
// HTTP+SSE transports) faces upstreams. The gateway answers tools/list and
// tools/call itself through a receiving middleware, so the tool list is
// computed per request from the live table and the latest discovery, and
// never stored in a session another key could reach.
package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"

	"tollgate.dev/tollgate/dataplane/routetable"
)

// AuthenticateFunc resolves the virtual key of a client request against a
// table. A non-nil error refuses the request with 401; its message is shown
// to the client, so it must not contain the presented key. The data plane
// passes an adapter around server.Authenticate.
type AuthenticateFunc func(r *http.Request, t *routetable.Table, now time.Time) (*routetable.Key, error)

// Options configure a Gateway. Only Authenticate is required.
type Options struct {
	// Authenticate resolves virtual keys. Without it every request is
	// refused: the gateway fails closed.
	Authenticate AuthenticateFunc
	// AuditSink receives one JSON line per tool call; os.Stdout when nil.
	AuditSink io.Writer
	// Registerer receives the gateway's metrics; none are registered when
	// nil.
	Registerer prometheus.Registerer
	Log        logr.Logger
	// DiscoveryInterval is how often every upstream is asked for its tools
	// (its health check). Default 30s.
	DiscoveryInterval time.Duration
	// DefaultTimeout bounds connecting to and calling an upstream whose
	// MCPServer sets no Timeout. Default 30s.
	DefaultTimeout time.Duration
	// SessionIdleTimeout closes client sessions idle for that long. Default
	// 30 minutes; clients re-initialize transparently.
	SessionIdleTimeout time.Duration
	// UpstreamIdleTimeout closes a key's upstream session after that long
	// without calls. Default 10 minutes.
	UpstreamIdleTimeout time.Duration
	// Transport carries upstream requests; a clone of
	// http.DefaultTransport when nil.
	Transport http.RoundTripper
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// state is one table with the index the gateway derives from it. Requests
// load it once, so a request never mixes two tables.
type state struct {
	table *routetable.Table
	index *serverIndex
}

// Gateway serves the /mcp endpoint. Create it with NewGateway, feed it
// tables with SetTable, mount Handler, and Close it on shutdown.
type Gateway struct {
	opts    Options
	log     logr.Logger
	now     func() time.Time
	state   atomic.Pointer[state]
	setMu   sync.Mutex // serialises SetTable
	ups     *upstreams
	disc    *discoverer
	audit   *auditor
	metrics *metrics
	server  *sdk.Server
	handler http.Handler

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Version is reported to clients and upstreams as the implementation
// version.
const Version = "v1alpha1"

// NewGateway builds a gateway with an empty table and starts its discovery
// loop.
func NewGateway(opts Options) *Gateway {
	if opts.AuditSink == nil {
		opts.AuditSink = os.Stdout
	}
	if opts.DiscoveryInterval <= 0 {
		opts.DiscoveryInterval = 30 * time.Second
	}
	if opts.DefaultTimeout <= 0 {
		opts.DefaultTimeout = 30 * time.Second
	}
	if opts.SessionIdleTimeout <= 0 {
		opts.SessionIdleTimeout = 30 * time.Minute
	}
	if opts.UpstreamIdleTimeout <= 0 {
		opts.UpstreamIdleTimeout = 10 * time.Minute
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gateway{
		opts:    opts,
		log:     opts.Log,
		now:     opts.Now,
		audit:   &auditor{w: opts.AuditSink},
		metrics: newMetrics(opts.Registerer),
		ctx:     ctx,
		cancel:  cancel,
	}
	g.ups = &upstreams{
		base:        opts.Transport,
		ctx:         ctx,
		impl:        &sdk.Implementation{Name: "tollgate", Title: "Tollgate MCP gateway", Version: Version},
		idleTimeout: opts.UpstreamIdleTimeout,
		now:         opts.Now,
		conns:       map[string]*conn{},
		onListChanged: func(fp string) {
			g.disc.trigger(fp)
		},
	}
	g.disc = newDiscoverer(g)
	empty := &routetable.Table{}
	g.state.Store(&state{table: empty, index: newServerIndex(empty)})

	g.server = sdk.NewServer(&sdk.Implementation{Name: "tollgate", Title: "Tollgate MCP gateway", Version: Version}, &sdk.ServerOptions{
		// Tools only. The list is computed per request; clients are told
		// to re-list when a table or an upstream's tools change.
		Capabilities: &sdk.ServerCapabilities{Tools: &sdk.ToolCapabilities{ListChanged: true}},
	})
	g.server.AddReceivingMiddleware(g.toolsMiddleware)
	streamable := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return g.server }, &sdk.StreamableHTTPOptions{
		SessionTimeout: opts.SessionIdleTimeout,
		// Answers as plain JSON rather than a one-event SSE stream: the
		// gateway sends nothing to a client while a call runs, and this
		// halves the per-call overhead (BenchmarkToolCall).
		JSONResponse: true,
		// The gateway is reached through Services, ingresses and sidecars
		// that connect from loopback with the public Host header; virtual
		// keys, not the Host header, protect it.
		DisableLocalhostProtection: true,
	})
	// RequireBearerToken is how the SDK learns who owns a session: it binds
	// each session to TokenInfo.UserID (the key ID) and answers 403 to a
	// request for that session carrying another key.
	bind := auth.RequireBearerToken(func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		c, ok := ctx.Value(callerKey{}).(*caller)
		if !ok {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: c.key.ID, Extra: map[string]any{callerExtra: c}}, nil
	}, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})
	g.handler = g.authenticate(bind(streamable))

	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.disc.loop(ctx, opts.DiscoveryInterval)
	}()
	return g
}

// SetTable makes t the live table. Upstream sessions of servers that were
// removed or whose endpoint, transport or credential changed are closed
// (after their in-flight calls), as are sessions of keys no longer allowed;
// new servers are discovered at once.
func (g *Gateway) SetTable(t *routetable.Table) {
	if t == nil {
		t = &routetable.Table{}
	}
	g.setMu.Lock()
	defer g.setMu.Unlock()
	st := &state{table: t, index: newServerIndex(t)}
	prev := g.state.Swap(st)
	allowed := map[string]map[string]bool{}
	for i := range t.MCPServers {
		s := &t.MCPServers[i]
		keys := map[string]bool{"": true} // the discovery session
		for _, k := range s.Keys {
			keys[k] = true
		}
		allowed[fingerprint(s)] = keys
	}
	g.ups.retire(func(fp, keyID string) bool { return allowed[fp][keyID] })
	g.disc.sync(t)
	if prev == nil || prev.table.Version != t.Version || t.Version == "" {
		g.notifyToolsChanged()
	}
}

// placeholderTool is registered and removed at once to make the SDK send
// notifications/tools/list_changed to every client session (it has no API
// to send one directly). The middleware answers tools/list and tools/call
// itself, so no client can ever see or call it.
const placeholderTool = "tollgate.list-changed"

// notifyToolsChanged tells every client session to list its tools again.
// The SDK debounces bursts into one notification. Sessions of other keys
// are told too; re-listing shows them the same list, which costs little
// and reveals nothing.
func (g *Gateway) notifyToolsChanged() {
	g.server.AddTool(&sdk.Tool{Name: placeholderTool, InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return nil, errors.New("not a tool")
		})
	g.server.RemoveTools(placeholderTool)
}

// Handler serves MCP Streamable HTTP; mount it at /mcp.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Close ends every client session (closing their open streams, so an HTTP
// server's Shutdown is not held up by idle MCP clients; register it with
// http.Server.RegisterOnShutdown), stops discovery and closes every upstream
// session. Calls still running fail; clients retry on another replica.
func (g *Gateway) Close() error {
	g.once.Do(func() {
		for ss := range g.server.Sessions() {
			_ = ss.Close()
		}
		g.cancel()
		// After this no check starts, so the WaitGroup only goes down.
		g.disc.mu.Lock()
		g.disc.closed = true
		g.disc.mu.Unlock()
		g.wg.Wait()
		g.ups.closeAll()
	})
	return nil
}

// caller is the authenticated client of one HTTP request, with the table it
// was authenticated against.
type caller struct {
	key   *routetable.Key
	state *state
}

type callerKey struct{}

// callerExtra is the TokenInfo.Extra entry that carries the caller into SDK
// request handlers.
const callerExtra = "tollgate.caller"

// callerOf returns the caller of an SDK request, or nil.
func callerOf(req sdk.Request) *caller {
	extra := req.GetExtra()
	if extra == nil || extra.TokenInfo == nil {
		return nil
	}
	c, _ := extra.TokenInfo.Extra[callerExtra].(*caller)
	return c
}

// authenticate resolves the virtual key and answers 401 itself, with a
// message a user can act on, before the SDK sees the request.
func (g *Gateway) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := g.state.Load()
		var (
			key *routetable.Key
			err error
		)
		if g.opts.Authenticate == nil {
			err = errors.New("the MCP gateway has no key authenticator configured")
		} else {
			key, err = g.opts.Authenticate(r, st.table, g.now())
		}
		if err == nil && key == nil {
			err = errors.New("invalid virtual key")
		}
		if err != nil {
			writeUnauthorized(w, err.Error())
			return
		}
		ctx := context.WithValue(r.Context(), callerKey{}, &caller{key: key, state: st})
		r = r.WithContext(ctx)
		// The key is verified; from here on it is not needed, so it is
		// taken out of the headers the SDK hands to handlers. The
		// placeholder satisfies RequireBearerToken, which only checks that
		// a bearer token is present before asking our verifier.
		r.Header = r.Header.Clone()
		r.Header.Del("x-api-key")
		r.Header.Set("Authorization", "Bearer verified-virtual-key")
		next.ServeHTTP(w, r)
	})
}

func writeUnauthorized(w http.ResponseWriter, msg string) {
	body, _ := json.Marshal(map[string]any{"error": map[string]string{
		"message": msg,
		"type":    "authentication_error",
		"code":    "invalid_api_key",
	}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate"`)
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write(body)
}

// timeout is the bound on one connect or call to s.
func (g *Gateway) timeout(s *routetable.MCPServer) time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return g.opts.DefaultTimeout
}
