package helm

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// scenario is one way to install the chart.
type scenario struct {
	name      string
	release   string
	namespace string
	args      []string // extra helm flags (-f, --set)
	// extraNamespaces must exist for the release to apply (watchNamespace,
	// ServiceMonitor or dashboard namespaces).
	extraNamespaces []string
}

var scenarios = []scenario{
	{name: "default", release: "tollgate", namespace: "tollgate-system"},
	{name: "nondefault", release: "llm", namespace: "platform-llm", args: []string{"-f", filepath.Join("testdata", "values-nondefault.yaml")},
		extraNamespaces: []string{"team-a"}},
	{name: "airgapped", release: "gateway", namespace: "gateway", args: []string{"-f", filepath.Join("testdata", "values-airgapped.yaml")},
		extraNamespaces: []string{"monitoring"}},
	{name: "single-replica-no-leader-election", release: "dev", namespace: "dev", args: []string{
		"--set", "controller.replicas=1", "--set", "controller.leaderElection.enabled=false",
		"--set", "dataplane.autoscaling.enabled=false", "--set", "dataplane.replicas=1",
		"--set", "dataplane.podDisruptionBudget.enabled=false", "--set", "metrics.serviceMonitor.enabled=true"}},
}

// render runs helm template for s (without CRDs: they come from crds/).
func render(t *testing.T, s scenario) []*unstructured.Unstructured {
	t.Helper()
	args := append([]string{"template", s.release, chartDir, "--namespace", s.namespace, "--kube-version", kubeVersion}, s.args...)
	out, err := helm(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, out)
}

// TestLint runs helm lint --strict for every scenario.
func TestLint(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", chartDir, "--namespace", s.namespace, "--kube-version", kubeVersion}, s.args...)
			out, err := helm(t, args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint:\n%s", out)
			}
		})
	}
}

// TestRejectedValues checks that inconsistent values fail rendering with a
// message that says what to change, instead of producing a broken install.
func TestRejectedValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		{"static auth without a Secret", []string{"pushAuth.mode=static"}, "pushAuth.static.existingSecret is required"},
		{"two controllers without leader election", []string{"controller.leaderElection.enabled=false"}, "needs controller.replicas=1"},
		{"unknown auth mode", []string{"pushAuth.mode=mtls"}, "pushAuth/mode"},
		{"unknown value", []string{"dataplane.replica=3"}, "additional properties 'replica' not allowed"},
		{"autoscaler bounds inverted", []string{"dataplane.autoscaling.minReplicas=5", "dataplane.autoscaling.maxReplicas=2"}, "minReplicas must not exceed maxReplicas"},
		{"short projected token", []string{"pushAuth.tokenExpirationSeconds=60"}, "tokenExpirationSeconds"},
		{"malformed extra service account", []string{"pushAuth.extraAllowedServiceAccounts={system:serviceaccount:edge:tollgate}"}, "extraAllowedServiceAccounts"},
		{"provider egress without ports", []string{"networkPolicy.dataplane.providers[0].name=x", "networkPolicy.dataplane.providers[0].ports=null"}, "ports"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", "x", chartDir, "--kube-version", kubeVersion}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			_, err := helm(t, args...)
			if err == nil {
				t.Fatalf("rendering with %v succeeded, want an error mentioning %q", tc.set, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not mention %q:\n%v", tc.want, err)
			}
		})
	}
}

// index finds rendered objects by kind and name.
type index map[string]*unstructured.Unstructured

func indexOf(objs []*unstructured.Unstructured) index {
	ix := index{}
	for _, o := range objs {
		ix[o.GetKind()+"/"+o.GetName()] = o
	}
	return ix
}

func (ix index) get(t *testing.T, kind, name string) *unstructured.Unstructured {
	t.Helper()
	o, ok := ix[kind+"/"+name]
	if !ok {
		var have []string
		for k := range ix {
			have = append(have, k)
		}
		slices.Sort(have)
		t.Fatalf("no %s %s rendered; have %v", kind, name, have)
	}
	return o
}

func (ix index) has(kind, name string) bool { _, ok := ix[kind+"/"+name]; return ok }

func (ix index) ofKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range ix {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func nested[T any](t *testing.T, o map[string]any, path ...string) T {
	t.Helper()
	v, ok, err := unstructured.NestedFieldNoCopy(o, path...)
	if err != nil || !ok {
		t.Fatalf("%s: missing %s", o["kind"], strings.Join(path, "."))
	}
	tv, ok := v.(T)
	if !ok {
		t.Fatalf("%s: %s is %T", o["kind"], strings.Join(path, "."), v)
	}
	return tv
}

func containers(t *testing.T, d *unstructured.Unstructured) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, c := range nested[[]any](t, d.Object, "spec", "template", "spec", "containers") {
		out = append(out, c.(map[string]any))
	}
	return out
}

