package apivalidation

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"

	gatewayv1alpha1 "tollgate.dev/tollgate/api/v1alpha1"
)

var samplesDir = filepath.Join(repoRoot, "config", "samples")

// TestSamplesKustomizationListsEveryFile keeps config/samples/kustomization.yaml
// in step with the directory: a sample that is not listed is never applied
// (nor tested), a listed file that is gone breaks `kubectl apply -k`.
func TestSamplesKustomizationListsEveryFile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(samplesDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kusttypes.Kustomization
	if err := yaml.UnmarshalStrict(raw, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	listed := slices.Clone(k.Resources)
	sort.Strings(listed)

	entries, err := os.ReadDir(samplesDir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".yaml") && e.Name() != "kustomization.yaml" {
			files = append(files, e.Name())
		}
	}
	if diff := cmp.Diff(files, listed); diff != "" {
		t.Errorf("config/samples files (-) vs kustomization resources (+):\n%s", diff)
	}
}

// TestSamplesAccepted creates every sample, Secrets included, in a fresh
// namespace of a real API server with strict field validation, so a typo in a
// field name fails instead of being pruned silently.
func TestSamplesAccepted(t *testing.T) {
	ns := newNamespace(t, "samples")
	ctx := testContext(t)
	objs := kustomizeBuild(t, samplesDir)
	if len(objs) == 0 {
		t.Fatal("config/samples renders no objects")
	}
	for _, obj := range objs {
		obj.SetNamespace(ns)
		if err := k8sClient.Create(ctx, obj, client.FieldValidation("Strict")); err != nil {
			t.Errorf("%s %s rejected: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
	if t.Failed() {
		return
	}
	s := listSamples(t, ns)
	t.Run("coverage", func(t *testing.T) { checkSampleCoverage(t, s) })
	t.Run("references", func(t *testing.T) { checkSampleReferences(t, s) })
	t.Run("defaults", func(t *testing.T) { checkSampleDefaults(t, s) })
}

// sampleSet is the samples as stored by the API server (defaults applied).
type sampleSet struct {
	providers gatewayv1alpha1.LLMProviderList
	routes    gatewayv1alpha1.RouteList
	keys      gatewayv1alpha1.VirtualKeyList
	tools     gatewayv1alpha1.MCPToolList
	secrets   corev1.SecretList
}

func listSamples(t *testing.T, ns string) *sampleSet {
	t.Helper()
	ctx := testContext(t)
	s := &sampleSet{}
	for _, l := range []client.ObjectList{&s.providers, &s.routes, &s.keys, &s.tools, &s.secrets} {
		if err := k8sClient.List(ctx, l, client.InNamespace(ns)); err != nil {
			t.Fatalf("list %T: %v", l, err)
		}
	}
	return s
}

// checkSampleCoverage asserts the samples show every feature users look for
// first: each provider type, each routing style, budgets and MCP access.
func checkSampleCoverage(t *testing.T, s *sampleSet) {
	types := map[gatewayv1alpha1.ProviderType]bool{}
	localities := map[gatewayv1alpha1.Locality]bool{}
	for _, p := range s.providers.Items {
		types[p.Spec.Type] = true
		localities[p.Spec.Locality] = true
		if len(p.Spec.Models) == 0 {
			t.Errorf("provider %s declares no models with prices", p.Name)
		}
		for _, m := range p.Spec.Models {
			if m.InputPrice == "" {
				t.Errorf("provider %s model %s has no inputPrice", p.Name, m.Name)
			}
		}
	}
	for _, want := range []gatewayv1alpha1.ProviderType{
		gatewayv1alpha1.ProviderOpenAI, gatewayv1alpha1.ProviderAzureOpenAI, gatewayv1alpha1.ProviderAnthropic,
		gatewayv1alpha1.ProviderGemini, gatewayv1alpha1.ProviderBedrock, gatewayv1alpha1.ProviderOllama,
		gatewayv1alpha1.ProviderOpenAICompatible,
	} {
		if !types[want] {
			t.Errorf("no LLMProvider sample of type %s", want)
		}
	}
	if !localities[gatewayv1alpha1.LocalityInCluster] || !localities[gatewayv1alpha1.LocalityExternal] {
		t.Errorf("samples should show InCluster and External providers, have %v", localities)
	}

	var simple, fallback, intent, sovereign bool
	for _, r := range s.routes.Items {
		switch {
		case r.Spec.DataPolicy != nil && r.Spec.DataPolicy.Action == gatewayv1alpha1.DataSovereignOnly:
			sovereign = true
		case len(r.Spec.Rules) > 0:
			intent = true
		case len(r.Spec.Fallbacks) > 0:
			fallback = true
		case len(r.Spec.Targets) == 1:
			simple = true
		}
	}
	if !simple || !fallback || !intent || !sovereign {
		t.Errorf("route samples: simple=%v fallback=%v intent=%v sovereign=%v, want all", simple, fallback, intent, sovereign)
	}

	var teamBudget, rateLimit bool
	for _, k := range s.keys.Items {
		teamBudget = teamBudget || k.Spec.TeamBudget != nil
		rateLimit = rateLimit || k.Spec.RateLimit != nil
	}
	if !teamBudget || !rateLimit {
		t.Errorf("virtual key samples: teamBudget=%v rateLimit=%v, want both", teamBudget, rateLimit)
	}

	var auth, globs, byKey, bySelector bool
	for _, m := range s.tools.Items {
		auth = auth || m.Spec.Auth != nil
		globs = globs || (m.Spec.Tools != nil && len(m.Spec.Tools.Allow) > 0 && len(m.Spec.Tools.Deny) > 0)
		byKey = byKey || len(m.Spec.Access.Keys) > 0
		bySelector = bySelector || m.Spec.Access.KeySelector != nil
	}
	if !auth || !globs || !byKey || !bySelector {
		t.Errorf("MCPTool samples: auth=%v allow+deny=%v keys=%v keySelector=%v, want all", auth, globs, byKey, bySelector)
	}
}

// checkSampleReferences asserts the samples form a consistent set: what the
// controller would report as ResolvedRefs=False is a broken sample.
func checkSampleReferences(t *testing.T, s *sampleSet) {
	secretKeys := map[string]map[string]bool{}
	for _, sec := range s.secrets.Items {
		secretKeys[sec.Name] = map[string]bool{}
		for k, v := range sec.Data {
			secretKeys[sec.Name][k] = true
			if !strings.HasPrefix(string(v), "REPLACE_ME") {
				t.Errorf("secret %s key %s: sample credentials must be placeholders starting with REPLACE_ME", sec.Name, k)
			}
		}
	}
	checkSecret := func(owner string, sel *gatewayv1alpha1.SecretKeySelector) {
		if sel != nil && !secretKeys[sel.Name][sel.Key] {
			t.Errorf("%s references secret %s key %s, which no sample provides", owner, sel.Name, sel.Key)
		}
	}

	models := map[string]map[string]bool{}
	for _, p := range s.providers.Items {
		models[p.Name] = map[string]bool{}
		for _, m := range p.Spec.Models {
			models[p.Name][m.Name] = true
		}
		if c := p.Spec.Credentials; c != nil {
			owner := "LLMProvider " + p.Name
			checkSecret(owner, c.APIKey)
			checkSecret(owner, c.AWSAccessKeyID)
			checkSecret(owner, c.AWSSecretAccessKey)
			checkSecret(owner, c.AWSSessionToken)
		}
	}
	checkTargets := func(owner string, targets []gatewayv1alpha1.RouteTarget) {
		for _, tg := range targets {
			if !models[tg.Provider][tg.Model] {
				t.Errorf("%s targets %s/%s, which no provider sample declares", owner, tg.Provider, tg.Model)
			}
		}
	}
	routes := map[string]bool{}
	for _, r := range s.routes.Items {
		routes[r.Name] = true
		checkTargets("Route "+r.Name, r.Spec.Targets)
		checkTargets("Route "+r.Name+" fallbacks", r.Spec.Fallbacks)
		for _, rule := range r.Spec.Rules {
			checkTargets("Route "+r.Name+" rule "+rule.Name, rule.Targets)
		}
	}
	keys := map[string]bool{}
	for _, k := range s.keys.Items {
		keys[k.Name] = true
		for _, r := range k.Spec.AllowedRoutes {
			if !routes[r] {
				t.Errorf("VirtualKey %s allows route %s, which no sample defines", k.Name, r)
			}
		}
	}
	for _, m := range s.tools.Items {
		if m.Spec.Auth != nil {
			checkSecret("MCPTool "+m.Name, &m.Spec.Auth.SecretRef)
		}
		for _, k := range m.Spec.Access.Keys {
			if !keys[k] {
				t.Errorf("MCPTool %s grants key %s, which no sample defines", m.Name, k)
			}
		}
	}
}

// checkSampleDefaults asserts the API server applied the CRD defaults the
// controllers rely on, for fields the samples leave out.
func checkSampleDefaults(t *testing.T, s *sampleSet) {
	ctx := testContext(t)
	ns := s.routes.Items[0].Namespace

	var route gatewayv1alpha1.Route
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "gpt-4.1-mini"}, &route); err != nil {
		t.Fatal(err)
	}
	if route.Spec.Balancing != gatewayv1alpha1.BalancingLeastLatency {
		t.Errorf("route balancing default = %q, want LeastLatency", route.Spec.Balancing)
	}
	if w := route.Spec.Targets[0].Weight; w == nil || *w != 1 {
		t.Errorf("route target weight default = %v, want 1", w)
	}

	var provider gatewayv1alpha1.LLMProvider
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "gemini"}, &provider); err != nil {
		t.Fatal(err)
	}
	if provider.Spec.Endpoint != "" {
		t.Errorf("gemini endpoint = %q, want empty (the compiler fills in the per-type default)", provider.Spec.Endpoint)
	}

	var tool gatewayv1alpha1.MCPTool
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "internal-docs"}, &tool); err != nil {
		t.Fatal(err)
	}
	if tool.Spec.Transport != gatewayv1alpha1.MCPStreamableHTTP {
		t.Errorf("MCPTool transport default = %q, want StreamableHTTP", tool.Spec.Transport)
	}
}
