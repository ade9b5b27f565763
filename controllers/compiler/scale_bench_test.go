package compiler

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// scaleManifests is a realistic large installation: 20 providers, 1,000
// routes (each with two weighted targets and a fallback) and 10,000
// VirtualKeys, each with its key Secret, in 10 namespaces.
func scaleManifests(routes, keys int) string {
	var b strings.Builder
	const namespaces = 10
	for ns := 0; ns < namespaces; ns++ {
		for p := 0; p < 2; p++ {
			fmt.Fprintf(&b, `---
apiVersion: gateway.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {name: p%d, namespace: ns%d}
spec:
  type: OpenAICompatible
  endpoint: http://vllm-%d.inference.svc:8000
  locality: InCluster
  models:
  - {name: m0, inputPrice: "0.10", outputPrice: "0.40"}
  - {name: m1, inputPrice: "1.10", outputPrice: "4.40"}
`, p, ns, p)
		}
	}
	for r := 0; r < routes; r++ {
		fmt.Fprintf(&b, `---
apiVersion: gateway.tollgate.dev/v1alpha1
kind: Route
metadata: {name: r%d, namespace: ns%d}
spec:
  model: model-%d
  targets:
  - {provider: p0, model: m0, weight: 3}
  - {provider: p1, model: m0, weight: 1}
  fallbacks:
  - {provider: p1, model: m1}
`, r, r%namespaces, r)
	}
	for k := 0; k < keys; k++ {
		fmt.Fprintf(&b, `---
apiVersion: gateway.tollgate.dev/v1alpha1
kind: VirtualKey
metadata: {name: k%d, namespace: ns%d}
spec:
  team: team-%d
  budget: {amount: "100.00", currency: USD, period: Monthly}
---
apiVersion: v1
kind: Secret
metadata: {name: k%d-key, namespace: ns%d}
stringData: {key: tg-scale-test-key-%032d}
`, k, k%namespaces, k%50, k, k%namespaces, k)
	}
	return b.String()
}

// BenchmarkCompileScale measures one compilation of 1,000 routes and
// 10,000 keys, and reports the serialized table size.
func BenchmarkCompileScale(b *testing.B) {
	in, err := ParseManifests("scale", []byte(scaleManifests(1000, 10000)))
	if err != nil {
		b.Fatal(err)
	}
	var out Output
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out = Compile(in)
	}
	b.StopTimer()
	if out.Err != nil || out.Table == nil {
		b.Fatalf("compile: %v", out.Err)
	}
	if len(out.Table.Routes) != 1000 || len(out.Table.Keys) != 10000 {
		b.Fatalf("table has %d routes and %d keys, want 1000 and 10000", len(out.Table.Routes), len(out.Table.Keys))
	}
	raw, err := json.Marshal(out.Table)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(raw))/(1<<20), "table-MiB")
}

// TestCompileScale keeps the scale fixture honest in plain `go test`: a
// smaller installation compiles with every object accepted.
func TestCompileScale(t *testing.T) {
	in, err := ParseManifests("scale", []byte(scaleManifests(50, 200)))
	if err != nil {
		t.Fatal(err)
	}
	out := Compile(in)
	if out.Err != nil {
		t.Fatal(out.Err)
	}
	for _, v := range out.Verdicts {
		if v.Accepted.Status != "True" || v.ResolvedRefs.Status != "True" || !v.InTable {
			t.Fatalf("%s: accepted=%+v refs=%+v inTable=%v", v.Ref, v.Accepted, v.ResolvedRefs, v.InTable)
		}
	}
	if len(out.Table.Routes) != 50 || len(out.Table.Keys) != 200 {
		t.Fatalf("routes=%d keys=%d", len(out.Table.Routes), len(out.Table.Keys))
	}
}
