package helm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// repoRoot is the repository root relative to this package.
var repoRoot = filepath.Join("..", "..")

var chartDir = filepath.Join(repoRoot, "charts", "tollgate")

// kubeVersion is what helm renders for (the envtest API server's version).
const kubeVersion = "1.37.2"

var (
	// helmBin is the helm binary (hack/helm.sh, or $HELM).
	helmBin string
	// clusterSkip says why the API server tests are skipped ("" = they run).
	clusterSkip string
	restConfig  *rest.Config
	dyn         dynamic.Interface
	mapper      *restmapper.DeferredDiscoveryRESTMapper
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if helmBin, err = findHelm(); err != nil {
		fmt.Fprintf(os.Stderr, "helm tests: %v\n", err)
		return 1
	}

	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		clusterSkip = "KUBEBUILDER_ASSETS is not set, so the server-side dry runs against a real kube-apiserver are skipped. " +
			"Run `make test`, or: KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh) go test ./test/helm/..."
		fmt.Fprintln(os.Stderr, "helm tests: "+clusterSkip)
		return m.Run()
	}
	env := &envtest.Environment{
		// The chart's own CRD copies: proves what `helm install` installs is
		// accepted by the API server. TestChartCRDsMatchGenerated checks they
		// equal config/crd/bases.
		CRDDirectoryPaths:     []string{filepath.Join(chartDir, "crds"), filepath.Join("testdata", "servicemonitor-crd.yaml")},
		ErrorIfCRDPathMissing: true,
	}
	start := time.Now()
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "helm tests: starting envtest (KUBEBUILDER_ASSETS=%s): %v\n", os.Getenv("KUBEBUILDER_ASSETS"), err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "helm tests: control plane with CRDs ready in %s\n", time.Since(start).Round(time.Millisecond))
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "helm tests: stopping envtest: %v\n", err)
		}
	}()
	restConfig = cfg
	if dyn, err = dynamic.NewForConfig(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "helm tests: dynamic client: %v\n", err)
		return 1
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "helm tests: discovery client: %v\n", err)
		return 1
	}
	mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	return m.Run()
}

// needCluster skips t when no API server is available.
func needCluster(t *testing.T) {
	t.Helper()
	if clusterSkip != "" {
		t.Skip(clusterSkip)
	}
}

// findHelm returns $HELM, or the pinned helm that hack/helm.sh builds and
// caches (a no-op when it is cached already).
func findHelm() (string, error) {
	if h := os.Getenv("HELM"); h != "" {
		return h, nil
	}
	script, err := filepath.Abs(filepath.Join(repoRoot, "hack", "helm.sh"))
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/helm.sh: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// helm runs the helm binary and returns stdout; stderr is in the error.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, helmBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Keep helm away from the user's repositories, plugins and caches.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// decode splits a multi-document YAML stream into objects (integers stay
// int64, as the API machinery expects).
func decode(t *testing.T, manifests string) []*unstructured.Unstructured {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifests)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("split rendered manifests: %v", err)
		}
		data, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("rendered manifest is not YAML: %v\n%s", err, doc)
		}
		if len(bytes.TrimSpace(data)) == 0 || string(data) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			t.Fatalf("rendered manifest is not an object: %v\n%s", err, doc)
		}
		objs = append(objs, u)
	}
}
