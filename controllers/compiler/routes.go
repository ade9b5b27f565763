package compiler

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/dataplane/routetable"
)

// Route defaults, applied when the spec leaves them out (the CRD defaults
// cover attempts and balancing in a cluster; file mode relies on these).
const (
	DefaultRetryAttempts  = 2
	DefaultInitialBackoff = 250 * time.Millisecond
	DefaultMaxBackoff     = 5 * time.Second
	// DefaultRequestTimeout bounds a whole request including fallbacks.
	// Reasoning models can think for minutes, so it is generous.
	DefaultRequestTimeout = 5 * time.Minute
)

// routeState is a compiled route as keys see it.
type routeState struct {
	r      routetable.Route
	served bool
	why    string
	// providers the route can send traffic to (IDs), for budget currency
	// checks of the keys that may use it.
	providers []string
	// sovereign reports whether the route has an InCluster/OnPrem target.
	sovereign bool
}

func (c *compilation) compileRoutes() {
	routes := sortedPtrs(c.in.Routes, func(r *v1alpha1.Route) *metav1.ObjectMeta { return &r.ObjectMeta })

	// Public model names are claimed per namespace by the oldest Route.
	owner := map[string]*v1alpha1.Route{}
	byAge := slices.Clone(routes)
	slices.SortStableFunc(byAge, func(a, b *v1alpha1.Route) int { return olderFirst(&a.ObjectMeta, &b.ObjectMeta) })
	for _, r := range byAge {
		k := r.Namespace + "/" + r.Spec.Model
		if _, taken := owner[k]; !taken {
			owner[k] = r
		}
	}

	for _, r := range routes {
		var acc, refs problems
		if o := owner[r.Namespace+"/"+r.Spec.Model]; o != r {
			acc.add(v1alpha1.ReasonConflict, "model %q is already served by Route %q, which is older; rename the model or delete one of the Routes", r.Spec.Model, o.Name)
		}
		st := c.route(r, &acc, &refs)
		if acc.ok() && refs.ok() {
			st.served = true
			c.table.Routes = append(c.table.Routes, st.r)
		} else if !acc.ok() {
			st.why = acc.summary()
		} else {
			st.why = refs.summary()
		}
		c.routes[r.Namespace+"/"+r.Name] = st
		c.verdict(KindRoute, &r.ObjectMeta, &acc, &refs, st.served)
	}
}

