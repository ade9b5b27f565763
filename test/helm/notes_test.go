package helm

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestNotes renders NOTES.txt for every scenario. helm template skips it,
// so the test renders a copy of the chart in which NOTES.txt became a named
// template and a YAML document includes it.
func TestNotes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tollgate")
	err := filepath.WalkDir(chartDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		target := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == filepath.Join("templates", "NOTES.txt") {
			target = filepath.Join(dir, "templates", "_notes.tpl")
			data = []byte(`{{- define "notes-check" -}}` + string(data) + `{{- end }}`)
			doc := "notes: |\n{{ include \"notes-check\" . | indent 2 }}\n"
			if err := os.WriteFile(filepath.Join(dir, "templates", "notes-check.yaml"), []byte(doc), 0o644); err != nil {
				return err
			}
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			args := append([]string{"template", s.release, dir, "--namespace", s.namespace, "--kube-version", kubeVersion,
				"--show-only", "templates/notes-check.yaml"}, s.args...)
			out, err := helm(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct{ Notes string }
			if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			out = doc.Notes
			if !strings.Contains(out, "Applications call the gateway at:") || !strings.Contains(out, ".svc") {
				t.Errorf("NOTES.txt does not tell where the gateway is:\n%s", out)
			}
			if strings.Contains(out, "<no value>") || strings.Contains(out, "%!") {
				t.Errorf("NOTES.txt renders a missing value:\n%s", out)
			}
		})
	}
}