func stringsOf(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, fmt.Sprint(s))
	}
	return out
}

// checkPodSecurity asserts the hardening every workload must have.
func checkPodSecurity(t *testing.T, d *unstructured.Unstructured) {
	t.Helper()
	pod := nested[map[string]any](t, d.Object, "spec", "template", "spec")
	psc := nested[map[string]any](t, pod, "securityContext")
	if psc["runAsNonRoot"] != true {
		t.Errorf("%s: pod runAsNonRoot is %v", d.GetName(), psc["runAsNonRoot"])
	}
	if nested[string](t, psc, "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("%s: seccompProfile is not RuntimeDefault", d.GetName())
	}
	for _, c := range containers(t, d) {
		sc := nested[map[string]any](t, c, "securityContext")
		if sc["allowPrivilegeEscalation"] != false || sc["readOnlyRootFilesystem"] != true || sc["privileged"] == true {
			t.Errorf("%s/%s: securityContext %v", d.GetName(), c["name"], sc)
		}
		if drop := stringsOf(nested[[]any](t, sc, "capabilities", "drop")); !slices.Equal(drop, []string{"ALL"}) {
			t.Errorf("%s/%s: capabilities.drop %v, want [ALL]", d.GetName(), c["name"], drop)
		}
		req := nested[map[string]any](t, c, "resources", "requests")
		if req["cpu"] == nil || req["memory"] == nil {
			t.Errorf("%s/%s: resource requests %v, want cpu and memory", d.GetName(), c["name"], req)
		}
		for _, probe := range []string{"readinessProbe", "livenessProbe"} {
			if c[probe] == nil {
				t.Errorf("%s/%s: no %s", d.GetName(), c["name"], probe)
			}
		}
	}
}

