package controllers

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/controllers/compiler"
)

// ReasonRejected is the Programmed reason when a data-plane replica refused
// to apply the current routing table (it keeps serving its previous one).
const ReasonRejected = "Rejected"

// statusUpdate is one object's pending status write.
type statusUpdate struct {
	obj    client.Object
	common *v1alpha1.CommonStatus
	ref    compiler.Ref
	// extra sets kind-specific fields (VirtualKey's Secret name).
	extra func()
}

// writeStatuses brings every object's status in line with the compilation
// and the replicas' acknowledgements, patching only objects whose status
// changed.
func (r *Reconciler) writeStatuses(ctx context.Context, snap *snapshot, out *compiler.Output, replicas []Replica, keys map[types.NamespacedName]keyState) error {
	var ups []statusUpdate
	for i := range snap.providers {
		o := &snap.providers[i]
		ups = append(ups, statusUpdate{obj: o, common: &o.Status.CommonStatus, ref: compiler.Ref{Kind: compiler.KindLLMProvider, Namespace: o.Namespace, Name: o.Name}})
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
		ups = append(ups, statusUpdate{obj: o, common: &o.Status.CommonStatus, ref: compiler.Ref{Kind: compiler.KindMCPTool, Namespace: o.Namespace, Name: o.Name}})
	}

	rejected := rejections(replicas, r.published)
	now := metav1.NewTime(time.Now())
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
		// (usage, health) are not in the diff.
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
	for _, c := range conditionsFor(v, acked, total, rejected) {
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

// conditionsFor derives Accepted, ResolvedRefs, Programmed and Ready from the
// compiler's verdict and the number of connected replicas (total) that
// acknowledged a table holding this generation (acked); rejected lists the
// replicas that refused the current table and why. It is pure, so every
// combination is tested with a table.
func conditionsFor(v compiler.Verdict, acked, total int, rejected string) []metav1.Condition {
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
