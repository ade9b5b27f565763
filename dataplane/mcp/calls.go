package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"tollgate.dev/tollgate/dataplane/routetable"
)

// CodeUpstreamUnavailable is the JSON-RPC error code (in the range JSON-RPC
// leaves to implementations) of a tools/call whose upstream server could not
// be reached or did not answer in time.
const CodeUpstreamUnavailable = -32030

// Audit outcomes.
const (
	OutcomeOK     = "ok"
	OutcomeError  = "error"
	OutcomeDenied = "denied"
)

// toolsMiddleware answers tools/list and tools/call from the caller's key,
// the live table and the upstreams; every other method (initialize, ping,
// ...) goes to the SDK's own handlers.
func (g *Gateway) toolsMiddleware(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		switch method {
		case "tools/list":
			c := callerOf(req)
			if c == nil {
				return nil, errUnauthenticated
			}
			return g.listTools(ctx, c), nil
		case "tools/call":
			c := callerOf(req)
			if c == nil {
				return nil, errUnauthenticated
			}
			r, ok := req.(*sdk.CallToolRequest)
			if !ok || r.Params == nil {
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "tools/call needs params"}
			}
			var session string
			if r.Session != nil {
				session = r.Session.ID()
			}
			res, err := g.callTool(ctx, c, session, r.Params)
			if err != nil {
				return nil, err // not a typed nil result
			}
			return res, nil
		}
		return next(ctx, method, req)
	}
}

var errUnauthenticated = &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: "request carries no authenticated virtual key"}

// listTools returns the tools c's key may call. Servers are visited in ID
// order and the first server to offer an exposed name keeps it, so every
// replica resolves a collision the same way.
func (g *Gateway) listTools(ctx context.Context, c *caller) *sdk.ListToolsResult {
	servers := c.state.index.serversFor(c.key.ID)
	out := &sdk.ListToolsResult{Tools: []*sdk.Tool{}}
	seen := map[string]bool{}
	for _, s := range servers {
		wctx, cancel := context.WithTimeout(ctx, g.timeout(s))
		tools := g.disc.tools(wctx, s)
		cancel()
		for _, t := range tools {
			if !ToolAllowed(s, t.Name) {
				continue
			}
			name := ExposedName(s, t.Name)
			if seen[name] {
				continue
			}
			seen[name] = true
			exposed := *t
			exposed.Name = name
			out.Tools = append(out.Tools, &exposed)
		}
	}
	return out
}

// pick chooses among the readings of an exposed name: the first server (in
// ID order) whose last discovery offered the tool, else the first reading,
// whose upstream then answers for the unknown tool itself.
func (g *Gateway) pick(cands []candidate) candidate {
	for _, c := range cands {
		if g.disc.known(c.server, c.upstream) {
			return c
		}
	}
	return cands[0]
}

