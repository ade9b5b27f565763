package argocd

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"tollgate.dev/tollgate/api/v1alpha1"
)

var transition = metav1.NewTime(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC))

// cond is a condition as the controller writes it: reason always set,
// observedGeneration on the condition.
func cond(typ string, status metav1.ConditionStatus, reason, message string, observed int64) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: observed, LastTransitionTime: transition}
}

// settled are the four conditions of an object in effect at generation g.
func settled(g int64) []metav1.Condition {
	return []metav1.Condition{
		cond(v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, "Compiled into the routing table", g),
		cond(v1alpha1.ConditionResolvedRefs, metav1.ConditionTrue, v1alpha1.ReasonResolvedRefs, "All references resolved", g),
		cond(v1alpha1.ConditionProgrammed, metav1.ConditionTrue, v1alpha1.ReasonProgrammed, "Acknowledged by 3/3 data-plane replicas", g),
		cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady, "In effect on 3/3 data-plane replicas", g),
	}
}

// with replaces the condition of the same type in cs.
func with(cs []metav1.Condition, c metav1.Condition) []metav1.Condition {
	out := append([]metav1.Condition{}, cs...)
	for i := range out {
		if out[i].Type == c.Type {
			out[i] = c
			return out
		}
	}
	return append(out, c)
}

func meta(name string, generation int64) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "llm", Generation: generation, UID: "6b1f7c2e-0000-4000-8000-000000000001"}
}

func common(observed int64, cs []metav1.Condition) v1alpha1.CommonStatus {
	s := v1alpha1.CommonStatus{ObservedGeneration: observed, Conditions: cs}
	if len(cs) > 0 {
		s.Replicas = &v1alpha1.ReplicaStatus{TableVersion: "9f2c1a", Acknowledged: 3, Total: 3}
	}
	return s
}

func route(generation, observed int64, cs []metav1.Condition) *v1alpha1.Route {
	return &v1alpha1.Route{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Route"},
		ObjectMeta: meta("chat-default", generation),
		Spec:       v1alpha1.RouteSpec{Model: "chat-default"},
		Status:     v1alpha1.RouteStatus{CommonStatus: common(observed, cs)},
	}
}

func provider(generation, observed int64, cs []metav1.Condition) *v1alpha1.LLMProvider {
	return &v1alpha1.LLMProvider{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "LLMProvider"},
		ObjectMeta: meta("anthropic", generation),
		Status:     v1alpha1.LLMProviderStatus{CommonStatus: common(observed, cs)},
	}
}

func mcpTool(generation, observed int64, cs []metav1.Condition) *v1alpha1.MCPTool {
	return &v1alpha1.MCPTool{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "MCPTool"},
		ObjectMeta: meta("github", generation),
		Status:     v1alpha1.MCPToolStatus{CommonStatus: common(observed, cs)},
	}
}

func virtualKey(generation, observed int64, disabled bool, cs []metav1.Condition) *v1alpha1.VirtualKey {
	now := metav1.NewTime(transition.Add(time.Hour))
	return &v1alpha1.VirtualKey{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "VirtualKey"},
		ObjectMeta: meta("search-prod", generation),
		Spec:       v1alpha1.VirtualKeySpec{Team: "search", Disabled: disabled},
		Status: v1alpha1.VirtualKeyStatus{
			CommonStatus: common(observed, cs),
			SecretName:   "search-prod-key",
			KeyPrefix:    "tg-3kf9",
			Usage: &v1alpha1.UsageStatus{
				PeriodStart: &transition, Spend: "41.27", Currency: "USD", Budget: "50", PercentUsed: "82.54",
				Requests: 1812, PromptTokens: 2_400_000, CompletionTokens: 310_000, CacheReadTokens: 900_000, LastUpdated: &now,
			},
		},
	}
}

func kindOf(obj any) string {
	switch obj.(type) {
	case *v1alpha1.Route:
		return "Route"
	case *v1alpha1.LLMProvider:
		return "LLMProvider"
	case *v1alpha1.MCPTool:
		return "MCPTool"
	case *v1alpha1.VirtualKey:
		return "VirtualKey"
	}
	panic("unknown kind")
}

