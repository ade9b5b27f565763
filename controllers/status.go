package controllers

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/controllers/compiler"
	"tollgate.dev/tollgate/dataplane/sync/wire"
)

// ReasonRejected is the Programmed reason when a data-plane replica refused
// to apply the current routing table (it keeps serving its previous one).
const ReasonRejected = "Rejected"

// statusUpdate is one object's pending status write.
type statusUpdate struct {
	obj    client.Object
	common *v1alpha1.CommonStatus
	ref    compiler.Ref
	// extra sets kind-specific fields (VirtualKey's Secret name, health).
	extra func()
}

// writeStatuses brings every object's status in line with the compilation
// and the replicas' acknowledgements, patching only objects whose status
// changed.
func (r *Reconciler) writeStatuses(ctx context.Context, snap *snapshot, out *compiler.Output, replicas []Replica, keys map[types.NamespacedName]keyState) error {
	var ups []statusUpdate
	reps := reports(replicas)
	now := metav1.NewTime(time.Now())
	for i := range snap.providers {
		o := &snap.providers[i]
		ups = append(ups, statusUpdate{
			obj: o, common: &o.Status.CommonStatus,
			ref:   compiler.Ref{Kind: compiler.KindLLMProvider, Namespace: o.Namespace, Name: o.Name},
			extra: func() { setProviderHealth(o, reps, now) },
		})
	}
	for i := range snap.routes {
		o := &snap.routes[i]
		ups = append(ups, statusUpdate{obj: o, common: &o.Status.CommonStatus, ref: compiler.Ref{Kind: compiler.KindRoute, Namespace: o.Namespace, Name: o.Name}})
	}
	for i := range snap.keys {
		o := &snap.keys[i]
		ks := keys[types.NamespacedName{Namespace: o.Namespace, Name: o.Name}]
		ups = append(ups, statusUpdate{
			obj: o, common: &o.Status.CommonStatus,
			ref: compiler.Ref{Kind: compiler.KindVirtualKey, Namespace: o.Namespace, Name: o.Name},
			extra: func() {
				o.Status.SecretName = ks.secretName
				o.Status.KeyPrefix = ks.keyPrefix
			},
		})
	}
	for i := range snap.tools {
		o := &snap.tools[i]
		ups = append(ups, statusUpdate{
			obj: o, common: &o.Status.CommonStatus,
			ref:   compiler.Ref{Kind: compiler.KindMCPTool, Namespace: o.Namespace, Name: o.Name},
			extra: func() { setMCPHealth(o, reps, now) },
		})
	}

	rejected := rejections(replicas, r.published)
	return forEach(len(ups), func(i int) error {
		u := ups[i]
		v, ok := out.Verdict(u.ref)
		if !ok {
			// Cannot happen: every input object gets a verdict.
			return fmt.Errorf("no verdict for %s", u.ref)
		}
		before := u.obj.DeepCopyObject().(client.Object)
		acked, total := programming(replicas, u.ref.String(), v.Generation)
		setCommonStatus(u.common, v, acked, total, rejected, now)
		if u.extra != nil {
			u.extra()
		}
		if equality.Semantic.DeepEqual(before, u.obj) {
			return nil
		}
		// A merge patch of the status subresource; a conflict cannot occur
		// (no resourceVersion in the patch), and fields other writers own
		// (VirtualKey usage) are not in the diff.
		if err := r.Client.Status().Patch(ctx, u.obj, client.MergeFrom(before)); err != nil {
			if apierrors.IsNotFound(err) {
				return nil // deleted meanwhile
			}
			return fmt.Errorf("patch status of %s: %w", u.ref, err)
		}
		return nil
	})
}

// setCommonStatus writes the four conditions and observedGeneration.
// LastTransitionTime moves only when a condition's status flips.
func setCommonStatus(s *v1alpha1.CommonStatus, v compiler.Verdict, acked, total int, rejected string, now metav1.Time) {
	for _, c := range ConditionsFor(v, acked, total, rejected) {
		c.LastTransitionTime = now
		meta.SetStatusCondition(&s.Conditions, c)
	}
	s.ObservedGeneration = v.Generation
	if v.InTable {
		s.Replicas = &v1alpha1.ReplicaStatus{Acknowledged: int32(acked), Total: int32(total)}
	} else {
		s.Replicas = nil
	}
}

