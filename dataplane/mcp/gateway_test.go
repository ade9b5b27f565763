package mcp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"tollgate.dev/tollgate/dataplane/routetable"
)

const (
	aliceSecret = "tg-alice-0123456789abcdef"
	bobSecret   = "tg-bob-0123456789abcdef"
	ghHeader    = "Authorization"
	ghValue     = "Bearer gh-upstream-secret-5f2a9c"
	fsHeader    = "X-Files-Token"
	fsValue     = "files-upstream-secret-77e1"
)

// upstream is a real MCP server built with the SDK, on loopback, that
// refuses (401) every HTTP request without its credential, as a real
// protected server would.
type upstream struct {
	srv        *httptest.Server
	handler    atomic.Pointer[http.Handler]
	newHandler func() http.Handler
	header     string
	value      string
	mu         sync.Mutex
	sawHeaders []http.Header
}

func (u *upstream) headers() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.sawHeaders)
}

func newUpstream(t testing.TB, transport routetable.MCPTransport, header, value string) *upstream {
	t.Helper()
	u := &upstream{header: header, value: value}
	s := sdk.NewServer(&sdk.Implementation{Name: "upstream", Version: "test"}, nil)
	obj := map[string]any{"type": "object"}
	s.AddTool(&sdk.Tool{Name: "echo", Description: "Echoes text.", InputSchema: obj},
		func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			var in struct {
				Text string `json:"text"`
			}
			_ = json.Unmarshal(req.Params.Arguments, &in)
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "echo: " + in.Text}}}, nil
		})
	// whoami reports whether the injected credential reached the tool
	// (Streamable HTTP hands request headers to tools; SSE does not, so
	// there the HTTP-level check below is the proof).
	s.AddTool(&sdk.Tool{Name: "whoami", InputSchema: obj},
		func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			if req.Extra != nil && req.Extra.Header != nil && req.Extra.Header.Get(header) != value {
				return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: "missing credential"}}}, nil
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "credential ok"}}}, nil
		})
	// leak echoes the credential back, as careless servers do in errors.
	s.AddTool(&sdk.Tool{Name: "leak", InputSchema: obj},
		func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return &sdk.CallToolResult{
				IsError:           true,
				Content:           []sdk.Content{&sdk.TextContent{Text: "denied for " + header + ": " + value}},
				StructuredContent: map[string]any{"sent": value},
			}, nil
		})
	s.AddTool(&sdk.Tool{Name: "fail", InputSchema: obj},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return nil, &jsonrpc.Error{Code: -32000, Message: "backend said no to " + value}
		})
	s.AddTool(&sdk.Tool{Name: "delete_repo", InputSchema: obj},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "deleted"}}}, nil
		})
	s.AddTool(&sdk.Tool{Name: "slow", InputSchema: obj},
		func(ctx context.Context, _ *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "late"}}}, nil
		})
	u.newHandler = func() http.Handler {
		if transport == routetable.MCPSSE {
			return sdk.NewSSEHandler(func(*http.Request) *sdk.Server { return s }, nil)
		}
		return sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, nil)
	}
	u.restart()
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.sawHeaders = append(u.sawHeaders, r.Header.Clone())
		u.mu.Unlock()
		if r.Header.Get(header) != value {
			http.Error(w, "upstream: bad credential", http.StatusUnauthorized)
			return
		}
		(*u.handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// restart replaces the MCP handler: every session the upstream knew is
// forgotten, as after a pod restart.
func (u *upstream) restart() {
	h := u.newHandler()
	u.handler.Store(&h)
}

func hashOf(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// testAuth stands in for server.Authenticate: bearer or x-api-key, looked up
// by hash.
func testAuth(r *http.Request, t *routetable.Table, _ time.Time) (*routetable.Key, error) {
	secret := r.Header.Get("x-api-key")
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		secret = v
	}
	if secret == "" {
		return nil, errors.New("no virtual key: send 'Authorization: Bearer <key>'")
	}
	k, ok := t.KeyByHash(hashOf(secret))
	if !ok {
		return nil, errors.New("incorrect virtual key")
	}
	return k, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) records(t *testing.T) []AuditRecord {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []AuditRecord
	sc := bufio.NewScanner(bytes.NewReader(s.b.Bytes()))
	for sc.Scan() {
		var r AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	gh, fs   *upstream
	gw       *Gateway
	front    *httptest.Server
	audit    *syncBuffer
	reg      *prometheus.Registry
	table    *routetable.Table
	clientRx *recorder // every byte the gateway sent to clients
}

func table(gh, fs *upstream) *routetable.Table {
	t := &routetable.Table{
		Keys: []routetable.Key{
			{ID: "team-a/alice", Namespace: "team-a", Name: "alice", Team: "search", Hash: hashOf(aliceSecret)},
			{ID: "team-b/bob", Namespace: "team-b", Name: "bob", Team: "billing", Hash: hashOf(bobSecret)},
		},
		MCPServers: []routetable.MCPServer{
			{
				ID: "tools/github", Namespace: "tools", Name: "github", Endpoint: gh.srv.URL,
				Transport: routetable.MCPStreamableHTTP, Prefix: "gh",
				AuthHeader: ghHeader, AuthValue: ghValue,
				Deny:      []string{"delete_*"},
				Keys:      []string{"team-a/alice"},
				AuditArgs: true,
				Timeout:   2 * time.Second,
			},
			{
				ID: "tools/files", Namespace: "tools", Name: "files", Endpoint: fs.srv.URL,
				Transport: routetable.MCPSSE, Prefix: "fs",
				AuthHeader: fsHeader, AuthValue: fsValue,
				Allow:   []string{"echo", "whoami", "leak"},
				Keys:    []string{"team-a/alice", "team-b/bob"},
				Timeout: 2 * time.Second,
			},
		},
	}
	if err := t.Finalize(); err != nil {
		panic(err)
	}
	return t
}

// recorder keeps a copy of every response body the gateway writes, so a
// test can prove a secret never reached any client.
type recorder struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (r *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.ServeHTTP(&teeWriter{ResponseWriter: w, r: r}, req)
	})
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.String()
}

