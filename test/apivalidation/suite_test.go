package apivalidation

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	gatewayv1alpha1 "tollgate.dev/tollgate/api/v1alpha1"
)

// repoRoot is the repository root relative to this package.
var repoRoot = filepath.Join("..", "..")

// Shared by every test in the package; set up once in TestMain because the
// control plane takes seconds to start.
var (
	restConfig *rest.Config
	k8sClient  client.Client
	crdClient  apiextensionsclient.Interface
	scheme     = runtime.NewScheme()
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "apivalidation: KUBEBUILDER_ASSETS is not set; these tests need a real kube-apiserver and etcd.\n"+
			"Run `make test`, or: KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh) go test ./test/apivalidation/...")
		return 1
	}
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, gatewayv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			fmt.Fprintf(os.Stderr, "apivalidation: building scheme: %v\n", err)
			return 1
		}
	}

	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(repoRoot, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	start := time.Now()
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "apivalidation: starting envtest (KUBEBUILDER_ASSETS=%s): %v\n", os.Getenv("KUBEBUILDER_ASSETS"), err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "apivalidation: control plane with CRDs ready in %s\n", time.Since(start).Round(time.Millisecond))
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "apivalidation: stopping envtest: %v\n", err)
		}
	}()

	restConfig = cfg
	if k8sClient, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintf(os.Stderr, "apivalidation: client: %v\n", err)
		return 1
	}
	if crdClient, err = apiextensionsclient.NewForConfig(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "apivalidation: apiextensions client: %v\n", err)
		return 1
	}
	return m.Run()
}

var namespaceSeq atomic.Int64

// newNamespace creates a fresh namespace for one test, so tests cannot see
// each other's objects.
func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, namespaceSeq.Add(1))}}
	if err := k8sClient.Create(testContext(t), ns); err != nil {
		t.Fatalf("create namespace %s: %v", ns.Name, err)
	}
	return ns.Name
}

// testContext bounds every API call of a test.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
