package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/dataplane/sync/wire"
)

// setReport makes replica id report r (nil: nothing) and notifies, as the
// push server does on a meaningful change.
func (p *fakePublisher) setReport(id string, r *wire.Report) {
	p.mu.Lock()
	p.replicas[id].Report = r
	p.mu.Unlock()
	p.notify()
}

func TestProviderHealth(t *testing.T) {
	rep := func(ts ...wire.TargetReport) *wire.Report { return &wire.Report{Targets: ts} }
	tr := func(model string, ejected bool, errRate float64, lat int64) wire.TargetReport {
		return wire.TargetReport{Provider: "ns/p", Model: model, Ejected: ejected, ErrorRate: errRate, LatencyMillis: lat, Attempts: 3}
	}
	for _, tc := range []struct {
		name    string
		reps    []*wire.Report
		targets []v1alpha1.TargetHealth
		status  metav1.ConditionStatus
		reason  string
		msg     string
	}{
		{name: "no reports", status: metav1.ConditionUnknown, reason: ReasonNoReports},
		{name: "no traffic", reps: []*wire.Report{rep(), rep(wire.TargetReport{Provider: "ns/p", Model: "m"})},
			status: metav1.ConditionUnknown, reason: ReasonNoTraffic},
		{name: "other provider only", reps: []*wire.Report{{Targets: []wire.TargetReport{{Provider: "ns/q", Model: "m", Attempts: 1}}}},
			status: metav1.ConditionUnknown, reason: ReasonNoTraffic},
		{name: "healthy, averaged and rounded",
			reps:    []*wire.Report{rep(tr("m", false, 0.011, 1234)), rep(tr("m", false, 0.02, 1300))},
			targets: []v1alpha1.TargetHealth{{Model: "m", ErrorRate: "0.02", LatencyMillis: 1300, Replicas: 2}},
			status:  metav1.ConditionTrue, reason: v1alpha1.ReasonHealthy, msg: "1/1 targets serving"},
		{name: "ejected on one replica of two is ejected",
			reps:    []*wire.Report{rep(tr("m", true, 0.8, 0)), rep(tr("m", false, 0.1, 87))},
			targets: []v1alpha1.TargetHealth{{Model: "m", Ejected: true, ErrorRate: "0.45", LatencyMillis: 87, Replicas: 2}},
			status:  metav1.ConditionFalse, reason: v1alpha1.ReasonUnhealthy, msg: "m (on 1/2 replicas)"},
		{name: "one of two targets ejected",
			reps: []*wire.Report{rep(tr("b", true, 1, 0), tr("a", false, 0, 40))},
			targets: []v1alpha1.TargetHealth{
				{Model: "a", ErrorRate: "0.00", LatencyMillis: 40, Replicas: 1},
				{Model: "b", Ejected: true, ErrorRate: "1.00", Replicas: 1},
			},
			status: metav1.ConditionTrue, reason: v1alpha1.ReasonHealthy, msg: "1/2 targets serving; ejected after failures: b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			targets, c := providerHealth("ns/p", tc.reps, 7)
			if fmt.Sprint(targets) != fmt.Sprint(tc.targets) {
				t.Errorf("targets = %+v, want %+v", targets, tc.targets)
			}
			if c.Type != v1alpha1.ConditionHealthy || c.Status != tc.status || c.Reason != tc.reason || c.ObservedGeneration != 7 {
				t.Errorf("condition = %+v", c)
			}
			if tc.msg != "" && !strings.Contains(c.Message, tc.msg) {
				t.Errorf("message %q does not contain %q", c.Message, tc.msg)
			}
		})
	}
}

func TestRoundLatency(t *testing.T) {
	for in, want := range map[float64]int64{0.2: 1, 8.6: 9, 87.4: 87, 123: 120, 1234: 1200, 1250: 1300, 98765: 99000} {
		if got := roundLatency(in); got != want {
			t.Errorf("roundLatency(%v) = %d, want %d", in, got, want)
		}
	}
}

func TestMCPHealth(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	ok := wire.MCPReport{ID: "ns/docs", Healthy: true, Message: "2 tools discovered, 1 exposed", CheckedAt: &t0,
		Tools: []wire.Tool{{Name: "docs__search", Description: "Search"}}}
	down := wire.MCPReport{ID: "ns/docs", Message: "connection refused", CheckedAt: &t1}
	for _, tc := range []struct {
		name   string
		reps   []*wire.Report
		tools  int
		last   *time.Time
		status metav1.ConditionStatus
		msg    string
	}{
		{name: "no reports", status: metav1.ConditionUnknown},
		{name: "not checked", reps: []*wire.Report{{MCPServers: []wire.MCPReport{{ID: "ns/docs"}}}}, status: metav1.ConditionUnknown},
		{name: "healthy", reps: []*wire.Report{{MCPServers: []wire.MCPReport{ok}}}, tools: 1, last: &t0, status: metav1.ConditionTrue, msg: "1 exposed"},
		{name: "down everywhere keeps no tools", reps: []*wire.Report{{MCPServers: []wire.MCPReport{down}}}, last: &t1, status: metav1.ConditionFalse, msg: "connection refused"},
		{name: "down on one", reps: []*wire.Report{{MCPServers: []wire.MCPReport{down}}, {MCPServers: []wire.MCPReport{ok}}}, tools: 1, last: &t1,
			status: metav1.ConditionTrue, msg: "unreachable from 1/2 data-plane replicas: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tools, last, c := mcpHealth("ns/docs", tc.reps, 3)
			if len(tools) != tc.tools || fmt.Sprint(last) != fmt.Sprint(tc.last) || c.Status != tc.status || !strings.Contains(c.Message, tc.msg) {
				t.Errorf("got tools %+v, last %v, condition %+v", tools, last, c)
			}
		})
	}
}