// ConditionsFor derives Accepted, ResolvedRefs, Programmed and Ready from the
// compiler's verdict and the number of connected replicas (total) that
// acknowledged a table holding this generation (acked); rejected lists the
// replicas that refused the current table and why. It is pure, so every
// combination is tested with a table.
func ConditionsFor(v compiler.Verdict, acked, total int, rejected string) []metav1.Condition {
	cond := func(t string, c compiler.Condition) metav1.Condition {
		return metav1.Condition{Type: t, Status: c.Status, Reason: c.Reason, Message: c.Message, ObservedGeneration: v.Generation}
	}
	accepted := cond(v1alpha1.ConditionAccepted, v.Accepted)
	resolved := cond(v1alpha1.ConditionResolvedRefs, v.ResolvedRefs)

	var programmed compiler.Condition
	switch {
	case !v.InTable:
		failing := accepted
		if accepted.Status == metav1.ConditionTrue {
			failing = resolved
		}
		programmed = compiler.Condition{Status: metav1.ConditionFalse, Reason: failing.Reason,
			Message: "Not in the routing table; see the " + failing.Type + " condition"}
	case total == 0:
		programmed = compiler.Condition{Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonNoReplicas,
			Message: "No data-plane replica is connected to the controller (acknowledged by 0/0 data-plane replicas)"}
	case acked < total && rejected != "":
		programmed = compiler.Condition{Status: metav1.ConditionFalse, Reason: ReasonRejected,
			Message: fmt.Sprintf("Acknowledged by %d/%d data-plane replicas; the current routing table was rejected by %s", acked, total, rejected)}
	case acked < total:
		programmed = compiler.Condition{Status: metav1.ConditionUnknown, Reason: v1alpha1.ReasonPending,
			Message: fmt.Sprintf("Acknowledged by %d/%d data-plane replicas", acked, total)}
	default:
		programmed = compiler.Condition{Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonProgrammed,
			Message: fmt.Sprintf("Acknowledged by %d/%d data-plane replicas", acked, total)}
	}
	prog := cond(v1alpha1.ConditionProgrammed, programmed)

	ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonReady,
		Message: fmt.Sprintf("In effect on %d/%d data-plane replicas", acked, total), ObservedGeneration: v.Generation}
	// The first condition that is not True explains Ready; its reason is
	// the most useful thing `kubectl get` can show.
	for _, c := range []metav1.Condition{accepted, resolved, prog} {
		if c.Status != metav1.ConditionTrue {
			ready.Status = metav1.ConditionFalse
			if c.Status == metav1.ConditionUnknown {
				ready.Status = metav1.ConditionUnknown
			}
			ready.Reason = c.Reason
			ready.Message = c.Type + ": " + c.Message
			break
		}
	}
	return []metav1.Condition{accepted, resolved, prog, ready}
}

// Health condition reasons beyond v1alpha1's Healthy and Unhealthy.
const (
	// ReasonNoReports: no connected data-plane replica has reported on
	// this object yet.
	ReasonNoReports = "NoReports"
	// ReasonNoTraffic: replicas report, but none has sent a request (or an
	// active probe) to this provider yet.
	ReasonNoTraffic = "NoTraffic"
	// ReasonNotChecked: no replica has finished checking the MCP server yet.
	ReasonNotChecked = "NotChecked"
)

// lastProbeRefresh is how stale MCPTool status.lastProbe may get before a
// reconcile rewrites it even though nothing else changed; checks happen
// every few seconds, and writing each one would be constant status churn.
const lastProbeRefresh = 5 * time.Minute

// maxHealthMessage bounds a Healthy condition message.
const maxHealthMessage = 1024

// reports returns the reports of the connected replicas that sent one.
func reports(replicas []Replica) []*wire.Report {
	var out []*wire.Report
	for _, r := range replicas {
		if r.Connected && r.Report != nil {
			out = append(out, r.Report)
		}
	}
	return out
}

