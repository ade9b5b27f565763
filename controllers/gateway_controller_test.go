package controllers

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/controllers/compiler"
	"tollgate.dev/tollgate/dataplane/server"
)

func credentialsSecret(ns, value string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "openai-credentials"},
		Data:       map[string][]byte{"api-key": []byte(value)},
	}
}

func provider(ns, name string) *v1alpha1.LLMProvider {
	return &v1alpha1.LLMProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.LLMProviderSpec{
			Type:        v1alpha1.ProviderOpenAI,
			Credentials: &v1alpha1.ProviderCredentials{APIKey: &v1alpha1.SecretKeySelector{Name: "openai-credentials", Key: "api-key"}},
			Models:      []v1alpha1.ModelSpec{{Name: "gpt-4.1-mini", InputPrice: "0.40", OutputPrice: "1.60"}},
		},
	}
}

func route(ns, name, model, providerName string) *v1alpha1.Route {
	return &v1alpha1.Route{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.RouteSpec{
			Model:   model,
			Targets: []v1alpha1.RouteTarget{{Provider: providerName, Model: "gpt-4.1-mini"}},
		},
	}
}

func virtualKey(ns, name string) *v1alpha1.VirtualKey {
	return &v1alpha1.VirtualKey{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"team": "search"}},
		Spec:       v1alpha1.VirtualKeySpec{Team: "search"},
	}
}

