package router

import (
	"net/http"
	"testing"
	"time"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
)

func ptr[T any](v T) *T { return &v }

func TestExtractFeatures(t *testing.T) {
	req := &openai.ChatRequest{
		Messages: []openai.Message{
			{Role: "system", Content: openai.TextContent("You are terse.")},
			{Role: "user", Content: openai.PartsContent(
				openai.ContentPart{Type: "text", Text: "Fix this:\n```go\nfunc main() {}\n```"},
				openai.ContentPart{Type: "image_url", ImageURL: &openai.ImageURL{URL: "https://example.com/a.png"}},
			)},
		},
		Tools:           []openai.Tool{{Type: "function", Function: openai.FunctionDecl{Name: "run"}}},
		ReasoningEffort: "high",
	}
	f := ExtractFeatures(req, http.Header{}, &routetable.Key{Labels: map[string]string{"tier": "gold"}}, true)
	if !f.HasTools || !f.HasImages || !f.HasCode || !f.Reasoning || f.Turns != 2 {
		t.Fatalf("features = %+v", f)
	}
	if f.PromptTokens < 85 || f.PromptTokens > 120 {
		t.Fatalf("prompt tokens = %d, want ~95 (text/4 + 85 per image)", f.PromptTokens)
	}
	plain := ExtractFeatures(&openai.ChatRequest{Messages: []openai.Message{{Role: "user", Content: openai.TextContent("What is the capital of France?")}}}, nil, nil, true)
	if plain.HasTools || plain.HasImages || plain.HasCode || plain.Reasoning {
		t.Fatalf("plain prompt features = %+v", plain)
	}
	if skipped := ExtractFeatures(req, http.Header{}, nil, false); skipped.HasCode || skipped.PromptTokens != f.PromptTokens {
		t.Fatalf("without withCode the code scan must not run: %+v", skipped)
	}
	yes := true
	if NeedsCode(&routetable.Route{Rules: []routetable.IntentRule{{Match: routetable.IntentMatch{HasTools: &yes}}}}) ||
		!NeedsCode(&routetable.Route{Rules: []routetable.IntentRule{{}, {Match: routetable.IntentMatch{HasCode: &yes}}}}) {
		t.Fatal("NeedsCode must be true exactly when a rule matches on hasCode")
	}
}

func TestMatches(t *testing.T) {
	f := Features{PromptTokens: 500, HasTools: true, Turns: 3, Header: http.Header{"X-Tier": {"batch"}}, KeyLabels: map[string]string{"team": "ml"}}
	cases := []struct {
		name string
		m    routetable.IntentMatch
		want bool
	}{
		{"empty matches", routetable.IntentMatch{}, true},
		{"min tokens ok", routetable.IntentMatch{MinPromptTokens: ptr(400)}, true},
		{"min tokens fail", routetable.IntentMatch{MinPromptTokens: ptr(501)}, false},
		{"max tokens fail", routetable.IntentMatch{MaxPromptTokens: ptr(499)}, false},
		{"tools", routetable.IntentMatch{HasTools: ptr(true)}, true},
		{"no tools wanted", routetable.IntentMatch{HasTools: ptr(false)}, false},
		{"images wanted", routetable.IntentMatch{HasImages: ptr(true)}, false},
		{"turns range", routetable.IntentMatch{MinTurns: ptr(2), MaxTurns: ptr(3)}, true},
		{"max turns fail", routetable.IntentMatch{MaxTurns: ptr(2)}, false},
		{"header", routetable.IntentMatch{Headers: map[string]string{"x-tier": "batch"}}, true},
		{"header mismatch", routetable.IntentMatch{Headers: map[string]string{"x-tier": "online"}}, false},
		{"key label", routetable.IntentMatch{KeyLabels: map[string]string{"team": "ml"}}, true},
		{"key label missing", routetable.IntentMatch{KeyLabels: map[string]string{"env": "prod"}}, false},
		{"conjunction fails on one", routetable.IntentMatch{HasTools: ptr(true), Reasoning: ptr(true)}, false},
	}
	for _, c := range cases {
		if got := f.Matches(&c.m); got != c.want {
			t.Errorf("%s: Matches = %v, want %v", c.name, got, c.want)
		}
	}
}

func route() *routetable.Route {
	return &routetable.Route{
		ID: "ns/r", Namespace: "ns", Name: "r", Model: "m", Balancing: routetable.BalancingWeighted,
		Targets:   []routetable.Target{{Provider: "ns/a", Model: "a", Weight: 3}, {Provider: "ns/b", Model: "b", Weight: 1}, {Provider: "ns/s", Model: "s", Weight: 0}},
		Fallbacks: []routetable.Target{{Provider: "ns/f", Model: "f", Weight: 1}, {Provider: "ns/a", Model: "a"}},
		Rules: []routetable.IntentRule{{Name: "tools", Match: routetable.IntentMatch{HasTools: ptr(true)},
			Targets: []routetable.Target{{Provider: "ns/big", Model: "big", Weight: 1}}}},
	}
}

func names(ts []routetable.Target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Model)
	}
	return out
}