// providerHealth aggregates the replicas' reports on one provider (ID
// "namespace/name") into status targets, sorted by model, and the Healthy
// condition. Values are rounded (error rate to 2 decimals, latency to 2
// significant digits) so that a steady system yields the same status on
// every reconcile. Pure, tested with tables.
func providerHealth(id string, reps []*wire.Report, generation int64) ([]v1alpha1.TargetHealth, metav1.Condition) {
	type agg struct {
		replicas      int
		ejected       int
		errSum        float64
		latSum        float64
		latN          int
		ejectedOnSome bool
	}
	byModel := map[string]*agg{}
	for _, r := range reps {
		for i := range r.Targets {
			t := &r.Targets[i]
			if t.Provider != id || (t.Attempts == 0 && !t.Ejected) {
				continue
			}
			a := byModel[t.Model]
			if a == nil {
				a = &agg{}
				byModel[t.Model] = a
			}
			a.replicas++
			a.errSum += t.ErrorRate
			if t.LatencyMillis > 0 {
				a.latSum += float64(t.LatencyMillis)
				a.latN++
			}
			if t.Ejected {
				a.ejected++
			}
		}
	}
	cond := metav1.Condition{Type: v1alpha1.ConditionHealthy, ObservedGeneration: generation}
	if len(reps) == 0 {
		cond.Status, cond.Reason = metav1.ConditionUnknown, ReasonNoReports
		cond.Message = "No connected data-plane replica has reported health yet"
		return nil, cond
	}
	if len(byModel) == 0 {
		cond.Status, cond.Reason = metav1.ConditionUnknown, ReasonNoTraffic
		cond.Message = fmt.Sprintf("No traffic or health probe to this provider on %d reporting data-plane replicas yet", len(reps))
		return nil, cond
	}
	models := slices.Sorted(maps.Keys(byModel))
	targets := make([]v1alpha1.TargetHealth, 0, len(models))
	var ejected []string
	for _, m := range models {
		a := byModel[m]
		th := v1alpha1.TargetHealth{
			Model:     m,
			Ejected:   a.ejected > 0,
			ErrorRate: formatRate(a.errSum / float64(a.replicas)),
			Replicas:  int32(a.replicas),
		}
		if a.latN > 0 {
			th.LatencyMillis = roundLatency(a.latSum / float64(a.latN))
		}
		targets = append(targets, th)
		if th.Ejected {
			ejected = append(ejected, fmt.Sprintf("%s (on %d/%d replicas)", m, a.ejected, a.replicas))
		}
	}
	switch {
	case len(ejected) == len(targets):
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonUnhealthy
		cond.Message = "Every target is ejected after failures: " + strings.Join(ejected, ", ")
	case len(ejected) > 0:
		cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonHealthy
		cond.Message = fmt.Sprintf("%d/%d targets serving; ejected after failures: %s", len(targets)-len(ejected), len(targets), strings.Join(ejected, ", "))
	default:
		cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonHealthy
		cond.Message = fmt.Sprintf("%d/%d targets serving", len(targets), len(targets))
	}
	cond.Message = clipMessage(cond.Message)
	return targets, cond
}

// formatRate writes an error ratio as a decimal string with 2 digits.
func formatRate(r float64) string {
	r = math.Min(math.Max(r, 0), 1)
	return strconv.FormatFloat(math.Round(r*100)/100, 'f', 2, 64)
}

// roundLatency rounds to two significant digits (87, 120, 3400), at least 1.
func roundLatency(ms float64) int64 {
	if ms < 1 {
		return 1
	}
	if ms < 100 {
		return int64(math.Round(ms))
	}
	p := math.Pow(10, math.Floor(math.Log10(ms))-1)
	return int64(math.Round(ms/p) * p)
}

