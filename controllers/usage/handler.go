// Package usage receives usage reports from data-plane replicas, folds them
// into VirtualKey status (spend, budget, percent used, requests, tokens by
// kind, team spend) and answers each replica with the global spend of its
// keys and the allowance it may spend before it reports again.
//
// Idempotency: a report carries cumulative figures per data-plane process
// (replica + random epoch) and period, and status keeps, per key and
// process, the figures and Seq of the newest report applied. Applying a
// report twice, or an older one after a newer one, changes nothing; the
// bookkeeping lives in the same object write as the spend it guards, so a
// controller restart between write and acknowledgement cannot double count.
package usage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/dataplane/metering"
	"tollgate.dev/tollgate/dataplane/routetable"
)

// +kubebuilder:rbac:groups=gateway.tollgate.dev,resources=virtualkeys,verbs=get;list;watch
// +kubebuilder:rbac:groups=gateway.tollgate.dev,resources=virtualkeys/status,verbs=get;update;patch

// Path is where the controller mounts the handler on its push listener.
const Path = "/v1/usage"

// Authenticator identifies the data-plane replica calling.
type Authenticator interface {
	Authenticate(*http.Request) (string, error)
}

// Options configure a Handler.
type Options struct {
	// Client reads VirtualKeys (a cached client is fine) and writes status.
	Client client.Client
	// Reader reads uncached after a write conflict (mgr.GetAPIReader());
	// defaults to Client.
	Reader client.Reader
	Auth   Authenticator
	// Interval batches reports: each key's status is written at most once
	// per interval (default 1s).
	Interval time.Duration
	// GrantTTL is how long an allowance stays reserved for a process that
	// stopped reporting (default 30s); after that it returns to the pool.
	GrantTTL time.Duration
	// FoldAfter moves a silent process's figures into status.usage.folded
	// so the reporters list stays short (default 24h).
	FoldAfter time.Duration
	// MaxBodyBytes bounds a report (default 8 MiB).
	MaxBodyBytes int64
	Now          func() time.Time
	Log          logr.Logger
}

// Handler is an http.Handler for usage reports and, as a manager
// Runnable that needs leader election, the batch writer. Only the leader
// writes; other controller replicas answer 503 with Retry-After so the
// data plane retries (its figures are cumulative and kept until acked).
type Handler struct {
	opts    Options
	jobs    chan *job
	leading atomic.Bool

	mu     sync.Mutex
	active map[string]time.Time // "replica/epoch" -> last report
}

type job struct {
	rep  *metering.Report
	done chan result
}

type result struct {
	ack *metering.Ack
	err error
}

// New returns a Handler; add it to the manager (mgr.Add) so it writes while
// leader, and mount it at Path.
func New(opts Options) *Handler {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.GrantTTL <= 0 {
		opts.GrantTTL = 30 * time.Second
	}
	if opts.FoldAfter <= 0 {
		opts.FoldAfter = 24 * time.Hour
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 8 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Reader == nil {
		opts.Reader = opts.Client
	}
	return &Handler{opts: opts, jobs: make(chan *job, 1024), active: map[string]time.Time{}}
}

// NeedLeaderElection makes the manager start the writer only on the leader.
func (h *Handler) NeedLeaderElection() bool { return true }

// Start runs the batch writer until ctx ends.
func (h *Handler) Start(ctx context.Context) error {
	h.leading.Store(true)
	defer h.leading.Store(false)
	t := time.NewTicker(h.opts.Interval)
	defer t.Stop()
	var batch []*job
	for {
		select {
		case <-ctx.Done():
			for _, j := range batch {
				j.done <- result{err: errNotLeader}
			}
			return nil
		case j := <-h.jobs:
			batch = append(batch, j)
		case <-t.C:
			if len(batch) > 0 {
				h.flush(ctx, batch)
				batch = nil
			}
		}
	}
}

var errNotLeader = errors.New("this controller replica is not the leader")

// ServeHTTP accepts one report and answers once it is durably recorded.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if h.opts.Auth == nil {
		http.Error(w, "no authenticator configured", http.StatusForbidden)
		return
	}
	who, err := h.opts.Auth.Authenticate(r)
	if err != nil {
		http.Error(w, "unauthenticated", http.StatusUnauthorized)
		return
	}
	var rep metering.Report
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)).Decode(&rep); err != nil {
		http.Error(w, "invalid report: "+err.Error(), http.StatusBadRequest)
		return
	}
	if rep.Replica == "" || rep.Epoch == "" || rep.Seq <= 0 {
		http.Error(w, "invalid report: replica, epoch and seq are required", http.StatusBadRequest)
		return
	}
	if !h.leading.Load() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, errNotLeader.Error(), http.StatusServiceUnavailable)
		return
	}
	j := &job{rep: &rep, done: make(chan result, 1)}
	// Bounded wait: leadership may be lost between the check and the batch.
	timeout := time.NewTimer(10*h.opts.Interval + 10*time.Second)
	defer timeout.Stop()
	select {
	case h.jobs <- j:
	case <-r.Context().Done():
		return
	case <-timeout.C:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "usage writer busy", http.StatusServiceUnavailable)
		return
	}
	select {
	case <-timeout.C:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "usage report not recorded in time", http.StatusServiceUnavailable)
	case res := <-j.done:
		if res.err != nil {
			h.opts.Log.V(1).Info("Usage report not recorded", "replica", rep.Replica, "identity", who, "error", res.err.Error())
			w.Header().Set("Retry-After", "1")
			http.Error(w, res.err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res.ack)
	case <-r.Context().Done():
	}
}

