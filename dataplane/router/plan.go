package router

import (
	"math/rand/v2"

	"tollgate.dev/tollgate/dataplane/routetable"
)

type balancingKind uint8

const (
	kindWeighted balancingKind = iota
	kindLeastLatency
	kindLeastBusy
)

func kindOf(b routetable.Balancing) balancingKind {
	switch b {
	case routetable.BalancingWeighted:
		return kindWeighted
	case routetable.BalancingLeastBusy:
		return kindLeastBusy
	default:
		return kindLeastLatency
	}
}

// Router plans the targets of a request.
type Router struct {
	Health *Health
	// Rand returns a float in [0,1); nil means math/rand/v2.
	Rand func() float64
}

// Plan is the ordered list of targets one request will try.
type Plan struct {
	// Rule is the intent rule that selected the primary targets, or "".
	Rule string
	// Targets in the order to try them; never empty for a valid route.
	Targets []routetable.Target
}

// Plan orders the targets of route r for a request with features f: the
// primary targets (an intent rule's, else the route's) by balancing over
// weight and live health, standby (weight 0) targets next, then the
// fallbacks in declared order. Ejected targets go last, as a last resort,
// except one whose cool-down is over, which gets a half-open probe.
func (rt *Router) Plan(r *routetable.Route, f *Features) Plan {
	p := Plan{}
	primary := r.Targets
	for i := range r.Rules {
		if f.Matches(&r.Rules[i].Match) {
			p.Rule = r.Rules[i].Name
			primary = r.Rules[i].Targets
			break
		}
	}
	out := make([]routetable.Target, 0, len(primary)+len(r.Fallbacks))
	var ejected []routetable.Target
	seen := func(t routetable.Target) bool {
		for _, o := range out {
			if o.Provider == t.Provider && o.Model == t.Model {
				return true
			}
		}
		for _, o := range ejected {
			if o.Provider == t.Provider && o.Model == t.Model {
				return true
			}
		}
		return false
	}
	// Split primary into healthy weighted, standby and ejected.
	healthy := make([]routetable.Target, 0, len(primary))
	var standby []routetable.Target
	for _, t := range primary {
		k := TargetKey{t.Provider, t.Model}
		switch {
		case !rt.Health.available(k, false):
			ejected = append(ejected, t)
		case t.Weight <= 0:
			standby = append(standby, t)
		default:
			healthy = append(healthy, t)
		}
	}
	out = rt.order(out, healthy, kindOf(r.Balancing))
	out = append(out, standby...)
	for _, t := range r.Fallbacks {
		if seen(t) {
			continue
		}
		if !rt.Health.available(TargetKey{t.Provider, t.Model}, false) {
			ejected = append(ejected, t)
			continue
		}
		out = append(out, t)
	}
	// Claim half-open probes for targets whose cool-down ended.
	for i := range out {
		rt.Health.available(TargetKey{out[i].Provider, out[i].Model}, true)
	}
	p.Targets = append(out, ejected...)
	return p
}

// order appends ts to out in weighted-random order, the weights scaled by
// live health so traffic shifts away from slow or failing targets while they
// still get a share to prove recovery.
func (rt *Router) order(out, ts []routetable.Target, kind balancingKind) []routetable.Target {
	if len(ts) == 0 {
		return out
	}
	if len(ts) == 1 {
		return append(out, ts[0])
	}
	fastest := 0.0
	if kind == kindLeastLatency {
		for _, t := range ts {
			if l := rt.Health.latency(TargetKey{t.Provider, t.Model}); l > 0 && (fastest == 0 || l < fastest) {
				fastest = l
			}
		}
	}
	var wbuf [16]float64
	var ubuf [16]bool
	w, used := wbuf[:0], ubuf[:]
	if len(ts) > len(wbuf) {
		w, used = make([]float64, 0, len(ts)), make([]bool, len(ts))
	}
	total := 0.0
	for _, t := range ts {
		x := float64(t.Weight)
		if kind != kindWeighted {
			x *= rt.Health.score(TargetKey{t.Provider, t.Model}, kind, fastest)
		} else {
			x *= rt.Health.score(TargetKey{t.Provider, t.Model}, kindWeighted, 0)
		}
		w = append(w, x)
		total += x
	}
	rnd := rt.Rand
	if rnd == nil {
		rnd = rand.Float64
	}
	for range ts {
		pick := -1
		x := rnd() * total
		for i := range ts {
			if used[i] {
				continue
			}
			pick = i
			if x < w[i] {
				break
			}
			x -= w[i]
		}
		used[pick] = true
		total -= w[pick]
		out = append(out, ts[pick])
	}
	return out
}