// flagValue returns the value of --name=value in args.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// TestRenderedManifests checks what each scenario renders.
func TestRenderedManifests(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			objs := render(t, s)
			ix := indexOf(objs)
			full := s.release + "-tollgate"
			if s.release == "tollgate" {
				full = "tollgate"
			}
			if s.name == "nondefault" {
				full = "gw"
			}
			values := func(key string) string { // the scenario's --set or file overrides, coarse
				for i, a := range s.args {
					if a == "--set" && strings.HasPrefix(s.args[i+1], key+"=") {
						return strings.TrimPrefix(s.args[i+1], key+"=")
					}
				}
				return ""
			}
			for _, o := range objs {
				if ns := o.GetNamespace(); ns == "" && isNamespaced(o.GetKind()) {
					t.Errorf("%s %s has no namespace", o.GetKind(), o.GetName())
				}
				if o.GetLabels()["app.kubernetes.io/part-of"] != "tollgate" {
					t.Errorf("%s %s lacks app.kubernetes.io/part-of=tollgate", o.GetKind(), o.GetName())
				}
			}

			ctrl := ix.get(t, "Deployment", full+"-controller")
			dp := ix.get(t, "Deployment", full+"-dataplane")
			checkPodSecurity(t, ctrl)
			checkPodSecurity(t, dp)

			// Controller: leader election, replicas, push channel flags.
			cargs := stringsOf(containers(t, ctrl)[0]["args"])
			if cargs[0] != "controller" {
				t.Errorf("controller args start with %q", cargs[0])
			}
			replicas := nested[int64](t, ctrl.Object, "spec", "replicas")
			le, _ := flagValue(cargs, "leader-elect")
			switch s.name {
			case "single-replica-no-leader-election":
				if replicas != 1 || le != "false" {
					t.Errorf("controller replicas %d leader-elect %s, want 1 false", replicas, le)
				}
			case "nondefault":
				if replicas != 3 || le != "true" {
					t.Errorf("controller replicas %d leader-elect %s, want 3 true", replicas, le)
				}
			default:
				if replicas != 2 || le != "true" {
					t.Errorf("controller replicas %d leader-elect %s, want 2 true", replicas, le)
				}
			}
			if v, _ := flagValue(cargs, "leader-election-namespace"); v != "$(POD_NAMESPACE)" {
				t.Errorf("--leader-election-namespace=%s", v)
			}
			if v, _ := flagValue(cargs, "push-addr"); v != ":8082" {
				t.Errorf("--push-addr=%s", v)
			}
			mode, _ := flagValue(cargs, "push-auth")
			dargs := stringsOf(containers(t, dp)[0]["args"])
			if dargs[0] != "dataplane" {
				t.Errorf("data plane args start with %q", dargs[0])
			}
			if v, _ := flagValue(dargs, "controller"); v != "http://"+full+"-controller.$(POD_NAMESPACE).svc:8082" {
				t.Errorf("data plane --controller=%s", v)
			}
			if v, _ := flagValue(dargs, "token-file"); v != "/var/run/secrets/tollgate/token" {
				t.Errorf("data plane --token-file=%s", v)
			}
			ix.get(t, "Service", full+"-controller")

			// Data plane: no API token; the push token volume matches the mode.
			pod := nested[map[string]any](t, dp.Object, "spec", "template", "spec")
			if pod["automountServiceAccountToken"] != false {
				t.Errorf("data plane automountServiceAccountToken=%v", pod["automountServiceAccountToken"])
			}
			sa := ix.get(t, "ServiceAccount", nested[string](t, pod, "serviceAccountName"))
			if sa.Object["automountServiceAccountToken"] != false {
				t.Errorf("data plane ServiceAccount automountServiceAccountToken=%v", sa.Object["automountServiceAccountToken"])
			}
			var tokenVolume map[string]any
			for _, v := range nested[[]any](t, pod, "volumes") {
				if v.(map[string]any)["name"] == "push-token" {
					tokenVolume = v.(map[string]any)
				}
			}
			switch mode {
			case "tokenreview":
				src := nested[[]any](t, tokenVolume, "projected", "sources")[0].(map[string]any)
				aud := nested[string](t, src, "serviceAccountToken", "audience")
				if want, _ := flagValue(cargs, "push-audience"); aud != want || aud == "" {
					t.Errorf("projected token audience %q, controller --push-audience %q", aud, want)
				}
				allowed, _ := flagValue(cargs, "push-allowed-serviceaccounts")
				if !slices.Contains(strings.Split(allowed, ","), "$(POD_NAMESPACE)/"+sa.GetName()) {
					t.Errorf("--push-allowed-serviceaccounts=%s does not name the data plane", allowed)
				}
				cr := ix.get(t, "ClusterRole", full+"-controller")
				if !grants(cr, "authentication.k8s.io", "tokenreviews", "create") {
					t.Errorf("tokenreview mode without permission to create tokenreviews")
				}
			case "static":
				if nested[string](t, tokenVolume, "secret", "secretName") == "" {
					t.Errorf("static mode without the token Secret volume")
				}
				if _, ok := flagValue(cargs, "push-token-file"); !ok {
					t.Errorf("static mode without --push-token-file")
				}
				for _, cr := range ix.ofKind("ClusterRole") {
					if grants(cr, "authentication.k8s.io", "tokenreviews", "create") {
						t.Errorf("static mode still grants tokenreviews")
					}
				}
			default:
				t.Errorf("--push-auth=%q", mode)
			}
			checkNoAPIAccess(t, ix, sa.GetName())
			checkLeastPrivilege(t, ix)

			// Scaling: the HPA owns replicas when enabled.
			hpa := ix.has("HorizontalPodAutoscaler", full+"-dataplane")
			_, hasReplicas := nested[map[string]any](t, dp.Object, "spec")["replicas"]
			if hpa == hasReplicas {
				t.Errorf("data plane: HPA rendered %v, Deployment replicas set %v; want exactly one", hpa, hasReplicas)
			}
			if s.name == "nondefault" && (hpa || nested[int64](t, dp.Object, "spec", "replicas") != 4) {
				t.Errorf("nondefault: want 4 fixed replicas and no HPA")
			}
			if grace := nested[int64](t, pod, "terminationGracePeriodSeconds"); s.name == "nondefault" && grace != 135 {
				t.Errorf("terminationGracePeriodSeconds %d, want drain 10 + grace 120 + 5", grace)
			}

			// Optional objects follow their switches.
			wantNP := s.name != "nondefault"
			if got := len(ix.ofKind("NetworkPolicy")); (got == 2) != wantNP || (got != 0 && got != 2) {
				t.Errorf("%d NetworkPolicies, want them %v", got, wantNP)
			}
			wantSM := s.name == "nondefault" || values("metrics.serviceMonitor.enabled") == "true"
			if got := len(ix.ofKind("ServiceMonitor")); (got == 1) != wantSM {
				t.Errorf("%d ServiceMonitors, want one: %v", got, wantSM)
			}
			wantDashboard := s.name != "nondefault"
			if ix.has("ConfigMap", full+"-dashboard") != wantDashboard {
				t.Errorf("dashboard ConfigMap rendered: %v, want %v", !wantDashboard, wantDashboard)
			}
			if wantDashboard {
				var dash map[string]any
				cm := ix.get(t, "ConfigMap", full+"-dashboard")
				if err := json.Unmarshal([]byte(nested[string](t, cm.Object, "data", "tollgate.json")), &dash); err != nil {
					t.Errorf("dashboard JSON: %v", err)
				}
			}
			if wantNP {
				checkNetworkPolicies(t, ix, full, s.name)
			}
			if s.name == "nondefault" {
				if img := nested[string](t, containers(t, dp)[0], "image"); !strings.Contains(img, "@sha256:") {
					t.Errorf("image %s not pinned by digest", img)
				}
				if ix.has("ClusterRole", full+"-controller") || !ix.has("Role", full+"-controller") {
					t.Errorf("watchNamespace without tokenreview: want only a Role, no ClusterRole")
				}
				if r := ix.get(t, "Role", full+"-controller"); r.GetNamespace() != "team-a" {
					t.Errorf("controller Role in %s, want team-a", r.GetNamespace())
				}
				if v, _ := flagValue(cargs, "namespace"); v != "team-a" {
					t.Errorf("--namespace=%s", v)
				}
			}
		})
	}
}