type teeWriter struct {
	http.ResponseWriter
	r *recorder
}

func (t *teeWriter) Write(p []byte) (int, error) {
	t.r.mu.Lock()
	t.r.b.Write(p)
	for k, vs := range t.ResponseWriter.Header() {
		fmt.Fprintf(&t.r.b, "%s: %s\n", k, strings.Join(vs, ","))
	}
	t.r.mu.Unlock()
	return t.ResponseWriter.Write(p)
}

func (t *teeWriter) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{
		gh:       newUpstream(t, routetable.MCPStreamableHTTP, ghHeader, ghValue),
		fs:       newUpstream(t, routetable.MCPSSE, fsHeader, fsValue),
		audit:    &syncBuffer{},
		reg:      prometheus.NewRegistry(),
		clientRx: &recorder{},
	}
	f.gw = NewGateway(Options{
		Authenticate:      testAuth,
		AuditSink:         f.audit,
		Registerer:        f.reg,
		DiscoveryInterval: time.Hour, // tests drive checks with Refresh
	})
	t.Cleanup(func() { _ = f.gw.Close() })
	f.table = table(f.gh, f.fs)
	f.gw.SetTable(f.table)
	mux := http.NewServeMux()
	mux.Handle("/mcp", f.gw.Handler())
	f.front = httptest.NewServer(f.clientRx.wrap(mux))
	t.Cleanup(f.front.Close)
	return f
}

// headerTransport adds a header to every request: how users configure a
// key in Claude Code's .mcp.json or an SDK client.
type headerTransport struct {
	name, value string
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.name, h.value)
	return http.DefaultTransport.RoundTrip(r)
}

