package helm

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

const fieldManager = "tollgate-packaging-test"

// testContext bounds the API calls of one test.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// resourceFor maps an object to its API resource client.
func resourceFor(t *testing.T, o *unstructured.Unstructured) dynamic.ResourceInterface {
	t.Helper()
	gvk := o.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		mapper.Reset()
		m, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		t.Fatalf("%s %s: no API resource: %v", gvk, o.GetName(), err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return dyn.Resource(m.Resource).Namespace(o.GetNamespace())
	}
	return dyn.Resource(m.Resource)
}

// apply server-side-applies o; dryRun keeps it out of etcd.
func apply(ctx context.Context, t *testing.T, o *unstructured.Unstructured, dryRun bool) error {
	t.Helper()
	opts := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err := resourceFor(t, o).Apply(ctx, o.GetName(), o, opts)
	return err
}

// ensureNamespace creates a namespace that enforces the "restricted" Pod
// Security Standard, as docs/install.md recommends for Tollgate.
func ensureNamespace(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	ns := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": name, "labels": map[string]any{
			"pod-security.kubernetes.io/enforce":         "restricted",
			"pod-security.kubernetes.io/enforce-version": "latest",
		}},
	}}
	if err := apply(ctx, t, ns, false); err != nil {
		t.Fatalf("namespace %s: %v", name, err)
	}
}

// applyAll dry-runs every object against the API server (namespaces and
// ServiceAccounts are created for real: later dry runs depend on them).
func applyAll(t *testing.T, objs []*unstructured.Unstructured, namespaces ...string) {
	t.Helper()
	ctx := testContext(t)
	for _, ns := range namespaces {
		ensureNamespace(ctx, t, ns)
	}
	for _, o := range objs {
		if o.GetKind() == "ServiceAccount" {
			if err := apply(ctx, t, o, false); err != nil {
				t.Errorf("ServiceAccount %s/%s: %v", o.GetNamespace(), o.GetName(), err)
			}
		}
	}
	for _, o := range objs {
		if err := apply(ctx, t, o, true); err != nil {
			t.Errorf("server-side dry run of %s %s/%s rejected: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	// The Deployments' pods must pass Pod Security admission "restricted":
	// admit each pod template as a Pod in a namespace that enforces it.
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		if err := dryRunPod(ctx, t, o); err != nil {
			t.Errorf("pod of Deployment %s/%s rejected by admission: %v", o.GetNamespace(), o.GetName(), err)
		}
	}
}

// dryRunPod admits d's pod template as a Pod (dry run).
func dryRunPod(ctx context.Context, t *testing.T, d *unstructured.Unstructured) error {
	t.Helper()
	tmpl, _, _ := unstructured.NestedMap(d.Object, "spec", "template")
	labels, _, _ := unstructured.NestedStringMap(tmpl, "metadata", "labels")
	spec, _, _ := unstructured.NestedMap(tmpl, "spec")
	pod := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": d.GetName() + "-pod", "namespace": d.GetNamespace()},
		"spec":     spec,
	}}
	pod.SetLabels(labels)
	_, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Namespace(d.GetNamespace()).
		Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: fieldManager})
	return err
}

// TestServerSideDryRun applies each scenario's rendered manifests to the
// real API server in dry-run mode.
func TestServerSideDryRun(t *testing.T) {
	needCluster(t)
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			objs := render(t, s)
			applyAll(t, objs, append([]string{s.namespace}, s.extraNamespaces...)...)
		})
	}
}

// TestPodSecurityAdmissionIsEnforced proves the pod checks above are not
// vacuous: the same namespace setup rejects a privileged pod.
func TestPodSecurityAdmissionIsEnforced(t *testing.T) {
	needCluster(t)
	ctx := testContext(t)
	ensureNamespace(ctx, t, "psa-probe")
	d := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "root", "namespace": "psa-probe"},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"automountServiceAccountToken": false,
			"containers":                   []any{map[string]any{"name": "c", "image": "busybox", "securityContext": map[string]any{"privileged": true}}},
		}}},
	}}
	sa := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": "default", "namespace": "psa-probe"}}}
	if err := apply(ctx, t, sa, false); err != nil {
		t.Fatal(err)
	}
	err := dryRunPod(ctx, t, d)
	if err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "restricted") {
		t.Fatalf("privileged pod: got %v, want a Pod Security \"restricted\" rejection", err)
	}
	t.Logf("privileged pod rejected as expected: %v", err)
}