func TestPlanOrderAndRules(t *testing.T) {
	rt := &Router{Health: NewHealth(DefaultHealthConfig, nil), Rand: func() float64 { return 0 }}
	p := rt.Plan(route(), &Features{})
	got := names(p.Targets)
	want := []string{"a", "b", "s", "f"} // weighted, then standby, then fallbacks (duplicate "a" dropped)
	if len(got) != len(want) {
		t.Fatalf("plan = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("plan = %v, want %v", got, want)
		}
	}
	p = rt.Plan(route(), &Features{HasTools: true})
	if p.Rule != "tools" || names(p.Targets)[0] != "big" {
		t.Fatalf("rule plan = %v (%q)", names(p.Targets), p.Rule)
	}
}

func TestPlanWeightedSplit(t *testing.T) {
	rt := &Router{Health: NewHealth(DefaultHealthConfig, nil)}
	first := map[string]int{}
	for i := 0; i < 20000; i++ {
		first[rt.Plan(route(), &Features{}).Targets[0].Model]++
	}
	share := float64(first["a"]) / 20000
	if share < 0.72 || share > 0.78 {
		t.Fatalf("target a got %.3f of first picks, want ~0.75 (weights 3:1): %v", share, first)
	}
}

func TestEjectionAndHalfOpenProbe(t *testing.T) {
	now := time.Unix(1000, 0)
	h := NewHealth(DefaultHealthConfig, func() time.Time { return now })
	rt := &Router{Health: h, Rand: func() float64 { return 0 }}
	a := TargetKey{"ns/a", "a"}
	for i := 0; i < DefaultHealthConfig.EjectAfter; i++ {
		h.Start(a)(false, 0)
	}
	got := names(rt.Plan(route(), &Features{}).Targets)
	if got[0] != "b" || got[len(got)-1] != "a" {
		t.Fatalf("ejected target should go last: %v", got)
	}
	now = now.Add(DefaultHealthConfig.BaseEjection + time.Second)
	got = names(rt.Plan(route(), &Features{}).Targets)
	if got[0] != "a" {
		t.Fatalf("after cool-down the target should get a half-open probe: %v", got)
	}
	// While the probe is in flight, no one else is sent there first.
	got = names(rt.Plan(route(), &Features{}).Targets)
	if got[0] == "a" {
		t.Fatalf("second request while probing should not pick a first: %v", got)
	}
	// The probe fails: re-ejected with a doubled cool-down.
	h.Start(a)(false, 0)
	now = now.Add(DefaultHealthConfig.BaseEjection + time.Second)
	if got = names(rt.Plan(route(), &Features{}).Targets); got[0] == "a" {
		t.Fatalf("re-ejection should double the cool-down: %v", got)
	}
	now = now.Add(DefaultHealthConfig.BaseEjection)
	if got = names(rt.Plan(route(), &Features{}).Targets); got[0] != "a" {
		t.Fatalf("after the doubled cool-down a probe is due: %v", got)
	}
	h.Start(a)(true, 10*time.Millisecond)
	for _, s := range h.Snapshot() {
		if s.Key == a && s.Ejected {
			t.Fatal("a successful probe must restore the target")
		}
	}
}

func TestLeastLatencyShiftsTraffic(t *testing.T) {
	h := NewHealth(DefaultHealthConfig, nil)
	rt := &Router{Health: h}
	r := route()
	r.Balancing = routetable.BalancingLeastLatency
	r.Targets[0].Weight, r.Targets[1].Weight = 1, 1
	for i := 0; i < 20; i++ {
		h.Start(TargetKey{"ns/a", "a"})(true, 400*time.Millisecond)
		h.Start(TargetKey{"ns/b", "b"})(true, 20*time.Millisecond)
	}
	first := map[string]int{}
	for i := 0; i < 5000; i++ {
		first[rt.Plan(r, &Features{}).Targets[0].Model]++
	}
	if first["b"] < 4500 {
		t.Fatalf("fast target should take most traffic: %v", first)
	}
	if first["a"] == 0 {
		t.Fatalf("slow target should still be probed now and then: %v", first)
	}
}

func TestActiveEjectAndRestore(t *testing.T) {
	now := time.Unix(1000, 0)
	h := NewHealth(DefaultHealthConfig, func() time.Time { return now })
	k := TargetKey{Provider: "ns/vllm", Model: "m"}
	ejected := func() bool {
		for _, s := range h.Snapshot() {
			if s.Key == k {
				return s.Ejected
			}
		}
		return false
	}
	h.Eject(k)
	if !ejected() || h.available(k, false) {
		t.Fatal("Eject must take the target out of service at once")
	}
	now = now.Add(DefaultHealthConfig.BaseEjection + time.Second)
	h.Eject(k) // still dead when the cool-down ends: no half-open user request
	if !ejected() {
		t.Fatal("a second Eject after the cool-down must eject again")
	}
	now = now.Add(DefaultHealthConfig.BaseEjection + time.Second)
	if !ejected() {
		t.Fatal("the second cool-down must be longer than the first")
	}
	h.Restore(k)
	if ejected() || !h.available(k, false) {
		t.Fatal("Restore must return the target to service")
	}
	for _, s := range h.Snapshot() {
		if s.Key == k && (s.Attempts != 0 || s.ErrorRate != 0) {
			t.Fatalf("probes are not user traffic: %+v", s)
		}
	}
}