func (g *Gateway) callTool(ctx context.Context, c *caller, session string, p *sdk.CallToolParamsRaw) (*sdk.CallToolResult, error) {
	start := g.now()
	rec := AuditRecord{
		Namespace:     c.key.Namespace,
		Key:           c.key.Name,
		Team:          c.key.Team,
		Tool:          p.Name,
		Session:       session,
		ArgumentBytes: len(p.Arguments),
	}
	cands := c.state.index.resolve(c.key.ID, p.Name)
	if len(cands) == 0 {
		rec.Outcome = OutcomeDenied
		rec.Error = "tool not available to this key"
		g.finish(&rec, start, nil, p.Arguments, g.toolLabelDenied(c.state, p.Name))
		return nil, &jsonrpc.Error{
			Code: jsonrpc.CodeInvalidParams,
			Message: fmt.Sprintf("tool %q is not available to virtual key %s/%s; tools/list shows the tools this key may call",
				p.Name, c.key.Namespace, c.key.Name),
		}
	}
	cand := g.pick(cands)
	s := cand.server
	rec.Server, rec.UpstreamTool = s.ID, cand.upstream
	sc := newScrubber(s)

	res, err := g.forward(ctx, s, c.key.ID, cand.upstream, p.Arguments, sc)
	switch {
	case err != nil:
		rec.Outcome = OutcomeError
		rec.Error = err.Error()
	case res.IsError:
		rec.Outcome = OutcomeError
		rec.Error = "tool returned isError"
	default:
		rec.Outcome = OutcomeOK
	}
	// A name the upstream never offered is labelled "unknown", so made-up
	// names forwarded to a server without an allow list cannot grow the
	// metric without bound.
	label := p.Name
	if !g.disc.known(s, cand.upstream) {
		label = "unknown"
	}
	g.finish(&rec, start, s, p.Arguments, label)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// forward makes the call on the key's session to s, within s's timeout
// (connecting included). Errors come back as JSON-RPC errors a client can
// show as they are: scrubbed of s's credential and naming the server.
//
// A call is retried once, on a new session, only when the upstream
// certainly did not run it: it had forgotten the session (it restarted) or
// the connection could not even be opened.
func (g *Gateway) forward(ctx context.Context, s *routetable.MCPServer, keyID, tool string, args json.RawMessage, sc scrubber) (*sdk.CallToolResult, error) {
	timeout := g.timeout(s)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	params := &sdk.CallToolParams{Name: tool}
	if len(args) > 0 {
		params.Arguments = args
	}
	for attempt := 0; ; attempt++ {
		deadline, _ := ctx.Deadline()
		conn, cs, err := g.ups.acquire(s, keyID, time.Until(deadline))
		if err != nil {
			return nil, g.upstreamFailed(ctx, s, sc, "connect failed", timeout, err)
		}
		res, err := cs.CallTool(ctx, params)
		if err == nil {
			g.ups.release(conn)
			scrubResult(res, sc)
			return res, nil
		}
		var werr *jsonrpc.Error
		if !isTransportError(err) && errors.As(err, &werr) {
			// The server answered; the session is fine.
			g.ups.release(conn)
			return nil, &jsonrpc.Error{Code: werr.Code, Message: "MCP server " + s.ID + ": " + sc.String(werr.Message)}
		}
		g.ups.invalidate(conn, cs)
		g.ups.release(conn)
		if attempt == 0 && ctx.Err() == nil && notDelivered(err) {
			continue
		}
		return nil, g.upstreamFailed(ctx, s, sc, "connection lost", timeout, err)
	}
}

// notDelivered reports whether a failed call certainly never reached a
// tool: the upstream no longer knows the session, or no connection could be
// opened.
func notDelivered(err error) bool {
	if errors.Is(err, sdk.ErrSessionMissing) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// upstreamFailed records a failure to reach s and returns the error the
// client sees: which server, and whether it timed out or could not be
// reached. The detailed (scrubbed) cause goes to the log and the server's
// status, not to clients, because it names internal endpoints.
func (g *Gateway) upstreamFailed(ctx context.Context, s *routetable.MCPServer, sc scrubber, what string, timeout time.Duration, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		what = fmt.Sprintf("no answer within %s", timeout)
	case ctx.Err() != nil:
		// The client went away or cancelled: not the upstream's fault.
		return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "call cancelled"}
	}
	detail := sc.String(err.Error())
	g.log.Info("MCP upstream call failed", "MCPServer", s.ID, "error", detail)
	g.disc.markUnhealthy(s, "tools/call failed: "+detail)
	g.disc.trigger(fingerprint(s))
	return unavailable(s, what)
}

func unavailable(s *routetable.MCPServer, why string) error {
	return &jsonrpc.Error{
		Code:    CodeUpstreamUnavailable,
		Message: fmt.Sprintf("MCP server %s is unavailable: %s", s.ID, why),
	}
}

// scrubResult removes the server's credential from everything in a result
// that the client will read.
func scrubResult(res *sdk.CallToolResult, sc scrubber) {
	if len(sc) == 0 {
		return
	}
	for _, c := range res.Content {
		if t, ok := c.(*sdk.TextContent); ok {
			t.Text = sc.String(t.Text)
		}
	}
	if res.StructuredContent != nil {
		b, err := json.Marshal(res.StructuredContent)
		if err != nil {
			res.StructuredContent = nil
			return
		}
		if nb := sc.JSON(b); len(nb) != len(b) || string(nb) != string(b) {
			var v any
			if json.Unmarshal(nb, &v) == nil {
				res.StructuredContent = v
			} else {
				res.StructuredContent = nil
			}
		}
	}
}

// finish writes the audit line and the metrics of one call.
func (g *Gateway) finish(rec *AuditRecord, start time.Time, s *routetable.MCPServer, args json.RawMessage, toolLabel string) {
	d := g.now().Sub(start)
	rec.Time = start.UTC()
	rec.DurationMS = float64(d.Microseconds()) / 1000
	if s != nil && s.AuditArgs && len(args) > 0 {
		rec.Arguments = redactArguments(args, newScrubber(s))
	}
	if s != nil {
		rec.Error = newScrubber(s).String(rec.Error)
	}
	g.audit.write(rec, g.log)
	g.metrics.observe(rec, toolLabel, d)
}

// toolLabelDenied is the metric label of a refused tool name: the name when
// some server of the table offers it (bounded by what upstreams offer), else
// "unknown", so a client cannot grow the metric without bound by calling
// made-up names.
func (g *Gateway) toolLabelDenied(st *state, name string) string {
	for i := range st.table.MCPServers {
		s := &st.table.MCPServers[i]
		if rest, ok := cutPrefix(s, name); ok && g.disc.known(s, rest) {
			return name
		}
	}
	return "unknown"
}