func clipMessage(s string) string {
	if len(s) <= maxHealthMessage {
		return s
	}
	s = s[:maxHealthMessage]
	// Drop a rune the cut split (at most UTFMax-1 bytes of it).
	for i := 1; i < utf8.UTFMax && len(s) > 0; i++ {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s + "..."
}

// mcpHealth aggregates the replicas' reports on one MCP server (ID
// "namespace/name"): the exposed tools (from the healthy replica that
// checked last, else from the one that checked last), the time of the last
// check and the Healthy condition. Healthy is True when at least one
// reporting replica reaches the server, False when none does. Pure.
func mcpHealth(id string, reps []*wire.Report, generation int64) ([]v1alpha1.DiscoveredTool, *time.Time, metav1.Condition) {
	var (
		best      *wire.MCPReport
		last      *time.Time
		healthy   int
		checked   int
		unhealthy []string
	)
	for _, r := range reps {
		for i := range r.MCPServers {
			s := &r.MCPServers[i]
			if s.ID != id || s.CheckedAt == nil {
				continue
			}
			checked++
			if s.Healthy {
				healthy++
			} else if !slices.Contains(unhealthy, s.Message) {
				unhealthy = append(unhealthy, s.Message)
			}
			if last == nil || s.CheckedAt.After(*last) {
				last = s.CheckedAt
			}
			if best == nil || (s.Healthy && !best.Healthy) || (s.Healthy == best.Healthy && s.CheckedAt.After(*best.CheckedAt)) {
				best = s
			}
		}
	}
	cond := metav1.Condition{Type: v1alpha1.ConditionHealthy, ObservedGeneration: generation}
	switch {
	case len(reps) == 0:
		cond.Status, cond.Reason = metav1.ConditionUnknown, ReasonNoReports
		cond.Message = "No connected data-plane replica has reported health yet"
		return nil, nil, cond
	case checked == 0:
		cond.Status, cond.Reason = metav1.ConditionUnknown, ReasonNotChecked
		cond.Message = "No data-plane replica has finished checking the server yet"
		return nil, nil, cond
	}
	tools := make([]v1alpha1.DiscoveredTool, 0, len(best.Tools))
	for _, t := range best.Tools {
		tools = append(tools, v1alpha1.DiscoveredTool{Name: t.Name, Description: t.Description})
	}
	slices.SortFunc(tools, func(a, b v1alpha1.DiscoveredTool) int { return strings.Compare(a.Name, b.Name) })
	tools = slices.CompactFunc(tools, func(a, b v1alpha1.DiscoveredTool) bool { return a.Name == b.Name })
	if len(tools) == 0 {
		tools = nil
	}
	switch {
	case healthy == 0:
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonUnhealthy
		cond.Message = fmt.Sprintf("Unreachable from %d/%d data-plane replicas: %s", checked, checked, strings.Join(unhealthy, "; "))
	case healthy < checked:
		cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonHealthy
		cond.Message = fmt.Sprintf("%s; unreachable from %d/%d data-plane replicas: %s", best.Message, checked-healthy, checked, strings.Join(unhealthy, "; "))
	default:
		cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonHealthy
		cond.Message = best.Message
	}
	if cond.Message == "" {
		cond.Message = fmt.Sprintf("%d tools exposed", len(tools))
	}
	cond.Message = clipMessage(cond.Message)
	return tools, last, cond
}

// setProviderHealth writes targets and Healthy on an LLMProvider.
func setProviderHealth(o *v1alpha1.LLMProvider, reps []*wire.Report, now metav1.Time) {
	targets, cond := providerHealth(o.Namespace+"/"+o.Name, reps, o.Generation)
	o.Status.Targets = targets
	cond.LastTransitionTime = now
	meta.SetStatusCondition(&o.Status.Conditions, cond)
}

// setMCPHealth writes tools, lastProbe and Healthy on an MCPTool. lastProbe
// alone moves only when it is lastProbeRefresh old, so that routine checks
// do not rewrite status every few seconds.
func setMCPHealth(o *v1alpha1.MCPTool, reps []*wire.Report, now metav1.Time) {
	before := o.Status.DeepCopy()
	tools, last, cond := mcpHealth(o.Namespace+"/"+o.Name, reps, o.Generation)
	o.Status.Tools = tools
	cond.LastTransitionTime = now
	meta.SetStatusCondition(&o.Status.Conditions, cond)
	switch {
	case last == nil:
		// Keep the last known probe time: nobody checked since.
	case o.Status.LastProbe == nil || !equality.Semantic.DeepEqual(before.Tools, o.Status.Tools) ||
		!equality.Semantic.DeepEqual(before.Conditions, o.Status.Conditions) ||
		last.Sub(o.Status.LastProbe.Time) >= lastProbeRefresh:
		t := metav1.NewTime(last.Truncate(time.Second))
		o.Status.LastProbe = &t
	}
}
