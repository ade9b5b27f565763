package usage

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/dataplane/metering"
)

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func vkey(budget string, period v1alpha1.BudgetPeriod) *v1alpha1.VirtualKey {
	vk := &v1alpha1.VirtualKey{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}}
	if budget != "" {
		vk.Spec.Budget = &v1alpha1.Budget{Amount: v1alpha1.Decimal(budget), Currency: "USD", Period: period}
	}
	return vk
}

func report(replica, epoch string, seq int64, start time.Time, spend, requests int64) entry {
	rep := &metering.Report{Replica: replica, Epoch: epoch, Seq: seq}
	rep.Keys = []metering.KeyReport{{Key: "ns/a", PeriodStart: start, Counters: metering.Counters{SpendNanos: spend, Requests: requests, PromptTokens: 10 * requests}}}
	return entry{rep, &rep.Keys[0]}
}

func TestFoldIsIdempotent(t *testing.T) {
	vk := vkey("10", v1alpha1.PeriodMonthly)
	month := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	r1 := report("r1", "e1", 1, month, 1_500_000_000, 3)
	fold(vk, []entry{r1}, t0, 30*time.Second, 24*time.Hour, TeamView{})
	fold(vk, []entry{r1}, t0, 30*time.Second, 24*time.Hour, TeamView{}) // retry
	u := vk.Status.Usage
	if u.Spend != "1.50" || u.Requests != 3 || u.PromptTokens != 30 || u.PercentUsed != "15.00" || u.Budget != "10.00" {
		t.Fatalf("after duplicate: %+v", u)
	}
	// A newer report replaces; an older one arriving late changes nothing.
	r2 := report("r1", "e1", 2, month, 2_000_000_000, 4)
	fold(vk, []entry{r2, r1}, t0, 30*time.Second, 24*time.Hour, TeamView{})
	if u.Spend != "2.00" || u.Requests != 4 {
		t.Fatalf("after newer + older: spend %s requests %d", u.Spend, u.Requests)
	}
	// Another process (or a restarted replica, new epoch) adds up.
	fold(vk, []entry{report("r1", "e2", 1, month, 250_000_000, 1)}, t0, 30*time.Second, 24*time.Hour, TeamView{})
	if u.Spend != "2.25" || u.Requests != 5 || len(u.Reporters) != 2 {
		t.Fatalf("two epochs: spend %s requests %d reporters %d", u.Spend, u.Requests, len(u.Reporters))
	}
}

func TestFoldPeriodRollover(t *testing.T) {
	vk := vkey("10", v1alpha1.PeriodDaily)
	day1 := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	fold(vk, []entry{report("r1", "e1", 1, day1, 9_000_000_000, 9)}, t0, time.Minute, 24*time.Hour, TeamView{})
	// Next day: the controller's clock rolls the period; the replica's
	// last report of yesterday arrives late and is not counted today.
	next := t0.Add(13 * time.Hour)
	fold(vk, []entry{report("r1", "e1", 2, day1, 9_500_000_000, 10)}, next, time.Minute, 24*time.Hour, TeamView{})
	u := vk.Status.Usage
	if u.Spend != "0.00" || u.Requests != 0 || !u.PeriodStart.Time.Equal(day1.AddDate(0, 0, 1)) {
		t.Fatalf("after rollover: spend %s requests %d start %s", u.Spend, u.Requests, u.PeriodStart)
	}
	fold(vk, []entry{report("r1", "e1", 3, day1.AddDate(0, 0, 1), 1_000_000_000, 1)}, next, time.Minute, 24*time.Hour, TeamView{})
	if u.Spend != "1.00" || u.PercentUsed != "10.00" {
		t.Fatalf("new period: %s %s", u.Spend, u.PercentUsed)
	}
}

func TestFoldAllowanceInvariant(t *testing.T) {
	vk := vkey("10", v1alpha1.PeriodMonthly)
	month := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ttl := 30 * time.Second
	now := t0
	spend := map[string]int64{}
	// Three processes report in turn while spending their allowances fully.
	for round := int64(1); round <= 20; round++ {
		for _, r := range []string{"a", "b", "c"} {
			fold(vk, []entry{report(r, "e", round, month, spend[r], round)}, now, ttl, 24*time.Hour, TeamView{})
			now = now.Add(time.Millisecond)
			var total, held int64
			for _, rp := range vk.Status.Usage.Reporters {
				total += rp.SpendNanos
				held += max(0, rp.AllowanceNanos-rp.SpendNanos)
			}
			if total+held > 10_000_000_000 {
				t.Fatalf("round %d %s: spend %d + held %d exceeds the budget", round, r, total, held)
			}
			for _, rp := range vk.Status.Usage.Reporters {
				if rp.Replica == r {
					spend[r] = rp.AllowanceNanos // spend it all before the next report
				}
			}
		}
	}
	var total int64
	for _, s := range spend {
		total += s
	}
	if total > 10_000_000_000 || total < 9_900_000_000 {
		t.Errorf("processes spent %d in total; want close to, never over, 10e9", total)
	}
}

func TestFoldCompactsSilentReporters(t *testing.T) {
	vk := vkey("", "")
	month := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	fold(vk, []entry{report("old", "e", 5, month, 700, 7)}, t0, time.Minute, time.Hour, TeamView{})
	fold(vk, []entry{report("new", "e", 1, month, 300, 3)}, t0.Add(2*time.Hour), time.Minute, time.Hour, TeamView{})
	u := vk.Status.Usage
	if len(u.Reporters) != 1 || u.Folded == nil || u.Folded.SpendNanos != 700 || u.Requests != 10 {
		t.Fatalf("compaction: reporters %d folded %+v requests %d", len(u.Reporters), u.Folded, u.Requests)
	}
}
