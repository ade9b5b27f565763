package usage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/dataplane/metering"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/server"
)

var (
	provider = routetable.Provider{ID: "default/openai", Namespace: "default", Name: "openai", Type: routetable.ProviderOpenAI,
		BaseURL: "https://api.openai.com/v1", Currency: "USD",
		Models: []routetable.Model{{Name: "gpt-4o", InputPrice: "2.50", OutputPrice: "10.00", CacheReadPrice: "1.25"}}}
	route = routetable.Route{ID: "default/chat", Namespace: "default", Name: "chat", Model: "chat",
		Targets: []routetable.Target{{Provider: "default/openai", Model: "gpt-4o", Weight: 1}}}
)

func table(t *testing.T, k routetable.Key) (*routetable.Table, *routetable.Key) {
	t.Helper()
	tb, keys := tableOf(t, k)
	return tb, keys[0]
}

func tableOf(t *testing.T, ks ...routetable.Key) (*routetable.Table, []*routetable.Key) {
	t.Helper()
	tb := &routetable.Table{Providers: []routetable.Provider{provider}, Routes: []routetable.Route{route}}
	for i, k := range ks {
		k.Hash = fmt.Sprintf("%064x", i+1)
		tb.Keys = append(tb.Keys, k)
	}
	if err := tb.Finalize(); err != nil {
		t.Fatal(err)
	}
	out := make([]*routetable.Key, len(tb.Keys))
	for i := range tb.Keys {
		out[i] = &tb.Keys[i]
	}
	return tb, out
}

func newMeter(t *testing.T, c *controller, replica string, tb *routetable.Table) *metering.Meter {
	t.Helper()
	m := metering.New(metering.Options{ReportURL: c.srv.URL + Path, Token: token, Replica: replica,
		Interval: 20 * time.Millisecond, AllowanceTTL: 10 * time.Second, FlushTimeout: 5 * time.Second})
	m.SetTable(tb)
	return m
}

// oneRequest is 1000 prompt (200 cached), 500 completion (100 reasoning):
// 800 × 2.50 + 200 × 1.25 + 500 × 10.00 = 7250 per 1M = 0.00725.
func oneRequest(m *metering.Meter, k *routetable.Key, tb *routetable.Table) *openai.APIError {
	r, _ := tb.Route("default/chat")
	p, _ := tb.Provider("default/openai")
	release, aerr := m.Admit(k, r, 1500)
	if aerr != nil {
		return aerr
	}
	defer release()
	m.Record(server.UsageRecord{Key: k, Route: r, Provider: p, Model: "gpt-4o", Status: 200, Usage: &openai.Usage{
		PromptTokens: 1000, CompletionTokens: 500, TotalTokens: 1500,
		PromptTokensDetails:     &openai.PromptTokensDetails{CachedTokens: 200},
		CompletionTokensDetails: &openai.CompletionTokensDetails{ReasoningTokens: 100},
	}})
	return nil
}

func post(t *testing.T, url string, rep metering.Report) int {
	t.Helper()
	b, _ := json.Marshal(rep)
	req, _ := http.NewRequest(http.MethodPost, url+Path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer t")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestTwoReplicasExactSpendNoDoubleCount(t *testing.T) {
	needEnvtest(t)
	createKey(t, "default", "exact", v1alpha1.VirtualKeySpec{Team: "ml",
		Budget:     &v1alpha1.Budget{Amount: "100", Currency: "USD", Period: v1alpha1.PeriodMonthly},
		TeamBudget: &v1alpha1.Budget{Amount: "500", Currency: "USD", Period: v1alpha1.PeriodDaily}})
	c := startController(t, "", nil)
	defer c.srv.Close()
	c.lead()
	tb, k := table(t, routetable.Key{ID: "default/exact", Namespace: "default", Name: "exact", Team: "ml",
		Budget:     &routetable.Budget{Amount: "100", Currency: "USD", Period: routetable.PeriodMonthly},
		TeamBudget: &routetable.Budget{Amount: "500", Currency: "USD", Period: routetable.PeriodDaily}})
	m1, m2 := newMeter(t, c, "r1", tb), newMeter(t, c, "r2", tb)
	var wg sync.WaitGroup
	for _, m := range []*metering.Meter{m1, m2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if aerr := oneRequest(m, k, tb); aerr != nil {
					t.Error(aerr)
				}
			}
		}()
	}
	wg.Wait()
	m1.Close()
	m2.Close()
	u := getUsage(t, "default", "exact")
	if u.Spend != "0.725" || u.Requests != 100 || u.PromptTokens != 100_000 || u.CacheReadTokens != 20_000 ||
		u.CompletionTokens != 50_000 || u.ReasoningTokens != 10_000 || u.PercentUsed != "0.72" || u.Budget != "100.00" ||
		u.TeamSpend != "0.725" || u.TeamBudget != "500.00" {
		t.Fatalf("status after 100 requests through two replicas: %+v", u)
	}

	// The same report twice counts once.
	month := metering.PeriodStart(routetable.PeriodMonthly, time.Now())
	rep := metering.Report{Replica: "r3", Epoch: "x", Seq: 1, Keys: []metering.KeyReport{{Key: "default/exact", PeriodStart: month,
		Counters: metering.Counters{SpendNanos: 1_000_000_000, Requests: 1}}}}
	for i := 0; i < 2; i++ {
		if code := post(t, c.srv.URL, rep); code != http.StatusOK {
			t.Fatalf("post: %d", code)
		}
	}
	if u := getUsage(t, "default", "exact"); u.Spend != "1.725" || u.Requests != 101 {
		t.Fatalf("after a duplicate report: spend %s requests %d", u.Spend, u.Requests)
	}

	// Controller restart: a new process (no memory) gets the same report
	// again, because the ack was lost. Nothing changes.
	c.stop()
	if code := post(t, c.srv.URL, rep); code != http.StatusServiceUnavailable {
		t.Errorf("non-leader answered %d, want 503", code)
	}
	c2 := startController(t, "", nil)
	defer c2.srv.Close()
	c2.lead()
	defer c2.stop()
	if code := post(t, c2.srv.URL, rep); code != http.StatusOK {
		t.Fatalf("post to the new leader: %d", code)
	}
	rep.Seq, rep.Keys[0].SpendNanos, rep.Keys[0].Requests = 2, 1_500_000_000, 2
	post(t, c2.srv.URL, rep)
	if u := getUsage(t, "default", "exact"); u.Spend != "2.225" || u.Requests != 102 {
		t.Fatalf("after controller restart: spend %s requests %d", u.Spend, u.Requests)
	}
}

