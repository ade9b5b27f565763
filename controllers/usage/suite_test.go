package usage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"tollgate.dev/tollgate/api/v1alpha1"
)

// k8sClient talks to a real kube-apiserver (envtest); nil when
// KUBEBUILDER_ASSETS is unset, and the tests that need it skip.
var k8sClient client.Client

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "usage: KUBEBUILDER_ASSETS unset; envtest tests skip (KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh))")
		return m.Run()
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "usage: starting envtest: %v\n", err)
		return 1
	}
	defer env.Stop()
	if k8sClient, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintf(os.Stderr, "usage: client: %v\n", err)
		return 1
	}
	return m.Run()
}

func needEnvtest(t *testing.T) {
	t.Helper()
	if k8sClient == nil {
		t.Skip("needs envtest (KUBEBUILDER_ASSETS)")
	}
}

// tokenAuth accepts "Bearer t".
type tokenAuth struct{}

func (tokenAuth) Authenticate(r *http.Request) (string, error) {
	if r.Header.Get("Authorization") != "Bearer t" {
		return "", errors.New("bad token")
	}
	return "test-replica", nil
}

func token() (string, error) { return "t", nil }

// controller is one controller process: a handler mounted on an HTTP
// server, writing while "leader" (between start and stop).
type controller struct {
	h      *Handler
	srv    *httptest.Server
	cancel context.CancelFunc
	done   chan struct{}
}

func startController(t *testing.T, url string, now func() time.Time) *controller {
	t.Helper()
	h := New(Options{Client: k8sClient, Auth: tokenAuth{}, Interval: 20 * time.Millisecond, Now: now})
	c := &controller{h: h}
	if url == "" {
		c.srv = httptest.NewServer(h)
	}
	return c
}

func (c *controller) lead() {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan struct{})
	go func() { defer close(c.done); _ = c.h.Start(ctx) }()
	for !c.h.leading.Load() {
		time.Sleep(time.Millisecond)
	}
}

func (c *controller) stop() {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
}

func createKey(t *testing.T, ns, name string, spec v1alpha1.VirtualKeySpec) *v1alpha1.VirtualKey {
	t.Helper()
	vk := &v1alpha1.VirtualKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
	if err := k8sClient.Create(context.Background(), vk); err != nil {
		t.Fatal(err)
	}
	return vk
}

func getUsage(t *testing.T, ns, name string) *v1alpha1.UsageStatus {
	t.Helper()
	vk := &v1alpha1.VirtualKey{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, vk); err != nil {
		t.Fatal(err)
	}
	if vk.Status.Usage == nil {
		return &v1alpha1.UsageStatus{}
	}
	return vk.Status.Usage
}