// entry is one key's part of one report.
type entry struct {
	rep *metering.Report
	kr  *metering.KeyReport
}

func reporterID(replica, epoch string) string { return replica + "/" + epoch }

// flush folds a batch: one status write per key, then one answer per report.
func (h *Handler) flush(ctx context.Context, batch []*job) {
	now := h.opts.Now()
	byKey := map[string][]entry{}
	h.mu.Lock()
	for _, j := range batch {
		h.active[reporterID(j.rep.Replica, j.rep.Epoch)] = now
		for i := range j.rep.Keys {
			kr := &j.rep.Keys[i]
			byKey[kr.Key] = append(byKey[kr.Key], entry{j.rep, kr})
		}
	}
	for id, t := range h.active {
		if now.Sub(t) > h.opts.GrantTTL {
			delete(h.active, id)
		}
	}
	replicas := len(h.active)
	h.mu.Unlock()

	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	states := map[string]metering.KeyState{} // "replica/epoch/key"
	failed := map[string]error{}
	written := map[types.NamespacedName]*v1alpha1.VirtualKey{}
	for _, k := range keys {
		ns, name, ok := strings.Cut(k, "/")
		if !ok {
			continue
		}
		nn := types.NamespacedName{Namespace: ns, Name: name}
		vk, err := h.foldAndWrite(ctx, nn, byKey[k], now, written)
		if err != nil {
			if apierrors.IsNotFound(err) {
				continue // deleted key: nothing to record, nothing to answer
			}
			failed[k] = err
			continue
		}
		written[nn] = vk
		for _, e := range byKey[k] {
			states[reporterID(e.rep.Replica, e.rep.Epoch)+"/"+k] = h.stateFor(vk, e.rep, now, written)
		}
	}
	for _, j := range batch {
		var err error
		ack := &metering.Ack{Seq: j.rep.Seq, Replicas: max(replicas, 1)}
		for i := range j.rep.Keys {
			k := j.rep.Keys[i].Key
			if e := failed[k]; e != nil {
				err = fmt.Errorf("recording usage of VirtualKey %s: %w", k, e)
				break
			}
			if st, ok := states[reporterID(j.rep.Replica, j.rep.Epoch)+"/"+k]; ok {
				ack.Keys = append(ack.Keys, st)
			}
		}
		if err != nil {
			j.done <- result{err: err}
		} else {
			j.done <- result{ack: ack}
		}
	}
}

// foldAndWrite applies entries to a key's status and writes it, re-reading
// and re-applying on conflict (the fold is idempotent).
func (h *Handler) foldAndWrite(ctx context.Context, nn types.NamespacedName, es []entry, now time.Time,
	written map[types.NamespacedName]*v1alpha1.VirtualKey) (*v1alpha1.VirtualKey, error) {
	var reader client.Reader = h.opts.Client
	for attempt := 0; ; attempt++ {
		vk := &v1alpha1.VirtualKey{}
		if err := reader.Get(ctx, nn, vk); err != nil {
			return nil, err
		}
		team := h.teamView(ctx, vk, written)
		before := vk.Status.Usage.DeepCopy()
		fold(vk, es, now, h.opts.GrantTTL, h.opts.FoldAfter, team)
		if unchanged(before, vk.Status.Usage, now, h.opts.GrantTTL/3) {
			return vk, nil // only timestamps moved, and recently written: skip the write
		}
		err := h.opts.Client.Status().Update(ctx, vk)
		if err == nil {
			return vk, nil
		}
		if !apierrors.IsConflict(err) || attempt >= 4 {
			return nil, err
		}
		reader = h.opts.Reader
	}
}

