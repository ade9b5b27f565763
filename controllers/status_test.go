package controllers

import (
	"encoding/base64"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/controllers/compiler"
	"tollgate.dev/tollgate/dataplane/routetable"
)

func TestConditionsFor(t *testing.T) {
	ok := compiler.Condition{Status: metav1.ConditionTrue, Reason: "Accepted", Message: "Spec is valid"}
	refsOK := compiler.Condition{Status: metav1.ConditionTrue, Reason: "ResolvedRefs", Message: "All references resolved"}
	invalid := compiler.Condition{Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonInvalid, Message: "model is bad"}
	missing := compiler.Condition{Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonProviderNotFound, Message: "LLMProvider \"x\" not found"}
	type cond struct {
		status metav1.ConditionStatus
		reason string
		msg    string
	}
	for _, tc := range []struct {
		name              string
		v                 compiler.Verdict
		acked, total      int
		rejected          string
		programmed, ready cond
	}{
		{"programmed everywhere", compiler.Verdict{Accepted: ok, ResolvedRefs: refsOK, InTable: true}, 2, 2, "",
			cond{"True", "Programmed", "Acknowledged by 2/2 data-plane replicas"}, cond{"True", "Ready", "In effect on 2/2"}},
		{"pending", compiler.Verdict{Accepted: ok, ResolvedRefs: refsOK, InTable: true}, 1, 3, "",
			cond{"Unknown", "Pending", "Acknowledged by 1/3 data-plane replicas"}, cond{"Unknown", "Pending", "Programmed: Acknowledged by 1/3"}},
		{"rejected", compiler.Verdict{Accepted: ok, ResolvedRefs: refsOK, InTable: true}, 1, 2, "dp-1: unknown provider type",
			cond{"False", "Rejected", "Acknowledged by 1/2 data-plane replicas; the current routing table was rejected by dp-1: unknown provider type"}, cond{"False", "Rejected", "Programmed:"}},
		{"no replicas", compiler.Verdict{Accepted: ok, ResolvedRefs: refsOK, InTable: true}, 0, 0, "",
			cond{"False", "NoReplicas", "0/0"}, cond{"False", "NoReplicas", "Programmed: No data-plane replica"}},
		{"invalid", compiler.Verdict{Accepted: invalid, ResolvedRefs: refsOK}, 2, 2, "",
			cond{"False", "Invalid", "see the Accepted condition"}, cond{"False", "Invalid", "Accepted: model is bad"}},
		{"unresolved", compiler.Verdict{Accepted: ok, ResolvedRefs: missing}, 2, 2, "",
			cond{"False", "ProviderNotFound", "see the ResolvedRefs condition"}, cond{"False", "ProviderNotFound", "ResolvedRefs: LLMProvider"}},
		{"in table with a partial grant", compiler.Verdict{Accepted: ok, ResolvedRefs: missing, InTable: true}, 1, 1, "",
			cond{"True", "Programmed", "1/1"}, cond{"False", "ProviderNotFound", "ResolvedRefs:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.v.Generation = 7
			cs := ConditionsFor(tc.v, tc.acked, tc.total, tc.rejected)
			if len(cs) != 4 {
				t.Fatalf("%d conditions", len(cs))
			}
			for _, c := range cs {
				if c.ObservedGeneration != 7 || c.Reason == "" {
					t.Errorf("%s: observedGeneration %d reason %q", c.Type, c.ObservedGeneration, c.Reason)
				}
			}
			for _, w := range []struct {
				got  metav1.Condition
				want cond
			}{{cs[2], tc.programmed}, {cs[3], tc.ready}} {
				if string(w.got.Status) != string(w.want.status) || w.got.Reason != w.want.reason || !strings.Contains(w.got.Message, w.want.msg) {
					t.Errorf("%s = %s/%s %q, want %s/%s containing %q", w.got.Type, w.got.Status, w.got.Reason, w.got.Message, w.want.status, w.want.reason, w.want.msg)
				}
			}
		})
	}
}

func TestSetCommonStatusKeepsTransitionTime(t *testing.T) {
	v := compiler.Verdict{Generation: 1,
		Accepted:     compiler.Condition{Status: metav1.ConditionTrue, Reason: "Accepted", Message: "ok"},
		ResolvedRefs: compiler.Condition{Status: metav1.ConditionTrue, Reason: "ResolvedRefs", Message: "ok"},
		InTable:      true}
	var s v1alpha1.CommonStatus
	t0 := metav1.Unix(1000, 0)
	setCommonStatus(&s, v, 0, 1, "", t0)
	t1 := metav1.Unix(2000, 0)
	v.Generation = 2
	setCommonStatus(&s, v, 1, 1, "", t1)
	for _, c := range s.Conditions {
		want := t0
		if c.Type == v1alpha1.ConditionProgrammed || c.Type == v1alpha1.ConditionReady {
			want = t1 // flipped Unknown -> True
		}
		if !c.LastTransitionTime.Equal(&want) {
			t.Errorf("%s lastTransitionTime %s, want %s", c.Type, c.LastTransitionTime, want)
		}
		if c.ObservedGeneration != 2 {
			t.Errorf("%s observedGeneration %d", c.Type, c.ObservedGeneration)
		}
	}
	if s.ObservedGeneration != 2 || s.Replicas == nil || s.Replicas.Acknowledged != 1 {
		t.Errorf("status = %+v", s)
	}
}