func TestReportRetriedUntilAcknowledged(t *testing.T) {
	needEnvtest(t)
	createKey(t, "default", "retry", v1alpha1.VirtualKeySpec{})
	c := startController(t, "", nil) // not leading yet: answers 503
	defer c.srv.Close()
	tb, k := table(t, routetable.Key{ID: "default/retry", Namespace: "default", Name: "retry"})
	m := newMeter(t, c, "r1", tb)
	for i := 0; i < 10; i++ {
		if aerr := oneRequest(m, k, tb); aerr != nil {
			t.Fatal(aerr)
		}
	}
	if err := m.Flush(context.Background()); err == nil {
		t.Fatal("flush acknowledged by a non-leader")
	}
	time.Sleep(100 * time.Millisecond) // several failed periodic reports
	if u := getUsage(t, "default", "retry"); u.Requests != 0 {
		t.Fatalf("recorded without a leader: %+v", u)
	}
	c.lead()
	defer c.stop()
	m.Close()
	if u := getUsage(t, "default", "retry"); u.Spend != "0.0725" || u.Requests != 10 {
		t.Fatalf("after the leader came back: spend %s requests %d", u.Spend, u.Requests)
	}
}

// TestTwoReplicasRaceNearBudget hammers one key from two replicas until the
// budget refuses; the spend must stay within the documented bound:
// budget + replicas × (largest single request cost), since reservations
// here are upper bounds of the actual cost.
func TestTwoReplicasRaceNearBudget(t *testing.T) {
	needEnvtest(t)
	createKey(t, "default", "race", v1alpha1.VirtualKeySpec{
		Budget: &v1alpha1.Budget{Amount: "0.25", Currency: "USD", Period: v1alpha1.PeriodMonthly}})
	c := startController(t, "", nil)
	defer c.srv.Close()
	c.lead()
	defer c.stop()
	tb, k := table(t, routetable.Key{ID: "default/race", Namespace: "default", Name: "race",
		Budget: &routetable.Budget{Amount: "0.25", Currency: "USD", Period: routetable.PeriodMonthly}})
	meters := []*metering.Meter{newMeter(t, c, "r1", tb), newMeter(t, c, "r2", tb)}
	for _, m := range meters {
		if err := m.Flush(context.Background()); err != nil { // first answer: allowances
			t.Fatal(err)
		}
	}
	var served, exceeded atomic.Int64
	deadline := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	for _, m := range meters {
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					aerr := oneRequest(m, k, tb)
					switch {
					case aerr == nil:
						served.Add(1)
					case *aerr.Code == "budget_exceeded":
						exceeded.Add(1)
						return
					default:
						time.Sleep(5 * time.Millisecond) // share in use: retry shortly
					}
				}
			}()
		}
	}
	wg.Wait()
	for _, m := range meters {
		m.Close()
	}
	u := getUsage(t, "default", "race")
	spend, _ := metering.ParseNanos(u.Spend)
	const budget, cost, replicas = 250_000_000, 7_250_000, 2
	t.Logf("served %d requests, spend %s of 0.25 (bound %s)", served.Load(), u.Spend, metering.FormatNanos(budget+replicas*cost))
	if spend != served.Load()*cost {
		t.Errorf("status spend %d != %d requests × %d", spend, served.Load(), cost)
	}
	if spend > budget+replicas*cost {
		t.Errorf("spend %s exceeds the bound", u.Spend)
	}
	if spend < budget-cost {
		t.Errorf("spend %s: refused while budget remained", u.Spend)
	}
	if exceeded.Load() != 8 {
		t.Errorf("%d workers ended with budget_exceeded, want all 8", exceeded.Load())
	}
}

