package metering

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/server"
)

// Options configure a Meter.
type Options struct {
	// Registerer receives the metering metrics (nil: a private registry).
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
	Log logr.Logger

	// ReportURL is the controller's usage endpoint, e.g.
	// http://tollgate-controller:8082/v1/usage. Empty disables reporting
	// (file mode): each process then enforces budgets on its own figures.
	ReportURL string
	// Token returns the bearer token presented to the controller.
	Token func() (string, error)
	// Replica names this replica in reports (e.g. the pod name).
	Replica string
	// Client sends reports (default: a client with a 10s timeout).
	Client *http.Client
	// Interval between reports (default 1s).
	Interval time.Duration
	// AllowanceTTL is how long an allowance from the controller is trusted
	// without a newer answer (default 10 × Interval). After that the
	// process enforces budgets on the last known global spend alone.
	AllowanceTTL time.Duration
	// FlushTimeout bounds the final report on Close (default 5s).
	FlushTimeout time.Duration
	// MinReserveTokens is the least number of tokens reserved per request
	// when the client declares no output limit (default 1024).
	MinReserveTokens int
}

// Meter implements server.Meter: it prices requests, enforces budgets and
// rate limits, exports metrics and reports usage to the controller.
type Meter struct {
	opts  Options
	now   func() time.Time
	log   logr.Logger
	epoch string

	keysMu sync.RWMutex
	keys   map[string]*keyState

	pricesMu sync.RWMutex
	prices   map[priceKey]*priceEntry

	routeMu    sync.RWMutex
	routePrice map[string]int64 // route ID -> highest price per 1M tokens of its targets

	replicas atomic.Int64
	metrics  *metrics
	pool     sync.Pool

	rep *reporter
}

var _ server.Meter = (*Meter)(nil)