func TestProgrammingCountsConnectedReplicasOnly(t *testing.T) {
	ref := "Route/ns/r"
	has := func(g int64) *routetable.Table { return &routetable.Table{Generations: map[string]int64{ref: g}} }
	rs := []Replica{
		{ID: "a", Connected: true, Acked: has(3)},
		{ID: "b", Connected: true, Acked: has(2)}, // older generation
		{ID: "c", Connected: true},                // nothing acked yet
		{ID: "d", Connected: false, Acked: has(3)},
	}
	if acked, total := programming(rs, ref, 3); acked != 1 || total != 3 {
		t.Errorf("programming = %d/%d, want 1/3", acked, total)
	}
}

func TestNewKey(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k, err := newKey()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(k, KeyPrefix) || len(k) != 46 || len(k) < compiler.MinKeyLength {
			t.Fatalf("key of length %d with prefix %q", len(k), k[:3])
		}
		b, err := base64.RawURLEncoding.DecodeString(k[len(KeyPrefix):])
		if err != nil || len(b) != 32 {
			t.Fatalf("key body is not 32 bytes of base64url: %v", err)
		}
		if seen[k] {
			t.Fatal("duplicate key")
		}
		seen[k] = true
	}
}

func TestRejections(t *testing.T) {
	rs := []Replica{
		{ID: "a", Connected: true, RejectedVersion: "v2", Error: "bad table"},
		{ID: "b", Connected: true, RejectedVersion: "v1", Error: "older"},
		{ID: "c", Connected: false, RejectedVersion: "v2", Error: "gone"},
	}
	if got := rejections(rs, "v2"); got != "a: bad table" {
		t.Errorf("rejections = %q", got)
	}
	if got := rejections(rs, ""); got != "" {
		t.Errorf("rejections before any table = %q", got)
	}
}

// FuzzConditionsFor checks the invariants of the status logic for any
// verdict and replica counts: four conditions with reasons and the
// generation, Ready True exactly when the other three are, Programmed never
// True for an object outside the table or with replicas still behind.
func FuzzConditionsFor(f *testing.F) {
	f.Add(true, true, true, 1, 1, "", int64(1))
	f.Add(true, false, true, 0, 2, "dp-0: bad", int64(3))
	f.Add(false, true, false, 2, 2, "", int64(2))
	f.Fuzz(func(t *testing.T, accepted, resolved, inTable bool, acked, total int, rejected string, gen int64) {
		if acked < 0 || total < 0 || acked > total || total > 1000 {
			t.Skip()
		}
		c := func(ok bool, reason string) compiler.Condition {
			if ok {
				return compiler.Condition{Status: metav1.ConditionTrue, Reason: reason, Message: "ok"}
			}
			return compiler.Condition{Status: metav1.ConditionFalse, Reason: "Invalid", Message: "bad"}
		}
		v := compiler.Verdict{Generation: gen, Accepted: c(accepted, "Accepted"), ResolvedRefs: c(resolved, "ResolvedRefs"), InTable: inTable}
		cs := ConditionsFor(v, acked, total, rejected)
		if len(cs) != 4 {
			t.Fatalf("%d conditions", len(cs))
		}
		allTrue := true
		for _, x := range cs[:3] {
			allTrue = allTrue && x.Status == metav1.ConditionTrue
		}
		for _, x := range cs {
			if x.Reason == "" || x.ObservedGeneration != gen || x.Message == "" {
				t.Errorf("%s: reason %q generation %d message %q", x.Type, x.Reason, x.ObservedGeneration, x.Message)
			}
		}
		if (cs[3].Status == metav1.ConditionTrue) != allTrue {
			t.Errorf("Ready %s with Accepted %s, ResolvedRefs %s, Programmed %s", cs[3].Status, cs[0].Status, cs[1].Status, cs[2].Status)
		}
		if cs[2].Status == metav1.ConditionTrue && (!inTable || total == 0 || acked < total) {
			t.Errorf("Programmed True with inTable=%v acked=%d total=%d", inTable, acked, total)
		}
	})
}
