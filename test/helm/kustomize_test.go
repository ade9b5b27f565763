package helm

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

var configDir = filepath.Join(repoRoot, "config")

// generatedRole is written by `make manifests` from the controllers'
// +kubebuilder:rbac markers.
var generatedRole = filepath.Join(configDir, "rbac", "role.yaml")

// defaultRelease renders the chart the way config/default mirrors it.
func defaultRelease(t *testing.T) index {
	t.Helper()
	return indexOf(render(t, scenarios[0]))
}

// configFS returns a filesystem holding config/ and the path of
// config/default in it. Until `make manifests` has generated
// config/rbac/role.yaml (the controllers carry the RBAC markers), it uses an
// in-memory copy of config/ with the chart's ClusterRole standing in, so the
// kustomizations are still checked.
func configFS(t *testing.T) (filesys.FileSystem, string) {
	t.Helper()
	if _, err := os.Stat(generatedRole); err == nil {
		abs, err := filepath.Abs(filepath.Join(configDir, "default"))
		if err != nil {
			t.Fatal(err)
		}
		return filesys.MakeFsOnDisk(), abs
	}
	t.Logf("%s is not generated yet (make manifests); building config/default with the chart's ClusterRole in its place", generatedRole)
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(configDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(configDir, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return mem.WriteFile(filepath.Join("/config", rel), data)
	})
	if err != nil {
		t.Fatal(err)
	}
	role := defaultRelease(t).get(t, "ClusterRole", "tollgate-controller").DeepCopy()
	role.SetLabels(nil)
	data, err := yaml.Marshal(role.Object)
	if err != nil {
		t.Fatal(err)
	}
	if err := mem.WriteFile("/config/rbac/role.yaml", data); err != nil {
		t.Fatal(err)
	}
	return mem, "/config/default"
}

// kustomizeBuild renders config/default as `kubectl apply -k` would.
func kustomizeBuild(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	fsys, dir := configFS(t)
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, dir)
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	var objs []*unstructured.Unstructured
	for _, r := range resources.Resources() {
		m, err := r.Map()
		if err != nil {
			t.Fatalf("kustomize build config/default: %s: %v", r.CurId(), err)
		}
		// Through JSON: kustomize yields int where the API machinery
		// expects int64.
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			t.Fatalf("kustomize build config/default: %s: %v", r.CurId(), err)
		}
		objs = append(objs, u)
	}
	return objs
}

// toolLabels differ between a Helm release and a kustomize build by design.
var toolLabels = []string{"helm.sh/chart", "app.kubernetes.io/version", "app.kubernetes.io/managed-by"}

// withoutToolLabels deletes toolLabels from every "labels" map in v.
func withoutToolLabels(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, item := range v {
			if k == "labels" {
				if labels, ok := item.(map[string]any); ok {
					kept := map[string]any{}
					for lk, lv := range labels {
						if !slices.Contains(toolLabels, lk) {
							kept[lk] = lv
						}
					}
					out[k] = kept
					continue
				}
			}
			out[k] = withoutToolLabels(item)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			out[i] = withoutToolLabels(item)
		}
		return out
	}
	return v
}

// jsonValue normalises v through JSON, so numbers compare equal whatever Go
// type the decoder picked.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKustomizeMatchesChart builds config/default and compares its
// workloads, Services, autoscaler, disruption budgets and NetworkPolicies
// with the chart's default rendering, field by field.
func TestKustomizeMatchesChart(t *testing.T) {
	built := indexOf(kustomizeBuild(t))
	chart := defaultRelease(t)
	for _, kind := range []string{"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"} {
		var fromChart, fromKustomize []string
		for _, o := range chart.ofKind(kind) {
			fromChart = append(fromChart, o.GetName())
		}
		for _, o := range built.ofKind(kind) {
			fromKustomize = append(fromKustomize, o.GetName())
		}
		slices.Sort(fromChart)
		slices.Sort(fromKustomize)
		if !slices.Equal(fromChart, fromKustomize) {
			t.Errorf("%s: chart renders %v, config/default builds %v", kind, fromChart, fromKustomize)
			continue
		}
		for _, name := range fromChart {
			want := withoutToolLabels(jsonValue(t, chart.get(t, kind, name).Object))
			got := withoutToolLabels(jsonValue(t, built.get(t, kind, name).Object))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s %s: config/ differs from the chart (-chart +kustomize):\n%s", kind, name, diff)
			}
		}
	}
	for _, name := range []string{"tollgate-controller", "tollgate-dataplane"} {
		automount := func(o *unstructured.Unstructured) bool { // unset means true
			v, ok := o.Object["automountServiceAccountToken"].(bool)
			return !ok || v
		}
		c, k := chart.get(t, "ServiceAccount", name), built.get(t, "ServiceAccount", name)
		if automount(c) != automount(k) {
			t.Errorf("ServiceAccount %s: automountServiceAccountToken chart %v, config %v", name, automount(c), automount(k))
		}
	}
	checkNoAPIAccess(t, built, "tollgate-dataplane")
	ns := built.get(t, "Namespace", "tollgate-system")
	if ns.GetLabels()["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace tollgate-system does not enforce the restricted Pod Security Standard")
	}
	if got := len(built.ofKind("CustomResourceDefinition")); got != 4 {
		t.Errorf("config/default installs %d CRDs, want 4", got)
	}
}