// TestTeamBudgetAcrossKeysAndReplicas: two keys of one team, each used
// through two replicas, share a team budget; the team's spend stays within
// budget + (keys × replicas) × one request.
func TestTeamBudgetAcrossKeysAndReplicas(t *testing.T) {
	needEnvtest(t)
	tbudget := &v1alpha1.Budget{Amount: "0.15", Currency: "USD", Period: v1alpha1.PeriodDaily}
	createKey(t, "default", "team-a", v1alpha1.VirtualKeySpec{Team: "search", TeamBudget: tbudget})
	createKey(t, "default", "team-b", v1alpha1.VirtualKeySpec{Team: "search", TeamBudget: tbudget})
	c := startController(t, "", nil)
	defer c.srv.Close()
	c.lead()
	defer c.stop()
	rb := &routetable.Budget{Amount: "0.15", Currency: "USD", Period: routetable.PeriodDaily}
	tb, keys := tableOf(t,
		routetable.Key{ID: "default/team-a", Namespace: "default", Name: "team-a", Team: "search", TeamBudget: rb},
		routetable.Key{ID: "default/team-b", Namespace: "default", Name: "team-b", Team: "search", TeamBudget: rb})
	meters := []*metering.Meter{newMeter(t, c, "r1", tb), newMeter(t, c, "r2", tb)}
	for _, m := range meters {
		if err := m.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var served atomic.Int64
	deadline := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	for _, m := range meters {
		for _, k := range keys {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					aerr := oneRequest(m, k, tb)
					switch {
					case aerr == nil:
						served.Add(1)
					case *aerr.Code == "budget_exceeded":
						return
					default:
						time.Sleep(5 * time.Millisecond)
					}
				}
				t.Error("worker never saw budget_exceeded")
			}()
		}
	}
	wg.Wait()
	for _, m := range meters {
		m.Close()
	}
	a, b := getUsage(t, "default", "team-a"), getUsage(t, "default", "team-b")
	sa, _ := metering.ParseNanos(a.Spend)
	sb, _ := metering.ParseNanos(b.Spend)
	const budget, cost = 150_000_000, 7_250_000
	t.Logf("served %d, key spends %s + %s, team spend in status %s / %s", served.Load(), a.Spend, b.Spend, a.TeamSpend, b.TeamSpend)
	if sa+sb != served.Load()*cost {
		t.Errorf("spend %d + %d != %d requests", sa, sb, served.Load())
	}
	if sa+sb > budget+4*cost || sa+sb < budget-cost {
		t.Errorf("team spend %d outside [%d, %d]", sa+sb, budget-cost, budget+4*cost)
	}
}

// TestPeriodRolloverResetsSpend: with injected clocks on both sides, the
// first report of a new day starts the key's spend again from zero.
func TestPeriodRolloverResetsSpend(t *testing.T) {
	needEnvtest(t)
	createKey(t, "default", "daily", v1alpha1.VirtualKeySpec{
		Budget: &v1alpha1.Budget{Amount: "0.05", Currency: "USD", Period: v1alpha1.PeriodDaily}})
	var mu sync.Mutex
	clock := time.Date(2030, 6, 30, 23, 59, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	c := startController(t, "", now)
	defer c.srv.Close()
	c.lead()
	defer c.stop()
	tb, k := table(t, routetable.Key{ID: "default/daily", Namespace: "default", Name: "daily",
		Budget: &routetable.Budget{Amount: "0.05", Currency: "USD", Period: routetable.PeriodDaily}})
	m := metering.New(metering.Options{ReportURL: c.srv.URL + Path, Token: token, Replica: "r1", Now: now,
		Interval: 20 * time.Millisecond, AllowanceTTL: time.Hour})
	defer m.Close()
	m.SetTable(tb)
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	served := 0
	for oneRequest(m, k, tb) == nil {
		served++
		if err := m.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if u := getUsage(t, "default", "daily"); u.Requests != int64(served) || served < 6 {
		t.Fatalf("day 1: served %d, status %+v", served, u)
	}
	if aerr := oneRequest(m, k, tb); aerr == nil || *aerr.Code != "budget_exceeded" {
		t.Fatalf("day 1 over budget: %v", aerr)
	}
	mu.Lock()
	clock = clock.Add(2 * time.Minute) // 2030-07-01T00:01Z
	mu.Unlock()
	if aerr := oneRequest(m, k, tb); aerr != nil {
		t.Fatalf("refused on day 2: %v", aerr)
	}
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	u := getUsage(t, "default", "daily")
	if u.Spend != "0.00725" || u.Requests != 1 || !u.PeriodStart.Time.Equal(time.Date(2030, 7, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("day 2: spend %s requests %d start %s", u.Spend, u.Requests, u.PeriodStart)
	}
}