func (c *compilation) route(r *v1alpha1.Route, acc, refs *problems) *routeState {
	s := &r.Spec
	st := &routeState{}
	out := routetable.Route{
		ID:        r.Namespace + "/" + r.Name,
		Namespace: r.Namespace,
		Name:      r.Name,
		Model:     s.Model,
		Balancing: routetable.Balancing(s.Balancing),
	}
	if s.Model == "" || len(s.Model) > 256 || !publicModelRE.MatchString(s.Model) {
		acc.add(v1alpha1.ReasonInvalid, "model %q must be 1 to 256 characters of letters, digits and ._:/@- starting with a letter or digit", s.Model)
	}
	switch s.Balancing {
	case "":
		out.Balancing = routetable.BalancingLeastLatency
	case v1alpha1.BalancingWeighted, v1alpha1.BalancingLeastLatency, v1alpha1.BalancingLeastBusy:
	default:
		acc.add(v1alpha1.ReasonInvalid, "balancing %q is not one of Weighted, LeastLatency, LeastBusy", s.Balancing)
	}

	// used collects every provider the route can reach, in order of
	// appearance, so currency and sovereignty checks see all of them.
	used := map[string]*providerState{}
	var usedOrder []string
	targets := func(ts []v1alpha1.RouteTarget, field string, needWeight bool) []routetable.Target {
		if needWeight && len(ts) == 0 {
			acc.add(v1alpha1.ReasonInvalid, "%s must not be empty", field)
		}
		if len(ts) > 16 {
			acc.add(v1alpha1.ReasonInvalid, "%s has %d entries; at most 16 are allowed", field, len(ts))
		}
		positive := false
		var out []routetable.Target
		for i, t := range ts {
			w := 1
			if t.Weight != nil {
				w = int(*t.Weight)
			}
			if w < 0 || w > 1000 {
				acc.add(v1alpha1.ReasonInvalid, "%s[%d].weight %d must be between 0 and 1000", field, i, w)
			}
			if w > 0 {
				positive = true
			}
			if t.Provider == "" || t.Model == "" {
				acc.add(v1alpha1.ReasonInvalid, "%s[%d] needs both provider and model", field, i)
			}
			id := r.Namespace + "/" + t.Provider
			if p, ok := c.providers[id]; !ok {
				refs.add(v1alpha1.ReasonProviderNotFound, "LLMProvider %q not found in namespace %q", t.Provider, r.Namespace)
			} else if !p.served {
				refs.add(v1alpha1.ReasonProviderNotFound, "LLMProvider %q is not usable: %s", t.Provider, p.why)
			} else if _, seen := used[id]; !seen {
				used[id] = p
				usedOrder = append(usedOrder, id)
			}
			out = append(out, routetable.Target{Provider: id, Model: t.Model, Weight: w})
		}
		if needWeight && len(ts) > 0 && !positive {
			acc.add(v1alpha1.ReasonInvalid, "%s: at least one target needs a weight above 0", field)
		}
		return out
	}
	out.Targets = targets(s.Targets, "targets", true)
	out.Fallbacks = targets(s.Fallbacks, "fallbacks", false)

	// Retries and timeouts.
	out.Retry = routetable.Retry{Attempts: DefaultRetryAttempts, InitialBackoff: DefaultInitialBackoff, MaxBackoff: DefaultMaxBackoff}
	if rp := s.Retry; rp != nil {
		if rp.Attempts != nil {
			out.Retry.Attempts = int(*rp.Attempts)
			if out.Retry.Attempts < 1 || out.Retry.Attempts > 10 {
				acc.add(v1alpha1.ReasonInvalid, "retry.attempts %d must be between 1 and 10", out.Retry.Attempts)
			}
		}
		if rp.InitialBackoff != nil {
			out.Retry.InitialBackoff = duration(rp.InitialBackoff, "retry.initialBackoff", acc)
		}
		if rp.MaxBackoff != nil {
			out.Retry.MaxBackoff = duration(rp.MaxBackoff, "retry.maxBackoff", acc)
		}
		if out.Retry.InitialBackoff > out.Retry.MaxBackoff {
			acc.add(v1alpha1.ReasonInvalid, "retry.initialBackoff %s must not exceed retry.maxBackoff %s", out.Retry.InitialBackoff, out.Retry.MaxBackoff)
		}
	}
	out.Timeouts.Request = DefaultRequestTimeout
	if to := s.Timeouts; to != nil {
		if to.Request != nil {
			out.Timeouts.Request = duration(to.Request, "timeouts.request", acc)
			if out.Timeouts.Request == 0 {
				acc.add(v1alpha1.ReasonInvalid, "timeouts.request must be above 0")
			}
		}
		out.Timeouts.FirstByte = duration(to.FirstByte, "timeouts.firstByte", acc)
		if out.Timeouts.FirstByte > 0 && out.Timeouts.FirstByte >= out.Timeouts.Request {
			acc.add(v1alpha1.ReasonInvalid, "timeouts.firstByte %s must be shorter than timeouts.request %s", out.Timeouts.FirstByte, out.Timeouts.Request)
		}
	}

	// Intent rules.
	ruleNames := map[string]bool{}
	for _, rule := range s.Rules {
		field := "rules[" + rule.Name + "]"
		if !ruleNameRE.MatchString(rule.Name) {
			acc.add(v1alpha1.ReasonInvalid, "rules: name %q must be a DNS label (lowercase letters, digits, '-')", rule.Name)
		}
		if ruleNames[rule.Name] {
			acc.add(v1alpha1.ReasonInvalid, "rules: name %q is used twice", rule.Name)
		}
		ruleNames[rule.Name] = true
		m := rule.Match
		rm := routetable.IntentMatch{
			MinPromptTokens: intPtr(m.MinPromptTokens), MaxPromptTokens: intPtr(m.MaxPromptTokens),
			HasTools: m.HasTools, HasImages: m.HasImages, HasCode: m.HasCode, Reasoning: m.Reasoning,
			MinTurns: intPtr(m.MinTurns), MaxTurns: intPtr(m.MaxTurns),
			Headers: m.Headers, KeyLabels: m.KeyLabels,
		}
		if m.MinPromptTokens == nil && m.MaxPromptTokens == nil && m.HasTools == nil && m.HasImages == nil &&
			m.HasCode == nil && m.Reasoning == nil && m.MinTurns == nil && m.MaxTurns == nil &&
			len(m.Headers) == 0 && len(m.KeyLabels) == 0 {
			acc.add(v1alpha1.ReasonInvalid, "%s.match is empty; a rule must select something", field)
		}
		for _, pair := range [][2]*int32{{m.MinPromptTokens, m.MaxPromptTokens}, {m.MinTurns, m.MaxTurns}} {
			if pair[0] != nil && *pair[0] < 0 || pair[1] != nil && *pair[1] < 0 {
				acc.add(v1alpha1.ReasonInvalid, "%s.match: token and turn bounds must not be negative", field)
			}
			if pair[0] != nil && pair[1] != nil && *pair[0] > *pair[1] {
				acc.add(v1alpha1.ReasonInvalid, "%s.match: a minimum exceeds its maximum", field)
			}
		}
		for h := range m.Headers {
			if !tokenRE.MatchString(h) {
				acc.add(v1alpha1.ReasonInvalid, "%s.match.headers: %q is not a valid header name", field, h)
			}
		}
		out.Rules = append(out.Rules, routetable.IntentRule{
			Name: rule.Name, Match: rm, Targets: targets(rule.Targets, field+".targets", true),
		})
	}

	out.DataPolicy = dataPolicy(s.DataPolicy, "dataPolicy", acc)

	// Checks that need the resolved providers. Skipped when a provider did
	// not resolve: ResolvedRefs already says what to fix first.
	if refs.ok() {
		c.checkEmbeddings(r, used, usedOrder, acc)
		st.sovereign = anySovereign(out.Targets, used) || anySovereign(out.Fallbacks, used)
		if out.DataPolicy != nil && out.DataPolicy.Action == routetable.DataSovereignOnly {
			if !st.sovereign {
				acc.add(v1alpha1.ReasonInvalid, "dataPolicy SovereignOnly needs at least one target or fallback on an InCluster or OnPrem LLMProvider, or requests with sensitive data could never be served")
			}
			for _, rule := range out.Rules {
				if !anySovereign(rule.Targets, used) && !anySovereign(out.Fallbacks, used) {
					acc.add(v1alpha1.ReasonInvalid, "dataPolicy SovereignOnly: rule %q has no target or fallback on an InCluster or OnPrem LLMProvider", rule.Name)
				}
			}
		}
	}
	st.providers = usedOrder
	st.r = out
	return st
}