func (f *fixture) connect(t *testing.T, header, value string) *sdk.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := sdk.NewClient(&sdk.Implementation{Name: "test-client", Version: "test"}, nil)
	cs, err := c.Connect(ctx, &sdk.StreamableClientTransport{
		Endpoint:   f.front.URL + "/mcp",
		HTTPClient: &http.Client{Transport: headerTransport{header, value}},
	}, nil)
	if err != nil {
		t.Fatalf("connect as %s: %v", value, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func toolNames(t *testing.T, cs *sdk.ClientSession) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	return names
}

func call(t *testing.T, cs *sdk.ClientSession, name string, args any) (*sdk.CallToolResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
}

func text(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(*sdk.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

func TestKeysSeeOnlyTheirTools(t *testing.T) {
	f := newFixture(t)
	alice := f.connect(t, "Authorization", "Bearer "+aliceSecret)
	bob := f.connect(t, "x-api-key", bobSecret)

	wantAlice := []string{"fs__echo", "fs__leak", "fs__whoami", "gh__echo", "gh__fail", "gh__leak", "gh__slow", "gh__whoami"}
	if got := toolNames(t, alice); !slices.Equal(got, wantAlice) {
		t.Errorf("alice sees %v, want %v", got, wantAlice)
	}
	wantBob := []string{"fs__echo", "fs__leak", "fs__whoami"}
	if got := toolNames(t, bob); !slices.Equal(got, wantBob) {
		t.Errorf("bob sees %v, want %v", got, wantBob)
	}
	// Again on the same sessions, interleaved: nothing cached per session
	// leaks from one key to the other.
	if got := toolNames(t, bob); !slices.Equal(got, wantBob) {
		t.Errorf("bob (again) sees %v", got)
	}
	if got := toolNames(t, alice); !slices.Equal(got, wantAlice) {
		t.Errorf("alice (again) sees %v", got)
	}
	if init := alice.InitializeResult(); init == nil || init.Capabilities.Tools == nil || init.ServerInfo.Name != "tollgate" {
		t.Errorf("initialize result %+v: want tollgate with the tools capability", init)
	}
}

func TestCallsCarryUpstreamCredentials(t *testing.T) {
	f := newFixture(t)
	alice := f.connect(t, "Authorization", "Bearer "+aliceSecret)
	for _, tool := range []string{"gh__whoami", "fs__whoami"} { // Streamable HTTP and SSE upstreams
		res, err := call(t, alice, tool, map[string]any{})
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if res.IsError || text(res) != "credential ok" {
			t.Errorf("%s = %q (isError %v), want credential ok", tool, text(res), res.IsError)
		}
	}
	res, err := call(t, alice, "gh__echo", map[string]any{"text": "hello"})
	if err != nil || text(res) != "echo: hello" {
		t.Fatalf("gh__echo = %v, %v", res, err)
	}

	// A tool that echoes the credential: the client gets the answer with the
	// secret scrubbed, in text and structured content.
	for _, tool := range []string{"gh__leak", "fs__leak"} {
		res, err := call(t, alice, tool, map[string]any{})
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		b, _ := json.Marshal(res)
		if strings.Contains(string(b), "upstream-secret") || !strings.Contains(string(b), redacted) {
			t.Errorf("%s result not scrubbed: %s", tool, b)
		}
	}
	// A JSON-RPC error from the upstream keeps its code, loses the secret.
	_, err = call(t, alice, "gh__fail", map[string]any{})
	var werr *jsonrpc.Error
	if !errors.As(err, &werr) || werr.Code != -32000 || strings.Contains(werr.Message, "upstream-secret") ||
		!strings.Contains(werr.Message, "tools/github") {
		t.Errorf("gh__fail error = %v, want code -32000 naming tools/github without the secret", err)
	}

	// Nothing the gateway sent to any client holds an upstream credential,
	// and no upstream request carried a virtual key.
	for _, secret := range []string{ghValue, fsValue, "gh-upstream-secret", "files-upstream-secret"} {
		if strings.Contains(f.clientRx.String(), secret) {
			t.Errorf("client traffic contains %q", secret)
		}
	}
	for _, u := range []*upstream{f.gh, f.fs} {
		for _, h := range u.headers() {
			for k, vs := range h {
				for _, v := range vs {
					if strings.Contains(v, aliceSecret) || strings.Contains(v, bobSecret) {
						t.Errorf("upstream got the virtual key in %s", k)
					}
				}
			}
		}
	}
	if strings.Contains(f.audit.String(), "upstream-secret") {
		t.Errorf("audit trail holds a credential:\n%s", f.audit)
	}
}

func TestForbiddenCallsAreRefusedAndAudited(t *testing.T) {
	f := newFixture(t)
	bob := f.connect(t, "x-api-key", bobSecret)
	alice := f.connect(t, "Authorization", "Bearer "+aliceSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.gw.Refresh(ctx); err != nil { // metric labels depend on discovery
		t.Fatal(err)
	}
	cases := []struct {
		who  *sdk.ClientSession
		tool string
	}{
		{bob, "gh__echo"},                // server not granted to bob
		{alice, "gh__delete_repo"},       // denied by glob
		{bob, "fs__delete_repo"},         // not in the allow list
		{alice, "nope__made_up"},         // no such server
		{bob, strings.Repeat("x", 5000)}, // junk
	}
	for _, c := range cases {
		_, err := call(t, c.who, c.tool, map[string]any{})
		var werr *jsonrpc.Error
		if !errors.As(err, &werr) || werr.Code != jsonrpc.CodeInvalidParams || !strings.Contains(werr.Message, "not available to virtual key") {
			t.Errorf("%.40s: err = %v, want invalid params 'not available to virtual key'", c.tool, err)
		}
	}
	recs := f.audit.records(t)
	if len(recs) != len(cases) {
		t.Fatalf("%d audit records, want %d:\n%s", len(recs), len(cases), f.audit)
	}
	r := recs[0]
	if r.Outcome != OutcomeDenied || r.Namespace != "team-b" || r.Key != "bob" || r.Team != "billing" || r.Tool != "gh__echo" || r.Time.IsZero() {
		t.Errorf("audit record %+v", r)
	}
	if n := len(recs[4].Tool); n > maxAuditedName+3 {
		t.Errorf("junk tool name audited at %d bytes", n)
	}
	// Names some upstream offers are labelled as such (files offers
	// delete_repo, the allow list hides it); made-up names are "unknown".
	if got := value(f.gw.metrics.calls.WithLabelValues("team-b", "bob", "", "unknown", OutcomeDenied)); got != 1 {
		t.Errorf("denied calls labelled unknown = %v, want 1", got)
	}
	if got := value(f.gw.metrics.calls.WithLabelValues("team-b", "bob", "", "fs__delete_repo", OutcomeDenied)); got != 1 {
		t.Errorf("denied fs__delete_repo = %v, want 1", got)
	}
	if got := value(f.gw.metrics.calls.WithLabelValues("team-b", "bob", "", "gh__echo", OutcomeDenied)); got != 1 {
		t.Errorf("denied gh__echo = %v, want 1", got)
	}
}

func TestAuditTrail(t *testing.T) {
	f := newFixture(t)
	alice := f.connect(t, "Authorization", "Bearer "+aliceSecret)
	args := map[string]any{
		"text":     "hello",
		"password": "hunter2",
		"nested":   map[string]any{"api_key": "k-123", "list": []any{"Bearer abcdefghijkl", ghValue, 42}},
		"note":     "see " + ghValue,
	}
	if _, err := call(t, alice, "gh__echo", args); err != nil {
		t.Fatal(err)
	}
	if _, err := call(t, alice, "fs__echo", map[string]any{"text": "x"}); err != nil {
		t.Fatal(err)
	}
	recs := f.audit.records(t)
	if len(recs) != 2 {
		t.Fatalf("%d records:\n%s", len(recs), f.audit)
	}
	gh := recs[0]
	raw, _ := json.Marshal(args)
	if gh.Outcome != OutcomeOK || gh.Server != "tools/github" || gh.Tool != "gh__echo" || gh.UpstreamTool != "echo" ||
		gh.ArgumentBytes != len(raw) || gh.DurationMS <= 0 || gh.Session == "" {
		t.Errorf("record %+v", gh)
	}
	var got map[string]any
	if err := json.Unmarshal(gh.Arguments, &got); err != nil {
		t.Fatalf("arguments %s: %v", gh.Arguments, err)
	}
	want := map[string]any{
		"text":     "hello",
		"password": redacted,
		"nested":   map[string]any{"api_key": redacted, "list": []any{redacted, redacted, 42.0}},
		"note":     "see " + redacted,
	}
	if a, b := fmt.Sprint(got), fmt.Sprint(want); a != b {
		t.Errorf("audited arguments\n got %s\nwant %s", a, b)
	}
	if recs[1].Arguments != nil {
		t.Errorf("files does not opt in to argument auditing, got %s", recs[1].Arguments)
	}
	if got := value(f.gw.metrics.calls.WithLabelValues("team-a", "alice", "tools/github", "gh__echo", OutcomeOK)); got != 1 {
		t.Errorf("ok counter = %v", got)
	}
	if n := seriesCount(f.gw.metrics.duration); n != 2 {
		t.Errorf("%d duration series, want 2", n)
	}
	// Metric families exist on the registry passed in.
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "secret") {
					t.Errorf("label %s=%s", l.GetName(), l.GetValue())
				}
			}
		}
	}
}

