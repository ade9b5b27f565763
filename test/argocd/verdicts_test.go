package argocd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/controllers"
	"tollgate.dev/tollgate/controllers/compiler"
)

// loadSamples parses every object in config/samples (the same files
// test/apivalidation creates on a real API server).
func loadSamples(t *testing.T) compiler.Input {
	t.Helper()
	dir := filepath.Join(repoRoot, "config", "samples")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	in, err := compiler.ParseManifests("config/samples", []byte(strings.Join(docs, "\n---\n")))
	if err != nil {
		t.Fatalf("parse samples: %v", err)
	}
	return in
}

// objectFor returns the sample object of a verdict with the given status.
func objectFor(t *testing.T, in compiler.Input, v compiler.Verdict, cs []metav1.Condition) any {
	t.Helper()
	st := v1alpha1.CommonStatus{ObservedGeneration: v.Generation, Conditions: cs}
	for i := range in.Providers {
		if o := &in.Providers[i]; v.Kind == compiler.KindLLMProvider && o.Namespace == v.Namespace && o.Name == v.Name {
			o.Kind, o.APIVersion, o.Generation, o.Status.CommonStatus = "LLMProvider", v1alpha1.GroupVersion.String(), v.Generation, st
			return o
		}
	}
	for i := range in.Routes {
		if o := &in.Routes[i]; v.Kind == compiler.KindRoute && o.Namespace == v.Namespace && o.Name == v.Name {
			o.Kind, o.APIVersion, o.Generation, o.Status.CommonStatus = "Route", v1alpha1.GroupVersion.String(), v.Generation, st
			return o
		}
	}
	for i := range in.VirtualKeys {
		if o := &in.VirtualKeys[i]; v.Kind == compiler.KindVirtualKey && o.Namespace == v.Namespace && o.Name == v.Name {
			o.Kind, o.APIVersion, o.Generation, o.Status.CommonStatus = "VirtualKey", v1alpha1.GroupVersion.String(), v.Generation, st
			return o
		}
	}
	for i := range in.MCPTools {
		if o := &in.MCPTools[i]; v.Kind == compiler.KindMCPTool && o.Namespace == v.Namespace && o.Name == v.Name {
			o.Kind, o.APIVersion, o.Generation, o.Status.CommonStatus = "MCPTool", v1alpha1.GroupVersion.String(), v.Generation, st
			return o
		}
	}
	t.Fatalf("no sample object for verdict %s", v.Ref)
	return nil
}

// TestHealthOfCompilerVerdicts compiles config/samples with and without
// their Secrets and checks that Argo CD would show exactly the compiler's
// judgement: Degraded with the compiler's own message for every rejected or
// unresolved object, Progressing while programming, Healthy once programmed.
func TestHealthOfCompilerVerdicts(t *testing.T) {
	script := readScript(t)
	for _, scenario := range []struct {
		name        string
		dropSecrets bool
	}{{"with secrets", false}, {"without secrets", true}} {
		t.Run(scenario.name, func(t *testing.T) {
			in := loadSamples(t)
			if scenario.dropSecrets {
				in.Secrets = map[string]map[string][]byte{}
			}
			out := compiler.Compile(in)
			if out.Err != nil {
				t.Fatalf("compile samples: %v", out.Err)
			}
			var degraded int
			for _, v := range out.Verdicts {
				if v.Generation == 0 {
					v.Generation = 1
				}
				for _, replicas := range []struct {
					acked, total int
					rejected     string
				}{{0, 0, ""}, {1, 3, ""}, {2, 3, "tollgate-dataplane-7d9f (unknown provider type)"}, {3, 3, ""}} {
					programmed := replicas.total > 0 && replicas.acked == replicas.total
					cs := controllers.ConditionsFor(v, replicas.acked, replicas.total, replicas.rejected)
					got := runHealth(t, script, objectFor(t, in, v, cs))
					switch {
					case v.Accepted.Status == metav1.ConditionFalse:
						degraded++
						if got.Status != "Degraded" || !strings.Contains(got.Message, v.Accepted.Message) {
							t.Errorf("%s: got %s %q, want Degraded with %q", v.Ref, got.Status, got.Message, v.Accepted.Message)
						}
					case v.ResolvedRefs.Status == metav1.ConditionFalse:
						degraded++
						if got.Status != "Degraded" || !strings.Contains(got.Message, v.ResolvedRefs.Message) {
							t.Errorf("%s: got %s %q, want Degraded with %q", v.Ref, got.Status, got.Message, v.ResolvedRefs.Message)
						}
					case v.InTable && replicas.rejected != "":
						if got.Status != "Degraded" || !strings.Contains(got.Message, replicas.rejected) {
							t.Errorf("%s: got %s %q, want Degraded naming the rejecting replica", v.Ref, got.Status, got.Message)
						}
					case !v.InTable || !programmed:
						if got.Status != "Progressing" {
							t.Errorf("%s: got %s %q, want Progressing", v.Ref, got.Status, got.Message)
						}
					default:
						want := "Healthy"
						if v.Kind == compiler.KindVirtualKey && objectFor(t, in, v, cs).(*v1alpha1.VirtualKey).Spec.Disabled {
							want = "Suspended"
						}
						if got.Status != want {
							t.Errorf("%s: got %s %q, want %s", v.Ref, got.Status, got.Message, want)
						}
					}
				}
			}
			if scenario.dropSecrets && degraded == 0 {
				t.Errorf("no sample was judged unresolved without its Secrets; the scenario tests nothing")
			}
			t.Logf("%d verdicts, %d degraded evaluations", len(out.Verdicts), degraded)
		})
	}
}