// New returns a Meter; if opts.ReportURL is set, it starts reporting
// until Close.
func New(opts Options) *Meter {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.AllowanceTTL <= 0 {
		opts.AllowanceTTL = 10 * opts.Interval
	}
	if opts.FlushTimeout <= 0 {
		opts.FlushTimeout = 5 * time.Second
	}
	if opts.MinReserveTokens <= 0 {
		opts.MinReserveTokens = 1024
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	m := &Meter{
		opts:       opts,
		now:        opts.Now,
		log:        opts.Log,
		epoch:      newEpoch(),
		keys:       map[string]*keyState{},
		prices:     map[priceKey]*priceEntry{},
		routePrice: map[string]int64{},
		metrics:    newMetrics(opts.Registerer),
	}
	m.replicas.Store(1)
	m.pool.New = func() any {
		r := &reservation{m: m}
		r.fn = r.release
		return r
	}
	m.metrics.meter = m
	if opts.ReportURL != "" {
		m.rep = newReporter(m)
		go m.rep.run()
	}
	return m
}

func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Epoch is this process's random reporting epoch.
func (m *Meter) Epoch() string { return m.epoch }

// SetTable learns the prices of every route's targets, so reservations can
// be priced before a route's first request. Call it with each new table.
func (m *Meter) SetTable(t *routetable.Table) {
	rp := make(map[string]int64, len(t.Routes))
	for i := range t.Routes {
		r := &t.Routes[i]
		var best int64
		visit := func(ts []routetable.Target) {
			for _, tg := range ts {
				p, ok := t.Provider(tg.Provider)
				if !ok {
					continue
				}
				pe := m.pricesFor(p, tg.Model)
				best = max(best, pe.prices.Input, pe.prices.Output, pe.prices.Reasoning, pe.prices.CacheWrite)
			}
		}
		visit(r.Targets)
		visit(r.Fallbacks)
		for j := range r.Rules {
			visit(r.Rules[j].Targets)
		}
		rp[r.ID] = best
	}
	m.routeMu.Lock()
	m.routePrice = rp
	m.routeMu.Unlock()
	// Prime budgeted keys, so the first report fetches their global spend
	// before their first request.
	for i := range t.Keys {
		if k := &t.Keys[i]; k.Budget != nil || k.TeamBudget != nil {
			ks := m.state(k)
			ks.mu.Lock()
			ks.derive(k, m.now())
			ks.mu.Unlock()
		}
	}
}

// ---- prices ----

type priceKey struct{ provider, model string }

type priceEntry struct {
	src    *routetable.Provider
	prices Prices
}

// pricesFor returns the prices of a provider's model: declared on the
// LLMProvider, else from the catalog when the provider prices in USD.
func (m *Meter) pricesFor(p *routetable.Provider, model string) *priceEntry {
	k := priceKey{p.ID, model}
	m.pricesMu.RLock()
	pe := m.prices[k]
	m.pricesMu.RUnlock()
	if pe != nil && pe.src == p {
		return pe
	}
	pe = &priceEntry{src: p, prices: resolvePrices(p, model, m.log)}
	m.pricesMu.Lock()
	if len(m.prices) > 8192 {
		clear(m.prices)
	}
	m.prices[k] = pe
	m.pricesMu.Unlock()
	return pe
}

func resolvePrices(p *routetable.Provider, model string, log logr.Logger) Prices {
	cur := p.Currency
	if cur == "" {
		cur = "USD"
	}
	if md, ok := p.Model(model); ok && (md.InputPrice != "" || md.OutputPrice != "") {
		ps, err := ParsePrices(cur, PriceStrings{md.InputPrice, md.OutputPrice, md.CacheReadPrice, md.CacheWritePrice, md.ReasoningPrice})
		if err == nil {
			return ps
		}
		log.Error(err, "Ignoring invalid model prices", "provider", p.ID, "model", model)
	}
	if cur == "USD" {
		if cs, ok := catalogPrices(model); ok {
			ps, err := ParsePrices("USD", cs)
			if err == nil {
				return ps
			}
		}
	}
	return Prices{Currency: cur}
}

// ---- key state ----

// scope is one budget (the key's or its team's share) as this process
// sees it. All money in nanos.
type scope struct {
	limit    int64 // 0: no budget
	currency string
	period   routetable.BudgetPeriod
	start    time.Time
	end      time.Time // zero for Total
	cum      int64     // this process's spend in the period
	sub      uint64    // sub-nano carry of cum
	reserved int64     // reservations of requests in flight
	global   int64     // all processes' spend per the last answer
	acked    int64     // our cum included in global
	allow    int64     // cumulative ceiling granted by the controller
	allowAt  time.Time // when allow was granted (zero: none)
}

// roll starts a new period when now left the current one.
func (s *scope) roll(now time.Time) bool {
	if !s.start.IsZero() && (s.end.IsZero() || now.Before(s.end)) {
		return false
	}
	st := PeriodStart(s.period, now)
	if st.Equal(s.start) {
		return false
	}
	s.start, s.end = st, PeriodEnd(s.period, st)
	s.cum, s.sub, s.global, s.acked, s.allow, s.allowAt = 0, 0, 0, 0, 0, time.Time{}
	return true
}

type keyState struct {
	mu   sync.Mutex
	id   string
	src  *routetable.Key
	ns   string
	name string
	team string

	key      scope
	tm       scope
	hasTeam  bool
	counters Counters // key period

	rpm, tpm           gcra
	rpmLimit, tpmLimit int64

	dirty bool
	// snapshot sent in the report in flight
	sentSeq                  int64
	sentCum, sentTeam        int64
	sentStart, sentTeamStart time.Time
	lastAck                  time.Time
}

func (m *Meter) state(k *routetable.Key) *keyState {
	m.keysMu.RLock()
	ks := m.keys[k.ID]
	m.keysMu.RUnlock()
	if ks != nil {
		return ks
	}
	m.keysMu.Lock()
	defer m.keysMu.Unlock()
	if ks = m.keys[k.ID]; ks == nil {
		ks = &keyState{id: k.ID}
		m.keys[k.ID] = ks
	}
	return ks
}

// derive refreshes limits when the key's definition changed (a new
// table), and rolls periods. Called with ks.mu held.
func (ks *keyState) derive(k *routetable.Key, now time.Time) {
	if ks.src != k {
		ks.src = k
		ks.ns, ks.name, ks.team = k.Namespace, k.Name, k.Team
		setBudget(&ks.key, k.Budget)
		ks.hasTeam = k.TeamBudget != nil && k.Team != ""
		if ks.hasTeam {
			setBudget(&ks.tm, k.TeamBudget)
		} else {
			ks.tm = scope{}
		}
		ks.rpmLimit, ks.tpmLimit = int64(k.RequestsPerMinute), k.TokensPerMinute
	}
	if ks.key.roll(now) {
		ks.counters = Counters{}
		ks.dirty = true
	}
	if ks.hasTeam && ks.tm.roll(now) {
		ks.dirty = true
	}
}

func setBudget(s *scope, b *routetable.Budget) {
	period := routetable.PeriodMonthly
	var limit int64
	cur := "USD"
	if b != nil {
		if b.Period != "" {
			period = b.Period
		}
		if b.Currency != "" {
			cur = b.Currency
		}
		if n, err := ParseNanos(b.Amount); err == nil && n > 0 {
			limit = n
		}
	}
	s.limit, s.currency = limit, cur
	if s.period != period {
		s.period = period
		s.start = time.Time{} // force a roll into the new kind of period
	}
}

// ---- admission ----

// reservation is the pooled state behind the release func Admit returns.
type reservation struct {
	m        *Meter
	ks       *keyState
	key, tm  int64
	fn       func()
	released atomic.Bool
}

func (r *reservation) release() {
	if r.released.Swap(true) {
		return
	}
	ks := r.ks
	ks.mu.Lock()
	ks.key.reserved -= r.key
	ks.tm.reserved -= r.tm
	ks.mu.Unlock()
	r.ks = nil
	r.m.pool.Put(r)
}

// noRelease is returned when nothing was reserved.
var noRelease = func() {}

// Admit checks the key's rate limits and budgets before any upstream call
// and reserves the estimated cost of the request until release.
func (m *Meter) Admit(key *routetable.Key, route *routetable.Route, estimatedTokens int) (func(), *openai.APIError) {
	if key == nil {
		return noRelease, nil
	}
	now := m.now()
	ks := m.state(key)
	var reserve int64
	if key.Budget != nil || key.TeamBudget != nil {
		reserve = costOf(int64(max(estimatedTokens, m.opts.MinReserveTokens)), m.routeMaxPrice(route))
	}
	replicas := m.replicas.Load()

	ks.mu.Lock()
	ks.derive(key, now)
	if aerr := ks.checkBudget(&ks.key, now, m.opts.AllowanceTTL, m.opts.Interval, false); aerr != nil {
		ks.mu.Unlock()
		m.metrics.refused(ks, "budget")
		m.wakeReporter()
		return nil, aerr
	}
	if ks.hasTeam {
		if aerr := ks.checkBudget(&ks.tm, now, m.opts.AllowanceTTL, m.opts.Interval, true); aerr != nil {
			ks.mu.Unlock()
			m.metrics.refused(ks, "team_budget")
			m.wakeReporter()
			return nil, aerr
		}
	}
	nowNs := now.UnixNano()
	if ks.tpmLimit > 0 {
		if ok, wait := ks.tpm.check(nowNs, share(ks.tpmLimit, replicas)); !ok {
			ks.mu.Unlock()
			m.metrics.limited(ks, "tokens")
			return nil, rateLimited(ks, "tokens per minute", ks.tpmLimit, wait)
		}
	}
	if ks.rpmLimit > 0 {
		if ok, wait := ks.rpm.take(nowNs, share(ks.rpmLimit, replicas), 1); !ok {
			ks.mu.Unlock()
			m.metrics.limited(ks, "requests")
			return nil, rateLimited(ks, "requests per minute", ks.rpmLimit, wait)
		}
	}
	if reserve == 0 {
		ks.mu.Unlock()
		return noRelease, nil
	}
	var rk, rt int64
	if ks.key.limit > 0 {
		rk = reserve
		ks.key.reserved += reserve
	}
	if ks.hasTeam && ks.tm.limit > 0 {
		rt = reserve
		ks.tm.reserved += reserve
	}
	ks.mu.Unlock()
	if rk == 0 && rt == 0 {
		return noRelease, nil
	}
	r := m.pool.Get().(*reservation)
	r.ks, r.key, r.tm = ks, rk, rt
	r.released.Store(false)
	return r.fn, nil
}

func (m *Meter) routeMaxPrice(r *routetable.Route) int64 {
	if r == nil {
		return 0
	}
	m.routeMu.RLock()
	p := m.routePrice[r.ID]
	m.routeMu.RUnlock()
	return p
}

// share is a per-process share of a cluster-wide limit, rounded up.
func share(limit, replicas int64) int64 {
	if replicas <= 1 {
		return limit
	}
	return (limit + replicas - 1) / replicas
}

// checkBudget decides one scope. Called with ks.mu held.
func (ks *keyState) checkBudget(s *scope, now time.Time, ttl, interval time.Duration, team bool) *openai.APIError {
	if s.limit <= 0 {
		return nil
	}
	spent := s.global - s.acked + s.cum // best known spend of all processes
	if spent >= s.limit {
		return ks.budgetExceeded(s, spent, team, now)
	}
	fresh := !s.allowAt.IsZero() && now.Sub(s.allowAt) < ttl
	if fresh && s.cum+s.reserved < s.allow {
		return nil
	}
	if !fresh && spent+s.reserved < s.limit {
		return nil // degraded: no recent answer from the controller
	}
	// Spend is under the budget, but this process's share of what is left
	// is used up (or held by requests in flight): ask again shortly.
	e := openai.NewError(http.StatusTooManyRequests, openai.TypeRateLimit, "rate_limit_exceeded", "",
		fmt.Sprintf("%s is close to its budget (%s of %s %s spent); this gateway replica's share of the remainder is in use. Retry shortly.",
			ks.budgetSubject(team), FormatNanos(spent), FormatNanos(s.limit), s.currency))
	e.RetryAfter = max(interval, time.Second)
	return e
}

func (ks *keyState) budgetSubject(team bool) string {
	if team {
		return "Team " + ks.team + " in namespace " + ks.ns
	}
	return "Virtual key " + ks.ns + "/" + ks.name
}

func (ks *keyState) budgetExceeded(s *scope, spent int64, team bool, now time.Time) *openai.APIError {
	resets := "never resets (period Total)"
	if !s.end.IsZero() {
		resets = "resets at " + s.end.Format(time.RFC3339)
	}
	e := openai.NewError(http.StatusTooManyRequests, openai.TypeInsufficient, "budget_exceeded", "",
		fmt.Sprintf("%s has exceeded its %s budget: spent %s of %s %s this period; the budget %s.",
			ks.budgetSubject(team), s.period, FormatNanos(spent), FormatNanos(s.limit), s.currency, resets))
	if !s.end.IsZero() {
		e.RetryAfter = s.end.Sub(now)
	}
	e.Retryable = false
	return e
}

func rateLimited(ks *keyState, what string, limit int64, wait time.Duration) *openai.APIError {
	e := openai.NewError(http.StatusTooManyRequests, openai.TypeRateLimit, "rate_limit_exceeded", "",
		fmt.Sprintf("Rate limit of virtual key %s/%s reached: %d %s. Retry after %s.", ks.ns, ks.name, limit, what, wait.Round(time.Millisecond)))
	e.RetryAfter = max(wait, time.Second)
	return e
}

// ---- recording ----

// Record accounts one finished request: cost, tokens, request count,
// metrics. The cost is in the provider's price currency; when that differs
// from a budget's currency it is not converted and not charged to the
// budget (counted in tollgate_cost_unbudgeted_total instead).
func (m *Meter) Record(rec server.UsageRecord) {
	if rec.Key == nil {
		return
	}
	var pe *priceEntry
	if rec.Provider != nil {
		pe = m.pricesFor(rec.Provider, rec.Model)
		if rec.Route != nil {
			m.learnRoutePrice(rec.Route, &pe.prices)
		}
	}
	t := Split(rec.Usage)
	var c Cost
	currency := "USD"
	if pe != nil {
		c = pe.prices.Cost(t)
		currency = pe.prices.Currency
	}
	now := m.now()
	ks := m.state(rec.Key)
	ks.mu.Lock()
	ks.derive(rec.Key, now)
	ks.counters.Requests++
	ks.counters.PromptTokens += t.Input + t.CacheRead + t.CacheWrite
	ks.counters.CompletionTokens += t.Output + t.Reasoning
	ks.counters.CacheReadTokens += t.CacheRead
	ks.counters.CacheWriteTokens += t.CacheWrite
	ks.counters.ReasoningTokens += t.Reasoning
	mismatch := false
	if currency == ks.key.currency {
		c.addTo(&ks.key.cum, &ks.key.sub)
		ks.counters.SpendNanos = ks.key.cum
	} else if c.Nanos > 0 || c.Sub > 0 {
		mismatch = true
	}
	if ks.hasTeam {
		if currency == ks.tm.currency {
			c.addTo(&ks.tm.cum, &ks.tm.sub)
		} else if c.Nanos > 0 || c.Sub > 0 {
			mismatch = true
		}
	}
	ks.dirty = true
	if ks.tpmLimit > 0 {
		ks.tpm.charge(now.UnixNano(), share(ks.tpmLimit, m.replicas.Load()), t.Input+t.CacheRead+t.CacheWrite+t.Output+t.Reasoning)
	}
	ks.mu.Unlock()

	s := m.metrics.seriesFor(ks, rec, currency)
	s.add(t, c, pe == nil || !pe.prices.Known, mismatch, rec.Usage == nil)
}

func (m *Meter) learnRoutePrice(r *routetable.Route, p *Prices) {
	best := max(p.Input, p.Output, p.Reasoning, p.CacheWrite)
	m.routeMu.RLock()
	cur, ok := m.routePrice[r.ID]
	m.routeMu.RUnlock()
	if ok && cur >= best {
		return
	}
	m.routeMu.Lock()
	if m.routePrice[r.ID] < best {
		m.routePrice[r.ID] = best
	}
	m.routeMu.Unlock()
}

// ---- rate limiting ----

// gcra is a generic cell rate limiter (a token bucket holding one minute
// of the limit), kept as one theoretical arrival time in unix nanos.
type gcra struct{ tat int64 }

const minute = int64(time.Minute)

func (g *gcra) step(limit int64) int64 { return max(minute/limit, 1) }

// take admits cost units if the bucket has room for them.
func (g *gcra) take(now, limit, cost int64) (bool, time.Duration) {
	tat := max(g.tat, now)
	next := tat + g.step(limit)*cost
	if next-now > minute {
		return false, time.Duration(next - now - minute)
	}
	g.tat = next
	return true, 0
}

// check admits while the bucket is not empty (token limits: the cost is
// known only when the request ends).
func (g *gcra) check(now, limit int64) (bool, time.Duration) {
	tat := max(g.tat, now)
	if tat-now >= minute {
		return false, time.Duration(tat - now - minute + g.step(limit))
	}
	return true, 0
}

// charge takes cost units unconditionally, holding at most ten minutes of
// debt so one huge request cannot lock a key out for long.
func (g *gcra) charge(now, limit, cost int64) {
	tat := max(g.tat, now) + g.step(limit)*cost
	g.tat = min(tat, now+10*minute)
}
