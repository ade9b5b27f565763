package mcp

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"tollgate.dev/tollgate/dataplane/routetable"
)

// ServerStatus is what the gateway knows about one upstream MCP server: the
// material for the MCPTool status the controller writes.
type ServerStatus struct {
	// ID is the MCPServer ID ("namespace/name").
	ID string
	// Healthy is true when the last tools/list succeeded and no call has
	// failed on a broken connection since.
	Healthy bool
	// Message says why the server is unhealthy, or what was discovered.
	Message string
	// Tools are the tools clients see, after the server's allow and deny
	// lists, sorted by name; they map one to one onto the MCPTool status's
	// DiscoveredTool.
	Tools []ToolInfo
	// CheckedAt is when the server was last checked; zero before the first
	// check finished.
	CheckedAt time.Time
}

// ToolInfo is one exposed tool.
type ToolInfo struct {
	// Name as clients see it ("prefix__tool").
	Name string
	// Description from the upstream server.
	Description string
}

// discovery is the latest tools/list result of one server configuration
// (one fingerprint).
type discovery struct {
	server *routetable.MCPServer // from the latest table
	tools  []*sdk.Tool           // last successful list; kept while unhealthy
	// healthy, message and checked describe the last check.
	healthy bool
	message string
	checked time.Time
	// ready is closed when the first check has finished, so the first
	// tools/list after a server appears waits for it instead of coming back
	// empty.
	ready     chan struct{}
	readyDone bool
	running   bool
	again     bool // a trigger arrived while running
}

// discoverer runs tools/list against every upstream: on a timer, when a
// server first appears, and when a server announces that its list changed.
type discoverer struct {
	g      *Gateway
	mu     sync.Mutex
	byFP   map[string]*discovery
	closed bool // set by Gateway.Close; no check starts after it
}

func newDiscoverer(g *Gateway) *discoverer {
	return &discoverer{g: g, byFP: map[string]*discovery{}}
}

// sync aligns the discovered set with table t: new server configurations
// are checked at once, removed ones forgotten.
func (d *discoverer) sync(t *routetable.Table) {
	d.mu.Lock()
	defer d.mu.Unlock()
	live := map[string]bool{}
	for i := range t.MCPServers {
		s := &t.MCPServers[i]
		fp := fingerprint(s)
		live[fp] = true
		e := d.byFP[fp]
		if e == nil {
			e = &discovery{ready: make(chan struct{})}
			d.byFP[fp] = e
		}
		e.server = s
		d.startLocked(fp, e)
	}
	ids := map[string]bool{}
	for fp, e := range d.byFP {
		if !live[fp] {
			delete(d.byFP, fp)
			ids[e.server.ID] = true
		}
	}
	for id := range ids {
		if !slices.ContainsFunc(t.MCPServers, func(s routetable.MCPServer) bool { return s.ID == id }) {
			d.g.metrics.forgetServer(id)
		}
	}
}

// trigger re-checks the server configuration fp, if it is still live.
func (d *discoverer) trigger(fp string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e := d.byFP[fp]; e != nil {
		d.startLocked(fp, e)
	}
}

// all re-checks every server.
func (d *discoverer) all() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for fp, e := range d.byFP {
		d.startLocked(fp, e)
	}
}

func (d *discoverer) startLocked(fp string, e *discovery) {
	if e.running {
		e.again = true
		return
	}
	if d.closed {
		return
	}
	e.running = true
	d.g.wg.Add(1)
	go func() {
		defer d.g.wg.Done()
		d.run(fp)
	}()
}

func (d *discoverer) run(fp string) {
	for {
		d.mu.Lock()
		e := d.byFP[fp]
		if e == nil {
			d.mu.Unlock()
			return
		}
		s := e.server
		d.mu.Unlock()

		tools, err := d.list(s)
		now := d.g.now()

		d.mu.Lock()
		e = d.byFP[fp]
		if e == nil {
			d.mu.Unlock()
			return
		}
		e.checked = now
		changed := false
		if err != nil {
			e.healthy = false
			e.message = "tools/list failed: " + newScrubber(s).String(err.Error())
			if strings.Contains(e.message, "Unauthorized") || strings.Contains(e.message, "Forbidden") {
				e.message += " (the server refused the credential from spec.auth)"
			}
		} else {
			changed = !sameNames(e.tools, tools)
			e.tools, e.healthy = tools, true
			e.message = ""
		}
		d.g.metrics.setUp(s.ID, e.healthy)
		if !e.readyDone {
			e.readyDone = true
			close(e.ready)
		}
		if e.again && d.g.ctx.Err() == nil {
			e.again = false
			d.mu.Unlock()
			if changed {
				d.g.notifyToolsChanged()
			}
			continue
		}
		e.running = false
		msg := e.message
		d.mu.Unlock()
		if changed {
			d.g.notifyToolsChanged()
		}
		if err != nil {
			d.g.log.Info("MCP server unhealthy", "MCPServer", s.ID, "reason", msg)
		}
		return
	}
}