func TestUnauthenticated(t *testing.T) {
	f := newFixture(t)
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}`
	for name, hdr := range map[string][2]string{
		"none":  {},
		"wrong": {"Authorization", "Bearer tg-nope"},
		"basic": {"Authorization", "Basic " + aliceSecret},
	} {
		req, _ := http.NewRequest(http.MethodPost, f.front.URL+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if hdr[0] != "" {
			req.Header.Set(hdr[0], hdr[1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "invalid_api_key") ||
			resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %d %s", name, resp.StatusCode, b)
		}
	}
	// The SDK client sees the refusal at connect time.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := sdk.NewClient(&sdk.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx,
		&sdk.StreamableClientTransport{Endpoint: f.front.URL + "/mcp"}, nil)
	if err == nil {
		t.Error("connect without a key succeeded")
	}
}

// TestSessionsAreBoundToTheirKey replays alice's session ID with bob's key.
func TestSessionsAreBoundToTheirKey(t *testing.T) {
	f := newFixture(t)
	post := func(key, session, body string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, f.front.URL+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+key)
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
			req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := post(aliceSecret, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}`)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d, session %q", resp.StatusCode, sid)
	}
	resp = post(aliceSecret, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	resp.Body.Close()
	resp = post(bobSecret, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || strings.Contains(string(b), "gh__") {
		t.Errorf("bob on alice's session: %d %s", resp.StatusCode, b)
	}
	resp = post(aliceSecret, sid, `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "gh__echo") {
		t.Errorf("alice on her session: %d %s", resp.StatusCode, b)
	}
}

func TestUpstreamDown(t *testing.T) {
	f := newFixture(t)
	alice := f.connect(t, "Authorization", "Bearer "+aliceSecret)
	if _, err := call(t, alice, "gh__echo", map[string]any{"text": "up"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.gw.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, st := range f.gw.ServerStatus() {
		if !st.Healthy || len(st.Tools) == 0 || st.CheckedAt.IsZero() {
			t.Errorf("before: %+v", st)
		}
	}
	wantStatus := []ToolInfo{{"gh__echo", "Echoes text."}, {"gh__fail", ""}, {"gh__leak", ""}, {"gh__slow", ""}, {"gh__whoami", ""}}
	if got := f.gw.ServerStatus()[0].Tools; !slices.Equal(got, wantStatus) {
		t.Errorf("github tools in status = %v, want %v (delete_repo denied)", got, wantStatus)
	}

	f.gh.srv.CloseClientConnections()
	f.gh.srv.Close()
	start := time.Now()
	_, err := call(t, alice, "gh__echo", map[string]any{"text": "down"})
	took := time.Since(start)
	var werr *jsonrpc.Error
	if !errors.As(err, &werr) || werr.Code != CodeUpstreamUnavailable || !strings.Contains(werr.Message, "tools/github is unavailable") {
		t.Fatalf("call to a dead upstream: %v", err)
	}
	if took > 3*time.Second {
		t.Errorf("dead upstream took %s to report (timeout 2s)", took)
	}
	// The other server still works.
	if res, err := call(t, alice, "fs__echo", map[string]any{"text": "still"}); err != nil || text(res) != "echo: still" {
		t.Errorf("fs__echo after github died: %v %v", res, err)
	}
	if err := f.gw.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	st := f.gw.ServerStatus()
	if st[0].ID != "tools/github" || st[0].Healthy || st[0].Message == "" || strings.Contains(st[0].Message, "secret") {
		t.Errorf("github status after it died: %+v", st[0])
	}
	if !st[1].Healthy {
		t.Errorf("files status: %+v", st[1])
	}
	if got := value(f.gw.metrics.up.WithLabelValues("tools/github")); got != 0 {
		t.Errorf("up gauge = %v", got)
	}
	recs := f.audit.records(t)
	if r := recs[1]; r.Outcome != OutcomeError || !strings.Contains(r.Error, "unavailable") {
		t.Errorf("audit of failed call: %+v", r)
	}
}

func TestSlowUpstreamIsBounded(t *testing.T) {
	f := newFixture(t)
	alice := f.connect(t, "Authorization", "Bearer "+aliceSecret)
	start := time.Now()
	_, err := call(t, alice, "gh__slow", map[string]any{})
	var werr *jsonrpc.Error
	if !errors.As(err, &werr) || werr.Code != CodeUpstreamUnavailable || !strings.Contains(werr.Message, "no answer within 2s") {
		t.Fatalf("slow call: %v", err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("slow call took %s", took)
	}
	// The session was replaced; the next call works.
	if res, err := call(t, alice, "gh__echo", map[string]any{"text": "after"}); err != nil || text(res) != "echo: after" {
		t.Errorf("call after timeout: %v %v", res, err)
	}
}

func TestSetTableRotatesAndRevokes(t *testing.T) {
	f := newFixture(t)
	alice := f.connect(t, "Authorization", "Bearer "+aliceSecret)
	bob := f.connect(t, "x-api-key", bobSecret)
	if _, err := call(t, alice, "gh__whoami", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	// A new upstream with a rotated credential at a new endpoint, and bob
	// loses the files server.
	gh2 := newUpstream(t, routetable.MCPStreamableHTTP, ghHeader, "Bearer rotated-secret-000111")
	t.Cleanup(func() { _ = f.gw.Close() }) // before gh2 closes: its sessions hold streams open
	nt := table(gh2, f.fs)
	nt.MCPServers[0].AuthValue = "Bearer rotated-secret-000111"
	nt.MCPServers[1].Keys = []string{"team-a/alice"}
	if err := nt.Finalize(); err != nil {
		t.Fatal(err)
	}
	f.gw.SetTable(nt)
	res, err := call(t, alice, "gh__whoami", map[string]any{})
	if err != nil || text(res) != "credential ok" {
		t.Fatalf("after rotation: %v %v", res, err)
	}
	if got := toolNames(t, bob); len(got) != 0 {
		t.Errorf("bob still sees %v", got)
	}
	if _, err := call(t, bob, "fs__echo", map[string]any{}); err == nil {
		t.Error("bob can still call fs__echo")
	}
	f.gw.ups.mu.Lock()
	for _, c := range f.gw.ups.conns {
		if c.keyID == "team-b/bob" {
			t.Errorf("bob's upstream session survived the revocation")
		}
	}
	f.gw.ups.mu.Unlock()
}

func TestConcurrentKeys(t *testing.T) {
	f := newFixture(t)
	alice := f.connect(t, "Authorization", "Bearer "+aliceSecret)
	bob := f.connect(t, "x-api-key", bobSecret)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs, tool := alice, "gh__echo"
			if i%2 == 1 {
				cs, tool = bob, "fs__echo"
			}
			want := fmt.Sprintf("n%d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: tool, Arguments: map[string]any{"text": want}})
			if err != nil {
				errs <- err
				return
			}
			if text(res) != "echo: "+want {
				errs <- fmt.Errorf("%s got %q", tool, text(res))
			}
		}()
		if i%4 == 0 {
			go f.gw.SetTable(f.table) // same table: sessions survive
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(f.audit.records(t)); n != 16 {
		t.Errorf("%d audit records, want 16", n)
	}
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

func seriesCount(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 100)
	c.Collect(ch)
	close(ch)
	return len(ch)
}

func TestUpstreamRestartIsTransparent(t *testing.T) {
	f := newFixture(t)
	alice := f.connect(t, "Authorization", "Bearer "+aliceSecret)
	if _, err := call(t, alice, "gh__echo", map[string]any{"text": "a"}); err != nil {
		t.Fatal(err)
	}
	f.gh.restart()
	res, err := call(t, alice, "gh__echo", map[string]any{"text": "b"})
	if err != nil || text(res) != "echo: b" {
		t.Fatalf("call after the upstream forgot its sessions: %v %v", res, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.gw.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.gw.ServerStatus()[0]; !st.Healthy {
		t.Errorf("status after restart: %+v", st)
	}
}

func TestSSEUpstreamDown(t *testing.T) {
	f := newFixture(t)
	bob := f.connect(t, "x-api-key", bobSecret)
	if _, err := call(t, bob, "fs__echo", map[string]any{"text": "a"}); err != nil {
		t.Fatal(err)
	}
	f.fs.srv.CloseClientConnections()
	f.fs.srv.Close()
	start := time.Now()
	_, err := call(t, bob, "fs__echo", map[string]any{"text": "b"})
	var werr *jsonrpc.Error
	if !errors.As(err, &werr) || werr.Code != CodeUpstreamUnavailable || !strings.Contains(werr.Message, "tools/files is unavailable") {
		t.Fatalf("call to a dead SSE upstream: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %s", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.gw.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.gw.ServerStatus()[1]; st.ID != "tools/files" || st.Healthy {
		t.Errorf("files status: %+v", st)
	}
}

func TestClientsAreToldWhenToolsChange(t *testing.T) {
	f := newFixture(t)
	changed := make(chan struct{}, 16)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := sdk.NewClient(&sdk.Implementation{Name: "watcher", Version: "1"}, &sdk.ClientOptions{
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) { changed <- struct{}{} },
	})
	cs, err := c.Connect(ctx, &sdk.StreamableClientTransport{
		Endpoint:   f.front.URL + "/mcp",
		HTTPClient: &http.Client{Transport: headerTransport{"x-api-key", bobSecret}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if init := cs.InitializeResult(); !init.Capabilities.Tools.ListChanged {
		t.Fatalf("tools capability %+v: want listChanged", init.Capabilities.Tools)
	}
	if got := toolNames(t, cs); len(got) != 3 {
		t.Fatalf("bob sees %v", got)
	}
	time.Sleep(200 * time.Millisecond) // let notifications of the first discovery arrive
	for len(changed) > 0 {
		<-changed
	}
	nt := table(f.gh, f.fs)
	nt.MCPServers[1].Keys = []string{"team-a/alice"}
	if err := nt.Finalize(); err != nil {
		t.Fatal(err)
	}
	f.gw.SetTable(nt)
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("no notifications/tools/list_changed after the table changed")
	}
	if got := toolNames(t, cs); len(got) != 0 {
		t.Errorf("bob sees %v after losing files", got)
	}
}

func TestCloseEndsClientStreams(t *testing.T) {
	f := newFixture(t)
	alice := f.connect(t, "Authorization", "Bearer "+aliceSecret)
	if got := toolNames(t, alice); len(got) == 0 {
		t.Fatal("no tools")
	}
	// The SDK client holds a standalone GET stream open; after Close the
	// front server must be able to shut down at once.
	if err := f.gw.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := f.front.Config.Shutdown(ctx); err != nil {
		t.Errorf("front server shutdown after gateway Close: %v", err)
	}
}

func TestWrongUpstreamCredentialShowsInStatus(t *testing.T) {
	f := newFixture(t)
	nt := table(f.gh, f.fs)
	nt.MCPServers[0].AuthValue = "Bearer wrong-credential-424242"
	if err := nt.Finalize(); err != nil {
		t.Fatal(err)
	}
	f.gw.SetTable(nt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.gw.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	st := f.gw.ServerStatus()[0]
	if st.Healthy || !strings.Contains(st.Message, "Unauthorized") || strings.Contains(st.Message, "wrong-credential") {
		t.Errorf("status with a wrong credential: %+v", st)
	}
	alice := f.connect(t, "Authorization", "Bearer "+aliceSecret)
	_, err := call(t, alice, "gh__echo", map[string]any{})
	var werr *jsonrpc.Error
	if !errors.As(err, &werr) || werr.Code != CodeUpstreamUnavailable || strings.Contains(werr.Message, "wrong-credential") {
		t.Errorf("call with a wrong upstream credential: %v", err)
	}
	t.Logf("status: %s; client: %v", st.Message, err)
}