// stateFor is the answer for one process about one key.
func (h *Handler) stateFor(vk *v1alpha1.VirtualKey, rep *metering.Report, now time.Time,
	written map[types.NamespacedName]*v1alpha1.VirtualKey) metering.KeyState {
	u := vk.Status.Usage
	st := metering.KeyState{Key: vk.Namespace + "/" + vk.Name}
	if u == nil {
		return st
	}
	st.PeriodStart = u.PeriodStart.UTC()
	own := sumKey(u)
	st.SpendNanos = own.SpendNanos
	if b := vk.Spec.Budget; b != nil {
		st.BudgetNanos, _ = metering.ParseNanos(string(b.Amount))
	}
	if u.TeamPeriodStart != nil {
		st.TeamPeriodStart = u.TeamPeriodStart.UTC()
		st.TeamSpendNanos = h.teamView(context.Background(), vk, written).spend + own.TeamSpendNanos
		if tb := vk.Spec.TeamBudget; tb != nil {
			st.TeamBudgetNanos, _ = metering.ParseNanos(string(tb.Amount))
		}
	}
	for i := range u.Reporters {
		r := &u.Reporters[i]
		if r.Replica == rep.Replica && r.Epoch == rep.Epoch {
			st.AllowanceNanos, st.TeamAllowanceNanos = r.AllowanceNanos, r.TeamAllowanceNanos
		}
	}
	return st
}

// TeamView is what the other keys of a team contribute in the current team
// period: their spend and the allowances their processes still hold.
type TeamView struct {
	spend       int64
	outstanding int64
	active      int
	keys        int // other keys of the team
}

// teamView sums the team's other keys (from the cache, overlaid with what
// this batch wrote).
func (h *Handler) teamView(ctx context.Context, vk *v1alpha1.VirtualKey, written map[types.NamespacedName]*v1alpha1.VirtualKey) TeamView {
	var tv TeamView
	if vk.Spec.Team == "" || vk.Spec.TeamBudget == nil {
		return tv
	}
	start := metering.PeriodStart(period(vk.Spec.TeamBudget), h.opts.Now())
	var list v1alpha1.VirtualKeyList
	if err := h.opts.Client.List(ctx, &list, client.InNamespace(vk.Namespace)); err != nil {
		h.opts.Log.Error(err, "Listing VirtualKeys for team spend", "namespace", vk.Namespace)
		return tv
	}
	now := h.opts.Now()
	for i := range list.Items {
		o := &list.Items[i]
		if o.Name == vk.Name || o.Spec.Team != vk.Spec.Team {
			continue
		}
		if w := written[types.NamespacedName{Namespace: o.Namespace, Name: o.Name}]; w != nil {
			o = w
		}
		tv.keys++
		u := o.Status.Usage
		if u == nil || u.TeamPeriodStart == nil || !u.TeamPeriodStart.UTC().Equal(start) {
			continue
		}
		tv.spend += sumKey(u).TeamSpendNanos
		for j := range u.Reporters {
			r := &u.Reporters[j]
			if now.Sub(r.LastReport.Time) < h.opts.GrantTTL {
				tv.outstanding += max(0, r.TeamAllowanceNanos-r.TeamSpendNanos)
				tv.active++
			}
		}
	}
	return tv
}

func period(b *v1alpha1.Budget) routetable.BudgetPeriod {
	if b == nil || b.Period == "" {
		return routetable.PeriodMonthly
	}
	return routetable.BudgetPeriod(b.Period)
}

func currency(b *v1alpha1.Budget) string {
	if b == nil || b.Currency == "" {
		return "USD"
	}
	return b.Currency
}

// sumKey adds folded and per-process figures.
func sumKey(u *v1alpha1.UsageStatus) v1alpha1.UsageCounters {
	var s v1alpha1.UsageCounters
	if u.Folded != nil {
		s = *u.Folded
	}
	for i := range u.Reporters {
		addCounters(&s, &u.Reporters[i].UsageCounters)
	}
	return s
}

func addCounters(dst, c *v1alpha1.UsageCounters) {
	dst.SpendNanos += c.SpendNanos
	dst.TeamSpendNanos += c.TeamSpendNanos
	dst.Requests += c.Requests
	dst.PromptTokens += c.PromptTokens
	dst.CompletionTokens += c.CompletionTokens
	dst.CacheReadTokens += c.CacheReadTokens
	dst.CacheWriteTokens += c.CacheWriteTokens
	dst.ReasoningTokens += c.ReasoningTokens
}

func mt(t time.Time) *metav1.Time { v := metav1.NewTime(t.UTC()); return &v }

// unchanged reports whether a fold changed nothing but timestamps, and the
// timestamps in status are younger than fresh (so activity stays visible to
// the grant TTL and compaction after a controller restart).
func unchanged(before, after *v1alpha1.UsageStatus, now time.Time, fresh time.Duration) bool {
	if before == nil || after == nil || before.LastUpdated == nil || now.Sub(before.LastUpdated.Time) >= fresh ||
		len(before.Reporters) != len(after.Reporters) {
		return false
	}
	b, a := before.DeepCopy(), after.DeepCopy()
	b.LastUpdated, a.LastUpdated = nil, nil
	for i := range b.Reporters {
		if now.Sub(b.Reporters[i].LastReport.Time) >= fresh {
			return false
		}
		b.Reporters[i].LastReport, a.Reporters[i].LastReport = metav1.Time{}, metav1.Time{}
	}
	return equality.Semantic.DeepEqual(b, a)
}