func mcpTool(ns, name string, keys ...string) *v1alpha1.MCPTool {
	return &v1alpha1.MCPTool{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.MCPToolSpec{
			Endpoint: "http://docs.knowledge.svc.cluster.local:8080/mcp",
			Access:   v1alpha1.MCPAccess{Keys: keys},
		},
	}
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := k8sClient.Create(ctx(t), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// statusOf returns the common status of any Tollgate object.
func statusOf(o client.Object) *v1alpha1.CommonStatus {
	switch o := o.(type) {
	case *v1alpha1.LLMProvider:
		return &o.Status.CommonStatus
	case *v1alpha1.Route:
		return &o.Status.CommonStatus
	case *v1alpha1.VirtualKey:
		return &o.Status.CommonStatus
	case *v1alpha1.MCPTool:
		return &o.Status.CommonStatus
	}
	panic(fmt.Sprintf("no status for %T", o))
}

// want describes one expected condition.
type want struct {
	typ    string
	status metav1.ConditionStatus
	reason string // empty: any
	msg    string // substring; empty: any
}

// hasConditions fetches o and checks its conditions against ws at the
// object's current generation.
func hasConditions(t *testing.T, o client.Object, ws ...want) error {
	t.Helper()
	if err := k8sClient.Get(ctx(t), client.ObjectKeyFromObject(o), o); err != nil {
		return err
	}
	st := statusOf(o)
	if st.ObservedGeneration != o.GetGeneration() {
		return fmt.Errorf("status.observedGeneration %d, generation %d", st.ObservedGeneration, o.GetGeneration())
	}
	for _, w := range ws {
		c := meta.FindStatusCondition(st.Conditions, w.typ)
		switch {
		case c == nil:
			return fmt.Errorf("no %s condition in %+v", w.typ, st.Conditions)
		case c.Status != w.status || (w.reason != "" && c.Reason != w.reason) || !strings.Contains(c.Message, w.msg):
			return fmt.Errorf("%s = %s/%s %q, want %s/%s %q", w.typ, c.Status, c.Reason, c.Message, w.status, w.reason, w.msg)
		case c.ObservedGeneration != o.GetGeneration():
			return fmt.Errorf("%s observedGeneration %d, generation %d", w.typ, c.ObservedGeneration, o.GetGeneration())
		case c.LastTransitionTime.IsZero():
			return fmt.Errorf("%s has no lastTransitionTime", w.typ)
		}
	}
	return nil
}

var allReady = []want{
	{v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, ""},
	{v1alpha1.ConditionResolvedRefs, metav1.ConditionTrue, v1alpha1.ReasonResolvedRefs, ""},
	{v1alpha1.ConditionProgrammed, metav1.ConditionTrue, v1alpha1.ReasonProgrammed, "Acknowledged by 1/1 data-plane replicas"},
	{v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady, ""},
}

func TestValidObjectsBecomeReady(t *testing.T) {
	ns := newNamespace(t)
	p, r, vk, tool := provider(ns, "openai"), route(ns, "mini", "gpt-4.1-mini", "openai"), virtualKey(ns, "search"), mcpTool(ns, "docs", "search")
	create(t, credentialsSecret(ns, "sk-test-0123456789"), p, r, vk, tool)
	for _, o := range []client.Object{p, r, vk, tool} {
		eventually(t, fmt.Sprintf("%T %s ready", o, o.GetName()), func() error { return hasConditions(t, o, allReady...) })
	}
	if st := statusOf(r); st.Replicas == nil || st.Replicas.Acknowledged != 1 || st.Replicas.Total != 1 {
		t.Errorf("route status.replicas = %+v, want 1/1", st.Replicas)
	}
	tbl := fakePub.latest()
	if _, ok := tbl.RouteForModel(ns, "gpt-4.1-mini"); !ok {
		t.Errorf("published table %s has no route for %s/gpt-4.1-mini", tbl.Version, ns)
	}

	// A spec change is a new generation; every condition follows it.
	r.Spec.Targets[0].Weight = ptr(int32(5))
	if err := k8sClient.Update(ctx(t), r); err != nil {
		t.Fatal(err)
	}
	eventually(t, "route ready at generation 2", func() error {
		if r.Generation != 2 {
			return fmt.Errorf("generation %d", r.Generation)
		}
		return hasConditions(t, r, allReady...)
	})
	if g := fakePub.latest().Generations[compiler.Ref{Kind: compiler.KindRoute, Namespace: ns, Name: "mini"}.String()]; g != 2 {
		t.Errorf("table generation of the route = %d, want 2", g)
	}
}

func TestRouteWithMissingProvider(t *testing.T) {
	ns := newNamespace(t)
	r := route(ns, "orphan", "gpt-4.1-mini", "nope")
	create(t, r)
	eventually(t, "route not resolved", func() error {
		return hasConditions(t, r,
			want{v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, ""},
			want{v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonProviderNotFound, `LLMProvider "nope" not found`},
			want{v1alpha1.ConditionProgrammed, metav1.ConditionFalse, v1alpha1.ReasonProviderNotFound, "Not in the routing table"},
			want{v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonProviderNotFound, "ResolvedRefs:"},
		)
	})
	if st := statusOf(r); st.Replicas != nil {
		t.Errorf("status.replicas = %+v for a route not in the table", st.Replicas)
	}

	// Creating the provider (and its Secret) resolves it.
	create(t, credentialsSecret(ns, "sk-test-0123456789"), provider(ns, "nope"))
	eventually(t, "route ready once the provider exists", func() error { return hasConditions(t, r, allReady...) })
}

func TestVirtualKeySecretAndRotation(t *testing.T) {
	ns := newNamespace(t)
	vk := virtualKey(ns, "rotating")
	create(t, vk)
	eventually(t, "key ready", func() error { return hasConditions(t, vk, allReady...) })
	if vk.Status.SecretName != compiler.KeySecretName("rotating") {
		t.Fatalf("status.secretName = %q, want %q", vk.Status.SecretName, compiler.KeySecretName("rotating"))
	}
	key1 := keyIn(t, ns, vk)
	if vk.Status.KeyPrefix != key1[:keyPrefixShown] {
		t.Errorf("status.keyPrefix = %q, want %q", vk.Status.KeyPrefix, key1[:keyPrefixShown])
	}
	eventually(t, "table holds the key's hash", func() error { return tableHasKey(ns, "rotating", key1) })

	// Deleting the Secret issues a new key; the old one stops working.
	var s corev1.Secret
	if err := k8sClient.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: vk.Status.SecretName}, &s); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Delete(ctx(t), &s); err != nil {
		t.Fatal(err)
	}
	var key2 string
	eventually(t, "new key issued", func() error {
		var s2 corev1.Secret
		if err := k8sClient.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: compiler.KeySecretName("rotating")}, &s2); err != nil {
			return err
		}
		if s2.UID == s.UID {
			return fmt.Errorf("still the old Secret")
		}
		key2 = string(s2.Data[compiler.KeySecretDataKey])
		return nil
	})
	if key2 == key1 || !strings.HasPrefix(key2, KeyPrefix) {
		t.Fatalf("rotated key %q... is not a new tg- key", key2[:keyPrefixShown])
	}
	eventually(t, "table holds the new key's hash", func() error { return tableHasKey(ns, "rotating", key2) })
	eventually(t, "key ready after rotation", func() error {
		if err := hasConditions(t, vk, allReady...); err != nil {
			return err
		}
		if vk.Status.KeyPrefix != key2[:keyPrefixShown] {
			return fmt.Errorf("status.keyPrefix %q, want %q", vk.Status.KeyPrefix, key2[:keyPrefixShown])
		}
		return nil
	})
}