// TestHealth runs every case through health.lua and through the copy
// argocd-cm.yaml installs for the object's kind.
func TestHealth(t *testing.T) {
	// pending is what the controller writes while replicas acknowledge
	// (Programmed Unknown/Pending) or none is connected (False/NoReplicas);
	// Ready repeats the first failing condition.
	pending := func(g int64, reason, msg string) []metav1.Condition {
		status := metav1.ConditionUnknown
		if reason == v1alpha1.ReasonNoReplicas {
			status = metav1.ConditionFalse
		}
		cs := with(settled(g), cond(v1alpha1.ConditionProgrammed, status, reason, msg, g))
		return with(cs, cond(v1alpha1.ConditionReady, status, reason, "Programmed: "+msg, g))
	}
	noGenOnConditions := settled(2)
	for i := range noGenOnConditions {
		noGenOnConditions[i].ObservedGeneration = 0
	}
	cases := []struct {
		name        string
		obj         any
		wantStatus  string
		wantMessage string // substring
	}{
		{"route without status", route(1, 0, nil), "Progressing", "Waiting for the Tollgate controller"},
		{"route with empty conditions", route(1, 1, []metav1.Condition{}), "Progressing", "Waiting for the Tollgate controller"},
		{"route ready", route(3, 3, settled(3)), "Healthy", "In effect on 3/3 data-plane replicas"},
		{"route ready, generation only on status", route(2, 2, noGenOnConditions), "Healthy", "In effect"},
		{"route edited, not yet observed", route(4, 3, settled(3)), "Progressing", "observe generation 4 (status describes generation 3)"},
		{"route programming pending", route(5, 5, pending(5, v1alpha1.ReasonPending, "Acknowledged by 1/3 data-plane replicas")),
			"Progressing", "Programmed=Unknown (Pending): Acknowledged by 1/3 data-plane replicas"},
		{"route with no data plane connected", route(1, 1, pending(1, v1alpha1.ReasonNoReplicas, "No data-plane replica is connected to the controller (acknowledged by 0/0 data-plane replicas)")),
			"Progressing", "Programmed=False (NoReplicas)"},
		{"route rejected by a replica", route(6, 6, with(with(settled(6),
			cond(v1alpha1.ConditionProgrammed, metav1.ConditionFalse, "Rejected", "Acknowledged by 2/3 data-plane replicas; the current routing table was rejected by tollgate-dataplane-7d9f (unknown provider type)", 6)),
			cond(v1alpha1.ConditionReady, metav1.ConditionFalse, "Rejected", "Programmed: Acknowledged by 2/3 data-plane replicas; the current routing table was rejected by tollgate-dataplane-7d9f (unknown provider type)", 6))),
			"Degraded", "Programmed=False (Rejected): Acknowledged by 2/3 data-plane replicas; the current routing table was rejected by tollgate-dataplane-7d9f"},
		{"route rejected for an older generation", route(7, 6, with(settled(6),
			cond(v1alpha1.ConditionProgrammed, metav1.ConditionFalse, "Rejected", "rejected by tollgate-dataplane-7d9f", 6))),
			"Progressing", "observe generation 7"},
		{"route programmed unknown on first visit", route(1, 1, []metav1.Condition{
			cond(v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, "Compiled into the routing table", 1),
			cond(v1alpha1.ConditionResolvedRefs, metav1.ConditionTrue, v1alpha1.ReasonResolvedRefs, "All references resolved", 1),
			cond(v1alpha1.ConditionProgrammed, metav1.ConditionUnknown, v1alpha1.ReasonPending, "Waiting for the routing table to be pushed", 1),
			cond(v1alpha1.ConditionReady, metav1.ConditionUnknown, v1alpha1.ReasonPending, "Waiting for the routing table to be pushed", 1),
		}), "Progressing", "Programmed=Unknown (Pending)"},
		{"route invalid", route(2, 2, with(with(settled(2),
			cond(v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonConflict, `model "gpt-4o" is already published by Route llm/chat-main`, 2)),
			cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNotReady, "Not accepted", 2))),
			"Degraded", `Accepted=False (Conflict): model "gpt-4o" is already published by Route llm/chat-main`},
		{"route with a missing provider", route(2, 2, with(with(settled(2),
			cond(v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonProviderNotFound, `spec.targets[1].provider: LLMProvider "azure-eu" not found`, 2)),
			cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNotReady, "References do not resolve", 2))),
			"Degraded", `ResolvedRefs=False (ProviderNotFound): spec.targets[1].provider: LLMProvider "azure-eu" not found`},
		{"route fixed after an error, not yet observed", route(3, 2, with(settled(2),
			cond(v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonInvalid, "spec.retry.timeout: must be positive", 2))),
			"Progressing", "observe generation 3"},
		{"route ready but status.observedGeneration missing", route(7, 0, settled(7)), "Healthy", "In effect"},

		{"provider ready and healthy", provider(1, 1, with(settled(1), cond(v1alpha1.ConditionHealthy, metav1.ConditionTrue, v1alpha1.ReasonHealthy, "2/2 models answering", 1))),
			"Healthy", "In effect"},
		{"provider ready, health not yet known", provider(1, 1, with(settled(1), cond(v1alpha1.ConditionHealthy, metav1.ConditionUnknown, v1alpha1.ReasonPending, "No traffic yet", 1))),
			"Healthy", "In effect"},
		{"provider ready but upstream down", provider(1, 1, with(settled(1), cond(v1alpha1.ConditionHealthy, metav1.ConditionFalse, v1alpha1.ReasonUnhealthy, "claude-sonnet-4: ejected after 5 consecutive 529 responses", 1))),
			"Degraded", "upstream is unhealthy: Healthy=False (Unhealthy): claude-sonnet-4: ejected"},
		{"provider with a missing credentials Secret", provider(1, 1, with(with(settled(1),
			cond(v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound, `spec.credentials.apiKey: Secret "anthropic-credentials" not found in namespace "llm"`, 1)),
			cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNotReady, "References do not resolve", 1))),
			"Degraded", `ResolvedRefs=False (SecretNotFound): spec.credentials.apiKey: Secret "anthropic-credentials" not found in namespace "llm"`},
		{"provider with a Secret key missing", provider(2, 2, with(settled(2),
			cond(v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonSecretKeyMissing, `spec.credentials.apiKey: Secret "anthropic-credentials" has no key "api-key"`, 2))),
			"Degraded", "SecretKeyMissing"},

		{"mcp tool ready", mcpTool(4, 4, settled(4)), "Healthy", "In effect"},
		{"mcp tool server unreachable", mcpTool(4, 4, with(settled(4), cond(v1alpha1.ConditionHealthy, metav1.ConditionFalse, v1alpha1.ReasonUnhealthy, "initialize: dial tcp 10.0.3.7:8080: connection refused", 4))),
			"Degraded", "connection refused"},
		{"mcp tool unsupported transport", mcpTool(1, 1, with(settled(1), cond(v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonUnsupported, "spec.transport: sse is not supported", 1))),
			"Degraded", "Accepted=False (Unsupported)"},
		{"mcp tool being programmed", mcpTool(2, 2, pending(2, v1alpha1.ReasonPending, "Acknowledged by 0/2 data-plane replicas")),
			"Progressing", "0/2"},

		{"virtual key ready", virtualKey(1, 1, false, settled(1)), "Healthy", "In effect"},
		{"virtual key over budget", virtualKey(1, 1, false, with(settled(1),
			cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonBudgetExceeded, "Spent 50.02 of 50 USD this month; requests are refused until 2026-12-01", 1))),
			"Suspended", "Ready=False (BudgetExceeded): Spent 50.02 of 50 USD"},
		{"virtual key disabled", virtualKey(3, 3, true, settled(3)), "Suspended", "Disabled"},
		{"virtual key with team budget conflict", virtualKey(2, 2, false, with(settled(2),
			cond(v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonConflict, `spec.teamBudget differs from VirtualKey llm/search-dev of team "search"`, 2))),
			"Degraded", "spec.teamBudget differs"},
		{"virtual key naming a missing route", virtualKey(2, 2, false, with(settled(2),
			cond(v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonRouteNotFound, `spec.allowedRoutes[0]: Route "chat-eu" not found`, 2))),
			"Degraded", "RouteNotFound"},
		{"virtual key edited, old status", virtualKey(5, 4, false, settled(4)), "Progressing", "observe generation 5"},
	}

	canonical := readScript(t)
	installed := installedScripts(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kind := kindOf(tc.obj)
			for source, script := range map[string]string{"health.lua": canonical, "argocd-cm " + kind: installed[kind]} {
				got := runHealth(t, script, tc.obj)
				if got.Status != tc.wantStatus || !strings.Contains(got.Message, tc.wantMessage) {
					t.Errorf("%s: got %s %q, want %s with message containing %q", source, got.Status, got.Message, tc.wantStatus, tc.wantMessage)
				}
				if got.Message == "" {
					t.Errorf("%s: empty message", source)
				}
			}
		})
	}
}