func anySovereign(ts []routetable.Target, used map[string]*providerState) bool {
	for _, t := range ts {
		if p, ok := used[t.Provider]; ok && p.p.Locality.Sovereign() {
			return true
		}
	}
	return false
}

// checkEmbeddings refuses routes that mix embeddings models with chat
// models: a public model name is served on /v1/embeddings or on
// /v1/chat/completions, and a fallback to the other kind would fail every
// request it takes. Models a provider does not list are not classified.
func (c *compilation) checkEmbeddings(r *v1alpha1.Route, used map[string]*providerState, _ []string, acc *problems) {
	var emb, chat []string
	visit := func(ts []v1alpha1.RouteTarget) {
		for _, t := range ts {
			p, ok := used[r.Namespace+"/"+t.Provider]
			if !ok {
				continue
			}
			isEmb, listed := p.embeddings[t.Model]
			if !listed {
				continue
			}
			name := fmt.Sprintf("%s/%s", t.Provider, t.Model)
			if isEmb {
				if !slices.Contains(emb, name) {
					emb = append(emb, name)
				}
			} else if !slices.Contains(chat, name) {
				chat = append(chat, name)
			}
		}
	}
	visit(r.Spec.Targets)
	visit(r.Spec.Fallbacks)
	for _, rule := range r.Spec.Rules {
		visit(rule.Targets)
	}
	if len(emb) > 0 && len(chat) > 0 {
		acc.add(v1alpha1.ReasonInvalid, "route mixes embeddings models (%s) with chat models (%s); use one Route per kind", strings.Join(emb, ", "), strings.Join(chat, ", "))
	}
	if len(emb) > 0 && len(r.Spec.Rules) > 0 {
		acc.add(v1alpha1.ReasonInvalid, "intent rules select chat requests and cannot apply to an embeddings route (%s)", strings.Join(emb, ", "))
	}
}
