package controllers

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"tollgate.dev/tollgate/dataplane/routetable"
)

// Shared by every envtest test: one API server, one manager running the
// reconciler against fakePub. Tests use their own namespaces but share the
// publisher's replicas, so they do not run in parallel.
var (
	testRestConfig *rest.Config
	k8sClient      client.Client // uncached, straight to the API server
	fakePub        = newFakePublisher()
	// testReconciler is the reconciler the shared manager runs.
	testReconciler *Reconciler
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// Fuzz workers are separate processes that each run TestMain; they
	// need no API server (the envtest tests skip without one).
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		return m.Run()
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "controllers: KUBEBUILDER_ASSETS is not set; these tests need a real kube-apiserver and etcd.\n"+
			"Run: KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh) go test ./controllers/")
		return 1
	}
	scheme, err := Scheme()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	if testRestConfig, err = env.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "controllers: starting envtest: %v\n", err)
		return 1
	}
	defer env.Stop()
	if k8sClient, err = client.New(testRestConfig, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	log := logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctrl.SetLogger(log)
	// Objects labelled isolatedLabel belong to tests that run their own
	// controller (Main); this manager does not see them.
	notIsolated, err := labels.Parse("!" + isolatedLabel)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mgr, err := ctrl.NewManager(testRestConfig, ctrl.Options{
		Scheme: scheme,
		Cache:  cache.Options{DefaultLabelSelector: notIsolated},
		// Main registers a controller of the same name in this process.
		Controller:             config.Controller{SkipNameValidation: ptr(true)},
		Logger:                 log,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	testReconciler = &Reconciler{Client: mgr.GetClient(), Publisher: fakePub}
	if err := testReconciler.SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	return m.Run()
}

// isolatedLabel marks objects the shared test manager must not see.
const isolatedLabel = "test.tollgate.dev/isolated"

var namespaceSeq atomic.Int64

func newNamespace(t *testing.T) string {
	t.Helper()
	if k8sClient == nil {
		t.Skip("no API server while fuzzing")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ctl-%d", namespaceSeq.Add(1))}}
	if err := k8sClient.Create(ctx(t), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// eventually polls f until it returns nil or the timeout passes.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

// fakePublisher stands in for the push channel: it records published tables
// and simulates replicas, which either acknowledge every table at once
// (autoAck) or only when the test says so.
type fakePublisher struct {
	mu       sync.Mutex
	tables   []*routetable.Table
	replicas map[string]*fakeReplica
	changes  chan struct{}
}

type fakeReplica struct {
	Replica
	autoAck bool
}

func newFakePublisher() *fakePublisher {
	p := &fakePublisher{replicas: map[string]*fakeReplica{}, changes: make(chan struct{}, 1)}
	p.replicas["dp-0"] = &fakeReplica{Replica: Replica{ID: "dp-0", Connected: true}, autoAck: true}
	return p
}

func (p *fakePublisher) Publish(t *routetable.Table) {
	p.mu.Lock()
	p.tables = append(p.tables, t)
	for _, r := range p.replicas {
		if r.autoAck && r.Connected {
			r.Acked = t
		}
	}
	p.mu.Unlock()
	p.notify()
}

func (p *fakePublisher) Replicas() []Replica {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Replica, 0, len(p.replicas))
	for _, r := range p.replicas {
		out = append(out, r.Replica)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (p *fakePublisher) Changes() <-chan struct{} { return p.changes }

func (p *fakePublisher) notify() {
	select {
	case p.changes <- struct{}{}:
	default:
	}
}

// latest is the last published table.
func (p *fakePublisher) latest() *routetable.Table {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.tables) == 0 {
		return nil
	}
	return p.tables[len(p.tables)-1]
}

func (p *fakePublisher) published() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.tables)
}

// connect adds a replica that acknowledges only through ack.
func (p *fakePublisher) connect(id string) {
	p.mu.Lock()
	p.replicas[id] = &fakeReplica{Replica: Replica{ID: id, Connected: true}}
	p.mu.Unlock()
	p.notify()
}

// ack makes replica id acknowledge the latest table.
func (p *fakePublisher) ack(id string) {
	p.mu.Lock()
	if len(p.tables) > 0 {
		p.replicas[id].Acked = p.tables[len(p.tables)-1]
	}
	p.mu.Unlock()
	p.notify()
}

func (p *fakePublisher) remove(id string) {
	p.mu.Lock()
	delete(p.replicas, id)
	p.mu.Unlock()
	p.notify()
}
