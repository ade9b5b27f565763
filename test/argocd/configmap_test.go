package argocd

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite config/argocd/argocd-cm.yaml from config/argocd/health.lua")

// renderConfigMap is argocd-cm.yaml: health.lua installed under each kind's
// resource.customizations key.
func renderConfigMap(script string) string {
	var b strings.Builder
	b.WriteString(`# Argo CD health checks for the Tollgate kinds. Merge into argocd-cm
# (kubectl -n argocd patch configmap argocd-cm --patch-file config/argocd/argocd-cm.yaml,
# or list it under patches: in the kustomization that installs Argo CD).
# Generated from health.lua: edit that file, then run
#   go test ./test/argocd -run TestConfigMapMatchesScript -update
# See docs/gitops.md.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
`)
	for _, kind := range kinds {
		b.WriteString("  " + customizationKey(kind) + ": |\n")
		for _, line := range strings.Split(strings.TrimRight(script, "\n"), "\n") {
			if line == "" {
				b.WriteString("\n")
				continue
			}
			b.WriteString("    " + line + "\n")
		}
	}
	return b.String()
}

// TestConfigMapMatchesScript keeps the four installed copies identical to
// health.lua, so what the tests run is what Argo CD runs.
func TestConfigMapMatchesScript(t *testing.T) {
	script := readScript(t)
	want := renderConfigMap(script)
	if *update {
		if err := os.WriteFile(argocdCMPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(argocdCMPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is stale: run go test ./test/argocd -run TestConfigMapMatchesScript -update", argocdCMPath)
	}
	for kind, s := range installedScripts(t) {
		if s != script {
			t.Errorf("%s: the %s script differs from health.lua after YAML decoding", argocdCMPath, kind)
		}
	}
}