// list fetches every page of s's tools on its discovery session, retrying
// once on a new session when the old one broke (an upstream restart must not
// show as an outage).
func (d *discoverer) list(s *routetable.MCPServer) ([]*sdk.Tool, error) {
	tools, retry, err := d.listOnce(s)
	if retry && d.g.ctx.Err() == nil {
		tools, _, err = d.listOnce(s)
	}
	return tools, err
}

// listOnce lists s's tools; retry is true when an existing session broke
// quickly, which a fresh session may not.
func (d *discoverer) listOnce(s *routetable.MCPServer) (_ []*sdk.Tool, retry bool, _ error) {
	timeout := d.g.timeout(s)
	c, cs, err := d.g.ups.acquire(s, "", timeout)
	if err != nil {
		return nil, false, fmt.Errorf("connect: %w", err)
	}
	defer d.g.ups.release(c)
	ctx, cancel := context.WithTimeout(d.g.ctx, timeout)
	defer cancel()
	var tools []*sdk.Tool
	for t, err := range cs.Tools(ctx, nil) {
		if err != nil {
			broken := isTransportError(err)
			if broken {
				d.g.ups.invalidate(c, cs)
			}
			if ctx.Err() == context.DeadlineExceeded {
				return nil, false, fmt.Errorf("no answer within %s", timeout)
			}
			return nil, broken, err
		}
		tools = append(tools, t)
	}
	return tools, false, nil
}

// markUnhealthy records a failure seen on the call path, so status shows a
// broken server before the next periodic check, and schedules a check.
func (d *discoverer) markUnhealthy(s *routetable.MCPServer, msg string) {
	fp := fingerprint(s)
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.byFP[fp]
	if e == nil {
		return
	}
	e.healthy = false
	e.message = msg
	e.checked = d.g.now()
	d.g.metrics.setUp(s.ID, false)
}

// tools returns the last discovered tools of s, waiting (until ctx ends)
// for the first check if it has not finished yet.
func (d *discoverer) tools(ctx context.Context, s *routetable.MCPServer) []*sdk.Tool {
	fp := fingerprint(s)
	d.mu.Lock()
	e := d.byFP[fp]
	d.mu.Unlock()
	if e == nil {
		return nil
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return e.tools
}

// known reports whether s offered a tool named upstream at its last check.
func (d *discoverer) known(s *routetable.MCPServer, upstream string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.byFP[fingerprint(s)]
	if e == nil {
		return false
	}
	return slices.ContainsFunc(e.tools, func(t *sdk.Tool) bool { return t.Name == upstream })
}

// ServerStatus reports every server of the live table, in table order.
func (g *Gateway) ServerStatus() []ServerStatus {
	t := g.state.Load().table
	out := make([]ServerStatus, 0, len(t.MCPServers))
	g.disc.mu.Lock()
	defer g.disc.mu.Unlock()
	for i := range t.MCPServers {
		s := &t.MCPServers[i]
		st := ServerStatus{ID: s.ID}
		e := g.disc.byFP[fingerprint(s)]
		if e == nil || e.checked.IsZero() {
			st.Message = "not checked yet"
			out = append(out, st)
			continue
		}
		st.Healthy, st.CheckedAt = e.healthy, e.checked
		st.Tools = []ToolInfo{}
		for _, tool := range e.tools {
			if ToolAllowed(s, tool.Name) {
				st.Tools = append(st.Tools, ToolInfo{Name: ExposedName(s, tool.Name), Description: tool.Description})
			}
		}
		slices.SortFunc(st.Tools, func(a, b ToolInfo) int { return strings.Compare(a.Name, b.Name) })
		st.Message = e.message
		if e.healthy {
			st.Message = fmt.Sprintf("%d tools discovered, %d exposed", len(e.tools), len(st.Tools))
		}
		out = append(out, st)
	}
	return out
}

// Refresh checks every upstream now and waits until the checks finish or
// ctx ends. The periodic loop makes it unnecessary in production; tests and
// an admin endpoint can use it.
func (g *Gateway) Refresh(ctx context.Context) error {
	g.disc.mu.Lock()
	before := map[string]time.Time{}
	for fp, e := range g.disc.byFP {
		before[fp] = e.checked
	}
	g.disc.mu.Unlock()
	g.disc.all()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		done := true
		g.disc.mu.Lock()
		for fp, e := range g.disc.byFP {
			if t, ok := before[fp]; ok && (e.running || !e.checked.After(t)) {
				done = false
			}
		}
		g.disc.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// loop re-checks every server each interval until ctx ends.
func (d *discoverer) loop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.all()
		}
	}
}

// sameNames reports whether two tool lists name the same tools in the same
// order. A changed description alone does not notify clients.
func sameNames(a, b []*sdk.Tool) bool {
	return slices.EqualFunc(a, b, func(x, y *sdk.Tool) bool { return x.Name == y.Name })
}
