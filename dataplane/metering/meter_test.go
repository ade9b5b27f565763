package metering

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/server"
)

// clock is an injectable, settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func newClock(s string) *clock       { t, _ := time.Parse(time.RFC3339, s); return &clock{t: t} }
func code(e *openai.APIError) string { return *e.Code }
func budget(amount string, p routetable.BudgetPeriod) *routetable.Budget {
	return &routetable.Budget{Amount: amount, Currency: "USD", Period: p}
}

var (
	testProvider = &routetable.Provider{ID: "ns/openai", Namespace: "ns", Name: "openai", Currency: "USD",
		Models: []routetable.Model{{Name: "gpt-4o", InputPrice: "2.00", OutputPrice: "10.00"}}}
	eurProvider = &routetable.Provider{ID: "ns/mistral", Namespace: "ns", Name: "mistral", Currency: "EUR",
		Models: []routetable.Model{{Name: "mistral-large", InputPrice: "2", OutputPrice: "6"}}}
	testRoute = &routetable.Route{ID: "ns/chat", Namespace: "ns", Name: "chat", Model: "chat"}
)

func rec(k *routetable.Key, p *routetable.Provider, model string, u *openai.Usage) server.UsageRecord {
	return server.UsageRecord{Key: k, Route: testRoute, Provider: p, Model: model, Usage: u, Status: 200}
}

func TestProviderPricesWinOverCatalog(t *testing.T) {
	m := New(Options{})
	k := &routetable.Key{ID: "ns/a", Namespace: "ns", Name: "a", Budget: budget("100", routetable.PeriodMonthly)}
	// Declared 2.00/10.00 beats the catalog's 2.50/10.00.
	m.Record(rec(k, testProvider, "gpt-4o", usage(1_000_000, 0, 0, 0, 0)))
	// Not declared: the catalog prices gpt-4o-mini (USD provider).
	m.Record(rec(k, testProvider, "gpt-4o-mini", usage(1_000_000, 0, 0, 1_000_000, 0)))
	// Unknown model: zero, counted as unpriced.
	m.Record(rec(k, testProvider, "home-made", usage(1_000_000, 0, 0, 0, 0)))
	ks := m.state(k)
	if got := FormatNanos(ks.key.cum); got != "2.75" {
		t.Errorf("spend = %s, want 2.75 (2.00 declared + 0.15 + 0.60 catalog)", got)
	}
	if ks.counters.Requests != 3 || ks.counters.PromptTokens != 3_000_000 {
		t.Errorf("counters = %+v", ks.counters)
	}
	if got := counterValue(m.metrics.unbudgeted.WithLabelValues("ns", "a", "unpriced")); got != 1 {
		t.Errorf("unpriced = %v, want 1", got)
	}
}

func TestCurrencyMismatchIsNotConverted(t *testing.T) {
	m := New(Options{})
	k := &routetable.Key{ID: "ns/a", Namespace: "ns", Name: "a", Budget: budget("1", routetable.PeriodMonthly)}
	m.Record(rec(k, eurProvider, "mistral-large", usage(1_000_000, 0, 0, 0, 0)))
	if ks := m.state(k); ks.key.cum != 0 {
		t.Errorf("EUR cost charged to a USD budget: %d", ks.key.cum)
	}
	if got := counterValue(m.metrics.unbudgeted.WithLabelValues("ns", "a", "currency_mismatch")); got != 1 {
		t.Errorf("currency_mismatch = %v, want 1", got)
	}
	if got := counterValue(m.metrics.cost.WithLabelValues("ns", "a", "", "chat", "mistral", "mistral-large", "EUR")); got != 2 {
		t.Errorf("cost metric = %v EUR, want 2", got)
	}
}

func TestBudgetRefusal(t *testing.T) {
	c := newClock("2026-03-31T23:00:00Z")
	m := New(Options{Now: c.Now})
	k := &routetable.Key{ID: "ns/a", Namespace: "ns", Name: "a", Budget: budget("1.00", routetable.PeriodMonthly)}
	release, aerr := m.Admit(k, testRoute, 100)
	if aerr != nil {
		t.Fatalf("first request refused: %v", aerr)
	}
	m.Record(rec(k, testProvider, "gpt-4o", usage(500_000, 0, 0, 0, 0))) // 1.00
	release()
	_, aerr = m.Admit(k, testRoute, 100)
	if aerr == nil {
		t.Fatal("request over budget admitted")
	}
	if aerr.Status != http.StatusTooManyRequests || code(aerr) != "budget_exceeded" || aerr.Type != openai.TypeInsufficient {
		t.Errorf("refusal = %d %s %s", aerr.Status, aerr.Type, code(aerr))
	}
	for _, want := range []string{"ns/a", "1.00 of 1.00 USD", "Monthly", "2026-04-01T00:00:00Z"} {
		if !strings.Contains(aerr.Message, want) {
			t.Errorf("message %q lacks %q", aerr.Message, want)
		}
	}
	if aerr.RetryAfter != time.Hour {
		t.Errorf("Retry-After = %s, want 1h (the period end)", aerr.RetryAfter)
	}
	// Period rollover (UTC month boundary) resets spend.
	c.Add(time.Hour)
	release, aerr = m.Admit(k, testRoute, 100)
	if aerr != nil {
		t.Fatalf("refused after rollover: %v", aerr)
	}
	release()
	if ks := m.state(k); ks.key.cum != 0 || !ks.key.start.Equal(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("after rollover cum=%d start=%s", ks.key.cum, ks.key.start)
	}
}