// keyIn reads the key Secret of vk and checks its shape and ownership.
func keyIn(t *testing.T, ns string, vk *v1alpha1.VirtualKey) string {
	t.Helper()
	var s corev1.Secret
	if err := k8sClient.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: vk.Status.SecretName}, &s); err != nil {
		t.Fatal(err)
	}
	key := string(s.Data[compiler.KeySecretDataKey])
	if !strings.HasPrefix(key, KeyPrefix) || len(key) != 46 {
		t.Fatalf("key has %d characters and prefix %q; want tg- and 46", len(key), key[:min(3, len(key))])
	}
	if s.Immutable == nil || !*s.Immutable {
		t.Error("key Secret is not immutable")
	}
	if !metav1.IsControlledBy(&s, vk) {
		t.Errorf("key Secret is not controlled by the VirtualKey: %+v", s.OwnerReferences)
	}
	return key
}

// tableHasKey checks that the latest table carries the SHA-256 of key for
// ns/name, and never the key itself.
func tableHasKey(ns, name, key string) error {
	tbl := fakePub.latest()
	b, err := json.Marshal(tbl)
	if err != nil {
		return err
	}
	if strings.Contains(string(b), key) {
		return fmt.Errorf("table %s contains the secret key in clear", tbl.Version)
	}
	for _, k := range tbl.Keys {
		if k.ID == ns+"/"+name {
			if k.Hash != server.HashKey(key) {
				return fmt.Errorf("table %s: key hash %s, want %s", tbl.Version, k.Hash, server.HashKey(key))
			}
			return nil
		}
	}
	return fmt.Errorf("table %s has no key %s/%s", tbl.Version, ns, name)
}

func TestForeignKeySecretIsNotTrusted(t *testing.T) {
	ns := newNamespace(t)
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: compiler.KeySecretName("squatted")},
		Data:       map[string][]byte{"key": []byte("tg-someone-elses-key-that-is-long-enough-000")},
	})
	vk := virtualKey(ns, "squatted")
	create(t, vk)
	eventually(t, "conflict reported", func() error {
		return hasConditions(t, vk,
			want{v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonConflict, "not owned by this VirtualKey"},
			want{v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonConflict, ""})
	})
	if vk.Status.SecretName != "" {
		t.Errorf("status.secretName = %q for a Secret the key does not own", vk.Status.SecretName)
	}
	// The refused Secret must not look like a Secret that was missed and
	// keep the reconciler spinning.
	n := testReconciler.reconciles.Load()
	time.Sleep(time.Second)
	if d := testReconciler.reconciles.Load() - n; d > 3 {
		t.Errorf("%d reconciles in a second with nothing changing", d)
	}
	for _, k := range fakePub.latest().Keys {
		if k.ID == ns+"/squatted" {
			t.Errorf("the foreign key reached the table %s", fakePub.latest().Version)
		}
	}
}

func TestSecretChangePublishesNewTable(t *testing.T) {
	ns := newNamespace(t)
	sec, p := credentialsSecret(ns, "sk-first-0123456789"), provider(ns, "openai")
	create(t, sec, p)
	eventually(t, "provider ready", func() error { return hasConditions(t, p, allReady...) })
	v1 := fakePub.latest().Version
	if got := providerKey(ns); got != "sk-first-0123456789" {
		t.Fatalf("table api key = %q", got)
	}

	sec.Data["api-key"] = []byte("sk-second-0123456789\n")
	if err := k8sClient.Update(ctx(t), sec); err != nil {
		t.Fatal(err)
	}
	eventually(t, "new table with the new credential", func() error {
		if got := providerKey(ns); got != "sk-second-0123456789" {
			return fmt.Errorf("table %s api key still old", fakePub.latest().Version)
		}
		return nil
	})
	if fakePub.latest().Version == v1 {
		t.Error("the table changed but kept its version")
	}

	// Deleting it makes the provider unresolved and takes it out of the
	// table.
	if err := k8sClient.Delete(ctx(t), sec); err != nil {
		t.Fatal(err)
	}
	eventually(t, "provider unresolved", func() error {
		return hasConditions(t, p, want{v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound, "openai-credentials"})
	})
	if _, ok := fakePub.latest().Provider(ns + "/openai"); ok {
		t.Error("provider without credentials is still in the table")
	}
}

func providerKey(ns string) string {
	p, ok := fakePub.latest().Provider(ns + "/openai")
	if !ok {
		return ""
	}
	return p.APIKey
}

