package sync_test

import (
	"strings"
	gosync "sync"
	"testing"
	"time"
	"unicode/utf8"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/controllers/push"
	tgsync "tollgate.dev/tollgate/dataplane/sync"
	"tollgate.dev/tollgate/dataplane/sync/wire"
)

// reportSource is a Report func whose answer the test changes.
type reportSource struct {
	mu gosync.Mutex
	r  *wire.Report
}

func (s *reportSource) set(r *wire.Report) {
	s.mu.Lock()
	s.r = r
	s.mu.Unlock()
}

func (s *reportSource) get() *wire.Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r == nil {
		return nil
	}
	c := *s.r
	c.Targets = append([]wire.TargetReport(nil), s.r.Targets...)
	c.MCPServers = append([]wire.MCPReport(nil), s.r.MCPServers...)
	return &c
}

func targetReport(ejected bool, errRate float64, latency int64) *wire.Report {
	return &wire.Report{Targets: []wire.TargetReport{{
		Provider: "default/p", Model: "x", Ejected: ejected, ErrorRate: errRate, LatencyMillis: latency, Attempts: 10,
	}}}
}

// TestReportRoundTrip: the replica's report reaches Server.Replicas with the
// first heartbeat, a meaningful change arrives well before the next
// heartbeat and fires Changes, and jitter below SameHealth's resolution
// fires nothing.
func TestReportRoundTrip(t *testing.T) {
	logs := newLogSink(t)
	// A long heartbeat, so anything that arrives quickly was sent early.
	s := push.NewServer(push.Options{Auth: push.NewStaticTokenAuth(testToken), Log: logs.logger("push"), Heartbeat: time.Hour})
	s.Publish(table(t, 1))
	ctl := startController(t, s.Handler())
	src := &reportSource{}
	src.set(targetReport(false, 0, 100))
	startReplica(t, "dp-0", ctl.url(), logs.logger("dataplane"), func(c *tgsync.Client) {
		c.Report = src.get
		c.ReportCheck = 5 * time.Millisecond
	})
	report := func() *wire.Report {
		for _, r := range s.Replicas() {
			if r.ID == "dp-0" {
				return r.Report
			}
		}
		return nil
	}
	eventually(t, "the first report", func() bool {
		r := report()
		return r != nil && len(r.Targets) == 1 && r.Targets[0].LatencyMillis == 100
	})
	drain(s.Changes())

	// Jitter: same bands, so nothing is sent early and nothing notified.
	src.set(targetReport(false, 0.001, 103))
	time.Sleep(100 * time.Millisecond)
	select {
	case <-s.Changes():
		t.Error("Changes fired for latency jitter")
	default:
	}
	if r := report(); r.Targets[0].LatencyMillis != 100 {
		t.Errorf("a jittered report was sent before the heartbeat: %+v", r.Targets[0])
	}

	// Ejection: sent at once, notified.
	src.set(targetReport(true, 0.6, 103))
	eventually(t, "the ejection to be reported", func() bool {
		r := report()
		return r != nil && r.Targets[0].Ejected
	})
	select {
	case <-s.Changes():
	case <-time.After(waitFor):
		t.Fatal("Changes did not fire for an ejection")
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func TestReportBound(t *testing.T) {
	long := strings.Repeat("é", 1000)
	r := &wire.Report{}
	for i := range 200 {
		s := wire.MCPReport{ID: "ns/s" + strings.Repeat("x", i%7), Message: long}
		for j := range 400 {
			s.Tools = append(s.Tools, wire.Tool{Name: "prefix__tool_" + strings.Repeat("y", j%50), Description: long})
		}
		r.MCPServers = append(r.MCPServers, s)
	}
	for range 1000 {
		r.Targets = append(r.Targets, wire.TargetReport{Provider: "ns/p", Model: "m"})
	}
	r.Bound()
	if !r.Truncated {
		t.Error("Truncated not set")
	}
	if n := len(r.Targets); n > wire.MaxReportTargets {
		t.Errorf("%d targets", n)
	}
	b, _ := json.Marshal(wire.Message{Type: wire.TypeHeartbeat, Report: r})
	if len(b) > wire.MaxReportBytes+1024 || len(b) > wire.MaxReplicaMessage {
		t.Errorf("bounded report encodes to %d bytes", len(b))
	}
	for _, s := range r.MCPServers {
		if len(s.Message) > wire.MaxReportText || !utf8.ValidString(s.Message) {
			t.Fatalf("message not clipped to valid UTF-8: %d bytes", len(s.Message))
		}
	}
}

func TestSameHealth(t *testing.T) {
	now := time.Now()
	later := now.Add(time.Minute)
	base := func() *wire.Report {
		return &wire.Report{
			Targets:    []wire.TargetReport{{Provider: "a/p", Model: "m", ErrorRate: 0.01, LatencyMillis: 200, Attempts: 5}},
			MCPServers: []wire.MCPReport{{ID: "a/t", Healthy: true, Message: "2 tools", Tools: []wire.Tool{{Name: "t__x"}}, CheckedAt: &now}},
		}
	}
	for _, tc := range []struct {
		name string
		mod  func(*wire.Report)
		same bool
	}{
		{"identical", func(*wire.Report) {}, true},
		{"latency jitter", func(r *wire.Report) { r.Targets[0].LatencyMillis = 210 }, true},
		{"error rate jitter", func(r *wire.Report) { r.Targets[0].ErrorRate = 0.02 }, true},
		{"more attempts", func(r *wire.Report) { r.Targets[0].Attempts = 50 }, true},
		{"later check", func(r *wire.Report) { r.MCPServers[0].CheckedAt = &later }, true},
		{"ejected", func(r *wire.Report) { r.Targets[0].Ejected = true }, false},
		{"error rate jump", func(r *wire.Report) { r.Targets[0].ErrorRate = 0.3 }, false},
		{"latency doubles", func(r *wire.Report) { r.Targets[0].LatencyMillis = 400 }, false},
		{"new target", func(r *wire.Report) { r.Targets = append(r.Targets, wire.TargetReport{Provider: "a/q", Model: "m"}) }, false},
		{"mcp unhealthy", func(r *wire.Report) { r.MCPServers[0].Healthy = false }, false},
		{"tool added", func(r *wire.Report) { r.MCPServers[0].Tools = append(r.MCPServers[0].Tools, wire.Tool{Name: "t__y"}) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := base(), base()
			tc.mod(b)
			if got := wire.SameHealth(a, b); got != tc.same {
				t.Errorf("SameHealth = %v, want %v", got, tc.same)
			}
		})
	}
	if wire.SameHealth(nil, base()) || !wire.SameHealth(nil, nil) {
		t.Error("nil handling")
	}
}
