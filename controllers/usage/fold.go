package usage

import (
	"slices"
	"time"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/dataplane/metering"
)

// fold applies one batch of report entries to a key's status at time now:
// it rolls periods over, replaces each process's cumulative figures when
// the entry is newer than what status holds, folds long-silent processes,
// recomputes totals and display fields, and grants allowances to the
// processes that reported. It is pure and idempotent.
func fold(vk *v1alpha1.VirtualKey, es []entry, now time.Time, grantTTL, foldAfter time.Duration, team TeamView) {
	u := vk.Status.Usage
	if u == nil {
		u = &v1alpha1.UsageStatus{}
		vk.Status.Usage = u
	}
	// Key period: the controller's clock, or a replica's if it is ahead.
	keyStart := metering.PeriodStart(period(vk.Spec.Budget), now)
	for _, e := range es {
		if e.kr.PeriodStart.After(keyStart) && e.kr.PeriodStart.Sub(keyStart) < 7*24*time.Hour+time.Hour &&
			metering.PeriodStart(period(vk.Spec.Budget), e.kr.PeriodStart).Equal(e.kr.PeriodStart) {
			keyStart = e.kr.PeriodStart.UTC()
		}
	}
	if u.PeriodStart == nil || !u.PeriodStart.UTC().Equal(keyStart) {
		u.PeriodStart = mt(keyStart)
		for i := range u.Reporters {
			r := &u.Reporters[i]
			ts := r.TeamSpendNanos
			r.UsageCounters = v1alpha1.UsageCounters{TeamSpendNanos: ts}
			r.AllowanceNanos = 0
		}
		if u.Folded != nil {
			u.Folded = &v1alpha1.UsageCounters{TeamSpendNanos: u.Folded.TeamSpendNanos}
		}
	}
	hasTeam := vk.Spec.Team != "" && vk.Spec.TeamBudget != nil
	if hasTeam {
		teamStart := metering.PeriodStart(period(vk.Spec.TeamBudget), now)
		if u.TeamPeriodStart == nil || !u.TeamPeriodStart.UTC().Equal(teamStart) {
			u.TeamPeriodStart = mt(teamStart)
			for i := range u.Reporters {
				u.Reporters[i].TeamSpendNanos, u.Reporters[i].TeamAllowanceNanos = 0, 0
			}
			if u.Folded != nil {
				u.Folded.TeamSpendNanos = 0
			}
		}
	} else {
		u.TeamPeriodStart, u.TeamSpend, u.TeamBudget, u.TeamPercentUsed = nil, "", "", ""
		for i := range u.Reporters {
			u.Reporters[i].TeamSpendNanos, u.Reporters[i].TeamAllowanceNanos = 0, 0
		}
		if u.Folded != nil {
			u.Folded.TeamSpendNanos = 0
		}
	}

	// Apply entries in sequence order; keep only what is newer.
	es = slices.Clone(es)
	slices.SortStableFunc(es, func(a, b entry) int { return int(a.rep.Seq - b.rep.Seq) })
	reported := map[string]bool{}
	wasActive := map[string]bool{}
	prevSpend, prevTeam := map[string]int64{}, map[string]int64{}
	for _, e := range es {
		id := reporterID(e.rep.Replica, e.rep.Epoch)
		i := slices.IndexFunc(u.Reporters, func(r v1alpha1.UsageReporter) bool {
			return r.Replica == e.rep.Replica && r.Epoch == e.rep.Epoch
		})
		if i < 0 {
			u.Reporters = append(u.Reporters, v1alpha1.UsageReporter{Replica: e.rep.Replica, Epoch: e.rep.Epoch})
			i = len(u.Reporters) - 1
		}
		r := &u.Reporters[i]
		if !reported[id] {
			wasActive[id] = r.Seq > 0 && now.Sub(r.LastReport.Time) < grantTTL
			prevSpend[id], prevTeam[id] = r.SpendNanos, r.TeamSpendNanos
		}
		reported[id] = true
		if e.rep.Seq <= r.Seq {
			continue // a retry or a late report: already applied
		}
		if e.kr.PeriodStart.Equal(u.PeriodStart.UTC()) {
			ts := r.TeamSpendNanos
			r.UsageCounters = counters(&e.kr.Counters)
			r.TeamSpendNanos = ts
		}
		if hasTeam && e.kr.TeamPeriodStart.Equal(u.TeamPeriodStart.UTC()) {
			r.TeamSpendNanos = e.kr.TeamSpendNanos
		}
		r.Seq = e.rep.Seq
		r.LastReport = *mt(now)
	}

	// Fold processes silent for long into Folded.
	u.Reporters = slices.DeleteFunc(u.Reporters, func(r v1alpha1.UsageReporter) bool {
		if now.Sub(r.LastReport.Time) <= foldAfter {
			return false
		}
		if u.Folded == nil {
			u.Folded = &v1alpha1.UsageCounters{}
		}
		addCounters(u.Folded, &r.UsageCounters)
		return true
	})

	total := sumKey(u)
	budget := nanos(vk.Spec.Budget)
	teamBudget := int64(0)
	if hasTeam {
		teamBudget = nanos(vk.Spec.TeamBudget)
	}

	// Allowances: each reporting process may spend up to an equal share of
	// what no process holds yet. Invariant per budget B:
	//   spend + sum over active processes of (allowance - their spend) <= B.
	active := func(r *v1alpha1.UsageReporter) bool { return now.Sub(r.LastReport.Time) < grantTTL }
	for i := range u.Reporters {
		r := &u.Reporters[i]
		id := reporterID(r.Replica, r.Epoch)
		if !reported[id] {
			continue
		}
		r.AllowanceNanos = grant(budget, total.SpendNanos, r, wasActive[id], u.Reporters, active, 0, 0,
			want(budget, r.SpendNanos-prevSpend[id]),
			func(o *v1alpha1.UsageReporter) (int64, int64) { return o.AllowanceNanos, o.SpendNanos })
		if hasTeam {
			r.TeamAllowanceNanos = grant(teamBudget, team.spend+total.TeamSpendNanos, r, wasActive[id], u.Reporters, active,
				team.outstanding, max(team.active, team.keys), want(teamBudget, r.TeamSpendNanos-prevTeam[id]),
				func(o *v1alpha1.UsageReporter) (int64, int64) { return o.TeamAllowanceNanos, o.TeamSpendNanos })
		}
	}

	u.Spend = metering.FormatNanos(total.SpendNanos)
	u.Currency = currency(vk.Spec.Budget)
	u.Budget, u.PercentUsed = "", ""
	if budget > 0 {
		u.Budget = metering.FormatNanos(budget)
		u.PercentUsed = metering.PercentUsed(total.SpendNanos, budget)
	}
	if hasTeam {
		ts := team.spend + total.TeamSpendNanos
		u.TeamSpend = metering.FormatNanos(ts)
		u.TeamBudget = ""
		u.TeamPercentUsed = ""
		if teamBudget > 0 {
			u.TeamBudget = metering.FormatNanos(teamBudget)
			u.TeamPercentUsed = metering.PercentUsed(ts, teamBudget)
		}
	}
	u.Requests = total.Requests
	u.PromptTokens = total.PromptTokens
	u.CompletionTokens = total.CompletionTokens
	u.CacheReadTokens = total.CacheReadTokens
	u.CacheWriteTokens = total.CacheWriteTokens
	u.ReasoningTokens = total.ReasoningTokens
	u.LastUpdated = mt(now)
}