func isNamespaced(kind string) bool {
	switch kind {
	case "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Namespace":
		return false
	}
	return true
}

// grants reports whether a Role or ClusterRole allows verb on group/resource.
func grants(role *unstructured.Unstructured, group, resource, verb string) bool {
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	for _, r := range rules {
		m := r.(map[string]any)
		if slices.Contains(stringsOf(m["apiGroups"]), group) && slices.Contains(stringsOf(m["resources"]), resource) && slices.Contains(stringsOf(m["verbs"]), verb) {
			return true
		}
	}
	return false
}

// checkNoAPIAccess: nothing binds a role to the data plane's service account.
func checkNoAPIAccess(t *testing.T, ix index, sa string) {
	t.Helper()
	for _, kind := range []string{"RoleBinding", "ClusterRoleBinding"} {
		for _, b := range ix.ofKind(kind) {
			subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
			for _, s := range subjects {
				if s.(map[string]any)["name"] == sa {
					t.Errorf("%s %s binds the data plane service account %s", kind, b.GetName(), sa)
				}
			}
		}
	}
}

// checkLeastPrivilege: no wildcards, and Secrets are the only core resource
// the controller may change.
func checkLeastPrivilege(t *testing.T, ix index) {
	t.Helper()
	for _, kind := range []string{"Role", "ClusterRole"} {
		for _, r := range ix.ofKind(kind) {
			rules, _, _ := unstructured.NestedSlice(r.Object, "rules")
			for _, rule := range rules {
				m := rule.(map[string]any)
				for _, field := range []string{"apiGroups", "resources", "verbs"} {
					if slices.Contains(stringsOf(m[field]), "*") {
						t.Errorf("%s %s: wildcard in %s", kind, r.GetName(), field)
					}
				}
				if _, ok := m["nonResourceURLs"]; ok {
					t.Errorf("%s %s grants nonResourceURLs", kind, r.GetName())
				}
				if slices.Contains(stringsOf(m["apiGroups"]), "") {
					for _, res := range stringsOf(m["resources"]) {
						if res != "secrets" && res != "events" {
							t.Errorf("%s %s grants core resource %s", kind, r.GetName(), res)
						}
					}
				}
			}
		}
	}
}

// checkNetworkPolicies: both workloads are isolated for ingress and egress,
// and the data plane may reach the controller's push port.
func checkNetworkPolicies(t *testing.T, ix index, full, scenario string) {
	t.Helper()
	for _, name := range []string{full + "-controller", full + "-dataplane"} {
		np := ix.get(t, "NetworkPolicy", name)
		types := stringsOf(nested[[]any](t, np.Object, "spec", "policyTypes"))
		if !slices.Contains(types, "Ingress") || !slices.Contains(types, "Egress") {
			t.Errorf("NetworkPolicy %s policyTypes %v", name, types)
		}
		for _, rule := range nested[[]any](t, np.Object, "spec", "egress") {
			m := rule.(map[string]any)
			if m["ports"] == nil {
				t.Errorf("NetworkPolicy %s: egress rule without ports allows everything: %v", name, m)
			}
		}
	}
	data, _ := json.Marshal(ix.get(t, "NetworkPolicy", full+"-dataplane").Object["spec"])
	if !strings.Contains(string(data), `"port":8082`) {
		t.Errorf("data plane NetworkPolicy does not allow the push port: %s", data)
	}
	if scenario == "airgapped" {
		if strings.Contains(string(data), "0.0.0.0/0") {
			t.Errorf("air-gapped data plane may reach 0.0.0.0/0: %s", data)
		}
		if !strings.Contains(string(data), `"except":["10.20.255.0/24"]`) {
			t.Errorf("provider except list lost: %s", data)
		}
		ctrl, _ := json.Marshal(ix.get(t, "NetworkPolicy", full+"-controller").Object["spec"])
		if !strings.Contains(string(ctrl), `"cidr":"10.0.0.10/32"`) || !strings.Contains(string(ctrl), "edge-gateway") {
			t.Errorf("controller NetworkPolicy lacks the API server CIDRs or the extra data plane namespace: %s", ctrl)
		}
	}
}