// TestHealthTolerance feeds malformed or partial objects: the script must
// still answer with a valid status, never raise a Lua error (Argo CD would
// show the error instead of a health).
func TestHealthTolerance(t *testing.T) {
	script := readScript(t)
	for name, obj := range map[string]any{
		"no metadata":               map[string]any{"kind": "Route", "status": map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}}},
		"condition without type":    map[string]any{"kind": "Route", "metadata": map[string]any{"generation": 1}, "status": map[string]any{"conditions": []any{map[string]any{"status": "True"}}}},
		"conditions without reason": map[string]any{"kind": "MCPTool", "metadata": map[string]any{"generation": 1}, "status": map[string]any{"observedGeneration": 1, "conditions": []any{map[string]any{"type": "Accepted", "status": "False"}}}},
		"status without conditions": map[string]any{"kind": "VirtualKey", "metadata": map[string]any{"generation": 1}, "status": map[string]any{"usage": map[string]any{"spend": "0"}}},
		"unknown kind":              map[string]any{"kind": "Something", "metadata": map[string]any{"generation": 1}, "status": map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "True", "observedGeneration": 1}}}},
	} {
		t.Run(name, func(t *testing.T) {
			got := runHealth(t, script, obj)
			if got.Message == "" {
				t.Errorf("got %s with an empty message", got.Status)
			}
		})
	}
}