func TestTeamBudgetShared(t *testing.T) {
	m := New(Options{})
	tb := budget("1", routetable.PeriodDaily)
	a := &routetable.Key{ID: "ns/a", Namespace: "ns", Name: "a", Team: "ml", TeamBudget: tb}
	b := &routetable.Key{ID: "ns/b", Namespace: "ns", Name: "b", Team: "ml", TeamBudget: tb}
	m.Record(rec(a, testProvider, "gpt-4o", usage(500_000, 0, 0, 0, 0))) // 1.00 on a
	if _, aerr := m.Admit(a, testRoute, 10); aerr == nil || code(aerr) != "budget_exceeded" || !strings.Contains(aerr.Message, "Team ml") {
		t.Fatalf("team over budget: %v", aerr)
	}
	// Without a controller each process only sees its own keys' share; b
	// learns about a's spend from the controller (see the usage tests).
	if _, aerr := m.Admit(b, testRoute, 10); aerr != nil {
		t.Logf("b refused locally: %v", aerr)
	}
}

func TestReservationsBlockConcurrentOverspend(t *testing.T) {
	m := New(Options{})
	k := &routetable.Key{ID: "ns/a", Namespace: "ns", Name: "a", Budget: budget("0.05", routetable.PeriodMonthly)}
	m.SetTable(mustTable(t, k))
	// Each request reserves max(est, 1024) tokens × 10.00 per 1M = 0.01024.
	var releases []func()
	admitted := 0
	for i := 0; i < 10; i++ {
		r, aerr := m.Admit(k, testRoute, 1000)
		if aerr != nil {
			if code(aerr) != "rate_limit_exceeded" || aerr.RetryAfter <= 0 {
				t.Errorf("refusal while in flight: %s", code(aerr))
			}
			continue
		}
		admitted++
		releases = append(releases, r)
	}
	if admitted != 5 {
		t.Errorf("admitted %d concurrent requests, want 5 (0.05 / 0.01024 rounded up)", admitted)
	}
	for _, r := range releases {
		r()
		r() // a second call is harmless
	}
	if ks := m.state(k); ks.key.reserved != 0 {
		t.Errorf("reserved after release = %d", ks.key.reserved)
	}
}

func mustTable(t testing.TB, keys ...*routetable.Key) *routetable.Table {
	t.Helper()
	prov := *testProvider
	prov.Type, prov.BaseURL = routetable.ProviderOpenAI, "https://api.openai.com/v1"
	tb := &routetable.Table{Version: "v1", Providers: []routetable.Provider{prov},
		Routes: []routetable.Route{{ID: "ns/chat", Namespace: "ns", Name: "chat", Model: "chat",
			Targets: []routetable.Target{{Provider: "ns/openai", Model: "gpt-4o", Weight: 1}}}}}
	for i, k := range keys {
		kk := *k
		kk.Hash = fmt.Sprintf("%064x", i+1)
		tb.Keys = append(tb.Keys, kk)
	}
	if err := tb.Finalize(); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	return tb
}

func TestRateLimits(t *testing.T) {
	c := newClock("2026-01-01T00:00:00Z")
	m := New(Options{Now: c.Now})
	k := &routetable.Key{ID: "ns/a", Namespace: "ns", Name: "a", RequestsPerMinute: 3}
	for i := 0; i < 3; i++ {
		if _, aerr := m.Admit(k, testRoute, 10); aerr != nil {
			t.Fatalf("request %d refused: %v", i, aerr)
		}
	}
	_, aerr := m.Admit(k, testRoute, 10)
	if aerr == nil || aerr.Status != 429 || code(aerr) != "rate_limit_exceeded" {
		t.Fatalf("4th request in a minute: %v", aerr)
	}
	if aerr.RetryAfter != 20*time.Second {
		t.Errorf("Retry-After = %s, want 20s", aerr.RetryAfter)
	}
	c.Add(20 * time.Second)
	if _, aerr := m.Admit(k, testRoute, 10); aerr != nil {
		t.Errorf("refused after Retry-After: %v", aerr)
	}

	// Tokens per minute: charged on Record, checked on Admit.
	kt := &routetable.Key{ID: "ns/t", Namespace: "ns", Name: "t", TokensPerMinute: 1000}
	if _, aerr := m.Admit(kt, testRoute, 10); aerr != nil {
		t.Fatal(aerr)
	}
	m.Record(rec(kt, testProvider, "gpt-4o", usage(1500, 0, 0, 0, 0)))
	_, aerr = m.Admit(kt, testRoute, 10)
	if aerr == nil || code(aerr) != "rate_limit_exceeded" {
		t.Fatalf("over tokens/min admitted: %v", aerr)
	}
	if aerr.RetryAfter != 30*time.Second+60*time.Millisecond {
		t.Errorf("Retry-After = %s, want 30.06s (500 tokens of debt + 1)", aerr.RetryAfter)
	}
	c.Add(31 * time.Second)
	if _, aerr := m.Admit(kt, testRoute, 10); aerr != nil {
		t.Errorf("refused after the debt drained: %v", aerr)
	}

	// Shared across replicas: with 3 replicas each takes a third, rounded up.
	m.replicas.Store(3)
	k2 := &routetable.Key{ID: "ns/b", Namespace: "ns", Name: "b", RequestsPerMinute: 6}
	for i := 0; i < 2; i++ {
		if _, aerr := m.Admit(k2, testRoute, 1); aerr != nil {
			t.Fatal(aerr)
		}
	}
	if _, aerr := m.Admit(k2, testRoute, 1); aerr == nil {
		t.Error("replica took more than its share of 6 rpm / 3 replicas")
	}
}