func TestProgrammedFollowsAcknowledgements(t *testing.T) {
	ns := newNamespace(t)
	create(t, credentialsSecret(ns, "sk-test-0123456789"), provider(ns, "openai"))
	fakePub.connect("dp-slow")
	t.Cleanup(func() { fakePub.remove("dp-slow") })

	r := route(ns, "mini", "gpt-4.1-mini", "openai")
	create(t, r)
	eventually(t, "programmed pending", func() error {
		return hasConditions(t, r,
			want{v1alpha1.ConditionProgrammed, metav1.ConditionUnknown, v1alpha1.ReasonPending, "Acknowledged by 1/2 data-plane replicas"},
			want{v1alpha1.ConditionReady, metav1.ConditionUnknown, v1alpha1.ReasonPending, ""})
	})
	fakePub.ack("dp-slow")
	eventually(t, "programmed after the ack", func() error {
		return hasConditions(t, r,
			want{v1alpha1.ConditionProgrammed, metav1.ConditionTrue, v1alpha1.ReasonProgrammed, "Acknowledged by 2/2 data-plane replicas"},
			want{v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady, ""})
	})
	if st := statusOf(r); st.Replicas == nil || st.Replicas.Acknowledged != 2 || st.Replicas.Total != 2 {
		t.Errorf("status.replicas = %+v, want 2/2", st.Replicas)
	}
}

func TestStatusNotRewrittenWhenUnchanged(t *testing.T) {
	ns := newNamespace(t)
	p, r := provider(ns, "openai"), route(ns, "mini", "gpt-4.1-mini", "openai")
	create(t, credentialsSecret(ns, "sk-test-0123456789"), p, r)
	eventually(t, "route ready", func() error { return hasConditions(t, r, allReady...) })
	rv, ltt := r.ResourceVersion, meta.FindStatusCondition(r.Status.Conditions, v1alpha1.ConditionReady).LastTransitionTime

	// Provoke reconciles that change nothing for this route: replica
	// notifications and an unrelated object elsewhere.
	before := fakePub.published()
	for range 3 {
		fakePub.notify()
	}
	other := newNamespace(t)
	vk := virtualKey(other, "unrelated")
	create(t, vk)
	eventually(t, "unrelated key ready", func() error { return hasConditions(t, vk, allReady...) })
	if fakePub.published() == before {
		t.Fatal("no reconcile happened")
	}

	if err := k8sClient.Get(ctx(t), client.ObjectKeyFromObject(r), r); err != nil {
		t.Fatal(err)
	}
	if r.ResourceVersion != rv {
		t.Errorf("route resourceVersion %s -> %s although nothing about it changed", rv, r.ResourceVersion)
	}
	if got := meta.FindStatusCondition(r.Status.Conditions, v1alpha1.ConditionReady).LastTransitionTime; !got.Equal(&ltt) {
		t.Errorf("Ready lastTransitionTime moved from %s to %s", ltt, got)
	}
}

func TestDeletedObjectsLeaveTheTable(t *testing.T) {
	ns := newNamespace(t)
	p, r := provider(ns, "openai"), route(ns, "mini", "gpt-4.1-mini", "openai")
	create(t, credentialsSecret(ns, "sk-test-0123456789"), p, r)
	eventually(t, "route ready", func() error { return hasConditions(t, r, allReady...) })
	if err := k8sClient.Delete(ctx(t), r); err != nil {
		t.Fatal(err)
	}
	eventually(t, "route gone from the table", func() error {
		if _, ok := fakePub.latest().Route(ns + "/mini"); ok {
			return fmt.Errorf("still in table %s", fakePub.latest().Version)
		}
		return nil
	})
	// And the VirtualKey's Secret goes with its key (garbage collection is
	// not running in envtest, so check the owner reference instead).
	vk := virtualKey(ns, "short-lived")
	create(t, vk)
	eventually(t, "key issued", func() error { return hasConditions(t, vk, allReady...) })
	var s corev1.Secret
	if err := k8sClient.Get(ctx(t), client.ObjectKey{Namespace: ns, Name: vk.Status.SecretName}, &s); err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(&s); ref == nil || ref.UID != vk.UID || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("key Secret controller reference = %+v", ref)
	}
	if err := k8sClient.Delete(ctx(t), vk); err != nil {
		t.Fatal(err)
	}
	eventually(t, "key gone from the table", func() error {
		if err := k8sClient.Get(ctx(t), client.ObjectKeyFromObject(vk), vk); !apierrors.IsNotFound(err) {
			return fmt.Errorf("VirtualKey still there: %v", err)
		}
		for _, k := range fakePub.latest().Keys {
			if k.ID == ns+"/short-lived" {
				return fmt.Errorf("still in table %s", fakePub.latest().Version)
			}
		}
		return nil
	})
}

func ptr[T any](v T) *T { return &v }