// TestHealthReachesStatus: a replica report marks an LLMProvider target
// ejected (Healthy=False) and lists an MCPTool's tools (Healthy=True); a
// report that differs only by jitter writes nothing.
func TestHealthReachesStatus(t *testing.T) {
	ns := newNamespace(t)
	p, vk, tool := provider(ns, "openai"), virtualKey(ns, "search"), mcpTool(ns, "docs", "search")
	t.Cleanup(func() { fakePub.setReport("dp-0", nil) })
	create(t, credentialsSecret(ns, "sk-test-0123456789"), p, vk, tool)
	for _, o := range []client.Object{p, tool} {
		eventually(t, fmt.Sprintf("%T %s reports no health yet", o, o.GetName()), func() error {
			return hasConditions(t, o, want{v1alpha1.ConditionHealthy, metav1.ConditionUnknown, ReasonNoReports, ""})
		})
	}

	checked := time.Now().Truncate(time.Second)
	report := func(latency int64, errRate float64, checkedAt time.Time) *wire.Report {
		return &wire.Report{
			Targets: []wire.TargetReport{
				{Provider: ns + "/openai", Model: "gpt-4.1-mini", Ejected: true, ErrorRate: errRate, LatencyMillis: latency, Attempts: 12},
				{Provider: ns + "/openai", Model: "unused", Attempts: 0},
				{Provider: "elsewhere/openai", Model: "gpt-4.1-mini", Attempts: 3},
			},
			MCPServers: []wire.MCPReport{{
				ID: ns + "/docs", Healthy: true, Message: "3 tools discovered, 2 exposed", CheckedAt: &checkedAt,
				Tools: []wire.Tool{{Name: "docs__search", Description: "Search the docs"}, {Name: "docs__fetch"}},
			}},
		}
	}
	fakePub.setReport("dp-0", report(1234, 0.8, checked))
	eventually(t, "provider unhealthy", func() error {
		if err := hasConditions(t, p, want{v1alpha1.ConditionHealthy, metav1.ConditionFalse, v1alpha1.ReasonUnhealthy, "gpt-4.1-mini"}); err != nil {
			return err
		}
		want := []v1alpha1.TargetHealth{{Model: "gpt-4.1-mini", Ejected: true, ErrorRate: "0.80", LatencyMillis: 1200, Replicas: 1}}
		if fmt.Sprint(p.Status.Targets) != fmt.Sprint(want) {
			return fmt.Errorf("targets %+v, want %+v", p.Status.Targets, want)
		}
		return nil
	})
	eventually(t, "tool healthy with its tools", func() error {
		if err := hasConditions(t, tool, want{v1alpha1.ConditionHealthy, metav1.ConditionTrue, v1alpha1.ReasonHealthy, "2 exposed"}); err != nil {
			return err
		}
		st := tool.Status
		if len(st.Tools) != 2 || st.Tools[0].Name != "docs__fetch" || st.Tools[1].Description != "Search the docs" {
			return fmt.Errorf("tools %+v", st.Tools)
		}
		if st.LastProbe == nil || !st.LastProbe.Time.Equal(checked) {
			return fmt.Errorf("lastProbe %v, want %v", st.LastProbe, checked)
		}
		return nil
	})
	if c := meta.FindStatusCondition(tool.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Ready = %+v", c)
	}
	prv, trv := p.ResourceVersion, tool.ResourceVersion

	// Jitter (latency, error rate within rounding) and a routine re-check:
	// reconciles happen, nothing is written.
	before := fakePub.published()
	fakePub.setReport("dp-0", report(1249, 0.802, checked.Add(10*time.Second)))
	for range 3 {
		fakePub.notify()
	}
	other := newNamespace(t)
	vk2 := virtualKey(other, "unrelated")
	create(t, vk2)
	eventually(t, "unrelated key ready", func() error { return hasConditions(t, vk2, allReady...) })
	if fakePub.published() == before {
		t.Fatal("no reconcile happened")
	}
	for _, o := range []client.Object{p, tool} {
		if err := k8sClient.Get(ctx(t), client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatal(err)
		}
	}
	if p.ResourceVersion != prv || tool.ResourceVersion != trv {
		t.Errorf("status rewritten for jitter: provider %s -> %s, tool %s -> %s", prv, p.ResourceVersion, trv, tool.ResourceVersion)
	}

	// Recovery: the target serves again.
	r := report(300, 0.1, checked)
	r.Targets[0].Ejected = false
	fakePub.setReport("dp-0", r)
	eventually(t, "provider healthy again", func() error {
		return hasConditions(t, p, want{v1alpha1.ConditionHealthy, metav1.ConditionTrue, v1alpha1.ReasonHealthy, "1/1 targets serving"})
	})
}

func TestReportsOfConnectedReplicasOnly(t *testing.T) {
	r := &wire.Report{}
	got := reports([]Replica{{ID: "a", Connected: true, Report: r}, {ID: "b", Report: &wire.Report{}}, {ID: "c", Connected: true}})
	if len(got) != 1 || got[0] != r {
		t.Errorf("reports = %v", got)
	}
}