// want is how much a process should hold until its next report: four
// times what it spent since its previous report (so a steady load never
// waits), and at least 1/64 of the budget (so a new or bursty process can
// start), leaving the rest in the pool for the other processes.
func want(budget, delta int64) int64 {
	return max(4*max(delta, 0), budget/64)
}

// grant computes a process's new cumulative allowance for a budget: its
// spend plus the smaller of what it wants and an equal share of what no
// process holds yet.
func grant(budget, spent int64, r *v1alpha1.UsageReporter, wasActive bool, all []v1alpha1.UsageReporter,
	active func(*v1alpha1.UsageReporter) bool, extraOutstanding int64, extraActive int, want int64,
	get func(*v1alpha1.UsageReporter) (allow, spend int64)) int64 {
	if budget <= 0 {
		return 0
	}
	others := extraOutstanding
	n := extraActive + 1
	for i := range all {
		o := &all[i]
		if o == r || !active(o) {
			continue
		}
		a, s := get(o)
		others += max(0, a-s)
		n++
	}
	free := budget - spent - others
	allow, mySpend := get(r)
	next := mySpend + max(0, min(free/int64(n), want))
	if wasActive && allow > next {
		next = allow // never take back what the process may already be spending
	}
	return next
}

func counters(c *metering.Counters) v1alpha1.UsageCounters {
	return v1alpha1.UsageCounters{
		SpendNanos:       c.SpendNanos,
		Requests:         c.Requests,
		PromptTokens:     c.PromptTokens,
		CompletionTokens: c.CompletionTokens,
		CacheReadTokens:  c.CacheReadTokens,
		CacheWriteTokens: c.CacheWriteTokens,
		ReasoningTokens:  c.ReasoningTokens,
	}
}

func nanos(b *v1alpha1.Budget) int64 {
	if b == nil {
		return 0
	}
	n, err := metering.ParseNanos(string(b.Amount))
	if err != nil {
		return 0
	}
	return n
}
