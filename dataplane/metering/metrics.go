package metering

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"tollgate.dev/tollgate/dataplane/server"
)

// Token kinds in tollgate_tokens_total. They are disjoint, so they add up:
// prompt is the uncached part of the prompt, completion the part of the
// completion that is not reasoning.
var tokenKinds = [5]string{"prompt", "cache_read", "cache_write", "completion", "reasoning"}

type metrics struct {
	meter       *Meter
	tokens      *prometheus.CounterVec
	cost        *prometheus.CounterVec
	refusals    *prometheus.CounterVec
	limitedC    *prometheus.CounterVec
	unbudgeted  *prometheus.CounterVec
	reports     *prometheus.CounterVec
	spendDesc   *prometheus.Desc
	budgetDesc  *prometheus.Desc
	seriesMu    sync.RWMutex
	seriesCache map[seriesKey]*series
}

type seriesKey struct {
	ns, key, team, route, provider, model, currency string
}

type series struct {
	tokens [5]prometheus.Counter
	cost   prometheus.Counter
	labels seriesKey
	m      *metrics
}

// register registers c, or returns the collector already registered under
// the same description (the server's Metrics declares tollgate_tokens_total
// and tollgate_cost_total with identical options; the meter fills them).
func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	rl := server.RequestLabels
	with := func(extra ...string) []string { return append(append([]string{}, rl...), extra...) }
	m := &metrics{seriesCache: map[seriesKey]*series{}}
	m.tokens = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_tokens_total", Help: "Tokens by kind (prompt, completion, cache_read, cache_write, reasoning).",
	}, with("kind")))
	m.cost = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_cost_total", Help: "Cost of requests in the price currency.",
	}, with("currency")))
	m.refusals = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_budget_refusals_total", Help: "Requests refused before any upstream call because a key or team budget (or this replica's share of it) was used up.",
	}, []string{"namespace", "key", "team", "scope"}))
	m.limitedC = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_rate_limited_total", Help: "Requests refused by a key's rate limit (requests or tokens per minute).",
	}, []string{"namespace", "key", "team", "limit"}))
	m.unbudgeted = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_usage_unbudgeted_total", Help: "Requests whose cost could not be charged to a budget: reason currency_mismatch (price and budget currencies differ; never converted), unpriced (no price known) or no_usage (upstream reported no usage).",
	}, []string{"namespace", "key", "reason"}))
	m.reports = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_usage_reports_total", Help: "Usage reports sent to the controller, by outcome (ok, error).",
	}, []string{"outcome"}))
	m.spendDesc = prometheus.NewDesc("tollgate_budget_spend", "Spend in the current budget period as known to this replica (all replicas' reported spend plus its own unreported).",
		[]string{"namespace", "key", "team", "scope", "currency"}, nil)
	m.budgetDesc = prometheus.NewDesc("tollgate_budget_limit", "Budget amount of the current period.",
		[]string{"namespace", "key", "team", "scope", "currency"}, nil)
	register(reg, prometheus.Collector(budgetCollector{m}))
	return m
}

func (m *metrics) seriesFor(ks *keyState, rec server.UsageRecord, currency string) *series {
	k := seriesKey{ns: ks.ns, key: ks.name, team: ks.team, model: rec.Model, currency: currency}
	if rec.Route != nil {
		k.route = rec.Route.Name
	}
	if rec.Provider != nil {
		k.provider = rec.Provider.Name
	}
	m.seriesMu.RLock()
	s := m.seriesCache[k]
	m.seriesMu.RUnlock()
	if s != nil {
		return s
	}
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	if s = m.seriesCache[k]; s != nil {
		return s
	}
	if len(m.seriesCache) > 65536 {
		clear(m.seriesCache)
	}
	s = &series{labels: k, m: m}
	for i, kind := range tokenKinds {
		s.tokens[i] = m.tokens.WithLabelValues(k.ns, k.key, k.team, k.route, k.provider, k.model, kind)
	}
	s.cost = m.cost.WithLabelValues(k.ns, k.key, k.team, k.route, k.provider, k.model, currency)
	m.seriesCache[k] = s
	return s
}

func (s *series) add(t Tokens, c Cost, unpriced, mismatch, noUsage bool) {
	for i, n := range [5]int64{t.Input, t.CacheRead, t.CacheWrite, t.Output, t.Reasoning} {
		if n > 0 {
			s.tokens[i].Add(float64(n))
		}
	}
	if c.Nanos > 0 || c.Sub > 0 {
		// Metrics are floats by nature; the exact figure is in status.
		s.cost.Add(float64(c.Nanos)/1e9 + float64(c.Sub)/1e18)
	}
	switch {
	case noUsage:
		s.m.unbudgeted.WithLabelValues(s.labels.ns, s.labels.key, "no_usage").Inc()
	case unpriced:
		s.m.unbudgeted.WithLabelValues(s.labels.ns, s.labels.key, "unpriced").Inc()
	case mismatch:
		s.m.unbudgeted.WithLabelValues(s.labels.ns, s.labels.key, "currency_mismatch").Inc()
	}
}

func (m *metrics) refused(ks *keyState, scope string) {
	m.refusals.WithLabelValues(ks.ns, ks.name, ks.team, scope).Inc()
}

func (m *metrics) limited(ks *keyState, limit string) {
	m.limitedC.WithLabelValues(ks.ns, ks.name, ks.team, limit).Inc()
}

// budgetCollector exports each budgeted key's spend at scrape time.
type budgetCollector struct{ m *metrics }

func (c budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.m.spendDesc
	ch <- c.m.budgetDesc
}

func (c budgetCollector) Collect(ch chan<- prometheus.Metric) {
	mt := c.m.meter
	if mt == nil {
		return
	}
	mt.keysMu.RLock()
	states := make([]*keyState, 0, len(mt.keys))
	for _, ks := range mt.keys {
		states = append(states, ks)
	}
	mt.keysMu.RUnlock()
	seenTeam := map[string]bool{}
	for _, ks := range states {
		ks.mu.Lock()
		emit := func(s *scope, scopeName, keyName string) {
			spent := s.global - s.acked + s.cum
			ch <- prometheus.MustNewConstMetric(c.m.spendDesc, prometheus.GaugeValue, float64(spent)/1e9, ks.ns, keyName, ks.team, scopeName, s.currency)
			ch <- prometheus.MustNewConstMetric(c.m.budgetDesc, prometheus.GaugeValue, float64(s.limit)/1e9, ks.ns, keyName, ks.team, scopeName, s.currency)
		}
		if ks.key.limit > 0 {
			emit(&ks.key, "key", ks.name)
		}
		if ks.hasTeam && ks.tm.limit > 0 && !seenTeam[ks.ns+"/"+ks.team] {
			seenTeam[ks.ns+"/"+ks.team] = true
			emit(&ks.tm, "team", "")
		}
		ks.mu.Unlock()
	}
}