// TestKustomizeServerSideDryRun applies the config/default build to the
// real API server in dry-run mode (its namespace for real).
func TestKustomizeServerSideDryRun(t *testing.T) {
	needCluster(t)
	objs := kustomizeBuild(t)
	ctx := testContext(t)
	var rest []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			if err := apply(ctx, t, o, false); err != nil {
				t.Fatalf("namespace %s: %v", o.GetName(), err)
			}
			continue
		}
		rest = append(rest, o)
	}
	applyAll(t, rest)
}

// ruleSet expands RBAC rules into "group/resource:verb" entries.
func ruleSet(t *testing.T, roles ...*unstructured.Unstructured) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	for _, r := range roles {
		rules, _, _ := unstructured.NestedSlice(r.Object, "rules")
		for _, rule := range rules {
			m := rule.(map[string]any)
			groups := []string{""}
			if m["apiGroups"] != nil {
				groups = stringsOf(m["apiGroups"])
			}
			for _, g := range groups {
				for _, res := range stringsOf(m["resources"]) {
					for _, verb := range stringsOf(m["verbs"]) {
						set[g+"/"+res+":"+verb] = true
					}
				}
			}
		}
	}
	return set
}

// readObject reads a single-object YAML file.
func readObject(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, string(data))
	if len(objs) != 1 {
		t.Fatalf("%s: %d objects, want 1", path, len(objs))
	}
	return objs[0]
}

// TestChartRBACMatchesGeneratedRole: the chart's hand-written RBAC grants
// exactly what the controllers' +kubebuilder:rbac markers ask for (the
// generated config/rbac/role.yaml): a permission added in code cannot be
// forgotten in the chart, and the chart grants nothing the code does not
// use. The leader-election Role equals config/rbac's.
func TestChartRBACMatchesGeneratedRole(t *testing.T) {
	chart := defaultRelease(t)
	leChart := ruleSet(t, chart.get(t, "Role", "tollgate-controller-leader-election"))
	leConfig := ruleSet(t, readObject(t, filepath.Join(configDir, "rbac", "leader_election_role.yaml")))
	if diff := cmp.Diff(leConfig, leChart); diff != "" {
		t.Errorf("leader-election Role: config/rbac differs from the chart (-config +chart):\n%s", diff)
	}
	if _, err := os.Stat(generatedRole); err != nil {
		t.Skipf("%s is not generated yet: run `make manifests` once the controllers carry their +kubebuilder:rbac markers", generatedRole)
	}
	data, err := os.ReadFile(generatedRole)
	if err != nil {
		t.Fatal(err)
	}
	want := ruleSet(t, decode(t, string(data))...)
	// The default install uses tokenreview auth, which is what the markers
	// assume; static auth drops the tokenreviews rule.
	have := ruleSet(t, chart.get(t, "ClusterRole", "tollgate-controller"))
	var missing, extra []string
	for k := range want {
		if !have[k] {
			missing = append(missing, k)
		}
	}
	for k := range have {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing) > 0 {
		t.Errorf("the controllers' RBAC markers ask for permissions the chart does not grant (add them to charts/tollgate/templates/controller-rbac.yaml):\n  %s", strings.Join(missing, "\n  "))
	}
	if len(extra) > 0 {
		t.Errorf("the chart grants permissions the controllers' RBAC markers do not ask for (remove them from charts/tollgate/templates/controller-rbac.yaml, or add the marker):\n  %s", strings.Join(extra, "\n  "))
	}
	// With static auth the chart drops exactly the tokenreviews rule.
	static := indexOf(render(t, scenario{name: "static", release: "tollgate", namespace: "tollgate-system",
		args: []string{"--set", "pushAuth.mode=static", "--set", "pushAuth.static.existingSecret=push"}}))
	staticRules := ruleSet(t, static.get(t, "ClusterRole", "tollgate-controller"))
	for k := range want {
		if !staticRules[k] && k != "authentication.k8s.io/tokenreviews:create" {
			t.Errorf("static auth drops %s", k)
		}
	}
	if staticRules["authentication.k8s.io/tokenreviews:create"] {
		t.Errorf("static auth still grants tokenreviews")
	}
}

// TestChartCRDsMatchGenerated: charts/tollgate/crds is an exact copy of
// config/crd/bases (`make manifests` copies it).
func TestChartCRDsMatchGenerated(t *testing.T) {
	gen, err := filepath.Glob(filepath.Join(configDir, "crd", "bases", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	copies, err := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	base := func(ps []string) []string {
		var out []string
		for _, p := range ps {
			out = append(out, filepath.Base(p))
		}
		return out
	}
	if !slices.Equal(base(gen), base(copies)) {
		t.Fatalf("CRD files differ: config/crd/bases %v, chart %v (run make manifests)", base(gen), base(copies))
	}
	for _, p := range gen {
		a, _ := os.ReadFile(p)
		b, _ := os.ReadFile(filepath.Join(chartDir, "crds", filepath.Base(p)))
		if !bytes.Equal(a, b) {
			t.Errorf("charts/tollgate/crds/%s is stale: run make manifests", filepath.Base(p))
		}
	}
}