func TestPeriodStart(t *testing.T) {
	at := time.Date(2026, 3, 5, 13, 4, 5, 0, time.FixedZone("CET", 3600)) // Thursday 12:04 UTC
	for p, want := range map[routetable.BudgetPeriod]string{
		routetable.PeriodDaily:   "2026-03-05T00:00:00Z",
		routetable.PeriodWeekly:  "2026-03-02T00:00:00Z",
		routetable.PeriodMonthly: "2026-03-01T00:00:00Z",
		"":                       "2026-03-01T00:00:00Z",
		routetable.PeriodTotal:   "1970-01-01T00:00:00Z",
	} {
		if got := PeriodStart(p, at).Format(time.RFC3339); got != want {
			t.Errorf("PeriodStart(%s) = %s, want %s", p, got, want)
		}
	}
	// Sunday belongs to the week that started on Monday.
	if got := PeriodStart(routetable.PeriodWeekly, time.Date(2026, 3, 8, 23, 0, 0, 0, time.UTC)).Day(); got != 2 {
		t.Errorf("Sunday's week starts on the %d", got)
	}
}

func TestTokenMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	server.NewMetrics(reg) // both register on one registry without conflict
	m := New(Options{Registerer: reg})
	k := &routetable.Key{ID: "ns/a", Namespace: "ns", Name: "a", Team: "ml"}
	m.Record(rec(k, testProvider, "gpt-4o", usage(100, 40, 0, 50, 20)))
	for kind, want := range map[string]float64{"prompt": 60, "cache_read": 40, "completion": 30, "reasoning": 20} {
		if got := counterValue(m.metrics.tokens.WithLabelValues("ns", "a", "ml", "chat", "openai", "gpt-4o", kind)); got != want {
			t.Errorf("tokens{%s} = %v, want %v", kind, got, want)
		}
	}
}

func BenchmarkAdmitRecord(b *testing.B) {
	m := New(Options{Registerer: prometheus.NewRegistry()})
	k := &routetable.Key{ID: "ns/a", Namespace: "ns", Name: "a", Team: "ml",
		Budget: budget("1000000", routetable.PeriodMonthly), TeamBudget: budget("1000000", routetable.PeriodMonthly),
		RequestsPerMinute: 1 << 30, TokensPerMinute: 1 << 50}
	m.SetTable(mustTable(b, k))
	u := usage(1200, 200, 0, 300, 100)
	r := rec(k, testProvider, "gpt-4o", u)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		release, aerr := m.Admit(k, testRoute, 1500)
		if aerr != nil {
			b.Fatal(aerr)
		}
		m.Record(r)
		release()
	}
}

func BenchmarkAdmitRecordParallel(b *testing.B) {
	m := New(Options{Registerer: prometheus.NewRegistry()})
	keys := make([]*routetable.Key, 64)
	for i := range keys {
		keys[i] = &routetable.Key{ID: "ns/k" + string(rune('A'+i)), Namespace: "ns", Name: "k" + string(rune('A'+i)),
			Budget: budget("1000000", routetable.PeriodMonthly), RequestsPerMinute: 1 << 30}
	}
	m.SetTable(mustTable(b, keys...))
	u := usage(1200, 200, 0, 300, 100)
	b.ReportAllocs()
	b.ResetTimer()
	var n int64
	var mu sync.Mutex
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		k := keys[n%64]
		n++
		mu.Unlock()
		r := rec(k, testProvider, "gpt-4o", u)
		for pb.Next() {
			release, _ := m.Admit(k, testRoute, 1500)
			m.Record(r)
			release()
		}
	})
}

// counterValue reads a counter (prometheus/testutil would need a module
// this repository does not carry).
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
