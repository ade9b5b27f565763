// Package flags checks the contract between the packaging and the binary:
// every flag the Helm chart (and so config/, which test/helm keeps equal to
// it) passes to `tollgate controller` and `tollgate dataplane` is one the
// binary defines. It is a package of its own so that the chart tests in
// test/helm do not depend on the controller and data-plane code compiling.
package flags

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"tollgate.dev/tollgate/controllers"
	"tollgate.dev/tollgate/dataplane"
)

var repoRoot = filepath.Join("..", "..", "..")

// valueSets are the chart value sets test/helm renders.
var valueSets = [][]string{
	nil,
	{"-f", filepath.Join("..", "testdata", "values-nondefault.yaml")},
	{"-f", filepath.Join("..", "testdata", "values-airgapped.yaml")},
	{"--set", "controller.replicas=1", "--set", "controller.leaderElection.enabled=false"},
}

func helmBinary(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	script, _ := filepath.Abs(filepath.Join(repoRoot, "hack", "helm.sh"))
	out, err := exec.Command(script).Output()
	if err != nil {
		t.Fatalf("hack/helm.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// containerArgs renders the chart and returns the args of each container by
// its name.
func containerArgs(t *testing.T, helm string, values []string) map[string][]string {
	t.Helper()
	args := append([]string{"template", "tollgate", filepath.Join(repoRoot, "charts", "tollgate"), "-n", "tollgate-system", "--kube-version", "1.37.2"}, values...)
	cmd := exec.Command(helm, args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr.String())
	}
	found := map[string][]string{}
	for _, doc := range strings.Split(string(out), "\n---\n") {
		data, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil || len(data) == 0 || string(data) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil || u.GetKind() != "Deployment" {
			continue
		}
		cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		for _, c := range cs {
			m := c.(map[string]any)
			var a []string
			for _, s := range m["args"].([]any) {
				a = append(a, s.(string))
			}
			found[m["name"].(string)] = a
		}
	}
	return found
}

// expand substitutes the $(VAR) references the kubelet would.
func expand(args []string) []string {
	r := strings.NewReplacer("$(POD_NAMESPACE)", "tollgate-system", "$(POD_NAME)", "tollgate-dataplane-0")
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = r.Replace(a)
	}
	return out
}

// quiet runs f with os.Stderr discarded: -h makes the flag sets print
// their usage there.
func quiet(t *testing.T, f func() error) error {
	t.Helper()
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	saved := os.Stderr
	os.Stderr = devnull
	defer func() { os.Stderr = saved }()
	return f()
}

// TestChartFlagsAreDefined parses the rendered args with the binary's own
// flag sets: "-h" at the end stops before anything runs (Main returns nil or
// flag.ErrHelp), so the only possible errors are undefined or malformed
// flags.
func TestChartFlagsAreDefined(t *testing.T) {
	helm := helmBinary(t)
	mains := map[string]func(context.Context, []string) error{
		"controller": controllers.Main,
		"dataplane":  dataplane.Main,
	}
	for _, values := range valueSets {
		name := strings.Join(values, " ")
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			for container, args := range containerArgs(t, helm, values) {
				run, ok := mains[container]
				if !ok {
					t.Fatalf("unexpected container %s", container)
				}
				if len(args) == 0 || args[0] != container {
					t.Fatalf("%s: args %v do not start with the subcommand", container, args)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := quiet(t, func() error { return run(ctx, append(expand(args[1:]), "-h")) })
				cancel()
				// -h ends parsing with flag.ErrHelp, which Main may report
				// or treat as success; anything else is a bad flag.
				if err != nil && !errors.Is(err, flag.ErrHelp) {
					t.Errorf("tollgate %s %s: %v (want every flag accepted)", container, strings.Join(args[1:], " "), err)
				}
			}
		})
	}
}
