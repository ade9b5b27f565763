// Package controllers is Tollgate's control plane: one aggregate reconciler
// that watches LLMProviders, Routes, VirtualKeys, MCPTools and the Secrets
// they reference, runs the pure compiler, publishes the routing table to the
// data plane through the push channel, and writes status. Main wires it
// into a leader-elected controller-runtime manager.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/controllers/compiler"
)

// The controller's permissions; `make manifests` turns them into
// config/rbac/role.yaml.
// +kubebuilder:rbac:groups=gateway.tollgate.dev,resources=llmproviders;routes;virtualkeys;mcptools,verbs=get;list;watch
// +kubebuilder:rbac:groups=gateway.tollgate.dev,resources=llmproviders/status;routes/status;virtualkeys/status;mcptools/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=gateway.tollgate.dev,resources=virtualkeys/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create

// aggregateRequest is the only request the reconciler ever sees: the routing
// table depends on every object, so every change recompiles everything
// (Envoy Gateway does the same). The workqueue coalesces bursts into one
// reconcile.
var aggregateRequest = reconcile.Request{NamespacedName: types.NamespacedName{Name: "tollgate-routing-table"}}

// missedSecretRetry is how soon to recompile when a referenced Secret turned
// up after the compilation read the cache.
const missedSecretRetry = 100 * time.Millisecond

// statusWorkers bounds concurrent status patches, so a table change that
// touches thousands of objects does not take thousands of round trips in
// sequence nor open thousands of requests at once.
const statusWorkers = 8

// Reconciler compiles the routing table from all Tollgate resources,
// publishes it and writes every object's status.
type Reconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// Publisher hands tables to the data plane; nil only in tests that do
	// not care about programming (every object then reports NoReplicas).
	Publisher Publisher

	// referenced holds "namespace/name" of every Secret the last compilation
	// read, so Secret events for anything else are dropped.
	referenced atomic.Pointer[map[string]bool]
	// reconciles counts Reconcile calls, for tests that check for loops.
	reconciles atomic.Int64
	// published is the Version of the last table handed to Publisher. The
	// reconciler runs one worker, so it needs no lock.
	published string
}

// SetupWithManager registers the reconciler and its watches.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	enqueue := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{aggregateRequest}
	})
	// Status writes (ours) bump neither generation nor labels, so they do
	// not trigger a pointless recompilation. Labels matter: MCPTools select
	// keys by label and keys carry their labels into the table.
	specOrLabels := builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))
	b := ctrl.NewControllerManagedBy(mgr).
		Named("tollgate").
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Watches(&v1alpha1.LLMProvider{}, enqueue, specOrLabels).
		Watches(&v1alpha1.Route{}, enqueue, specOrLabels).
		Watches(&v1alpha1.VirtualKey{}, enqueue, specOrLabels).
		Watches(&v1alpha1.MCPTool{}, enqueue, specOrLabels).
		Watches(&corev1.Secret{}, enqueue, builder.WithPredicates(predicate.NewPredicateFuncs(r.secretRelevant)))
	if r.Publisher != nil {
		b = b.WatchesRawSource(source.TypedFunc[reconcile.Request](r.replicaChanges))
	}
	return b.Complete(r)
}

// secretRelevant lets through events for Secrets the last compilation read,
// and for key Secrets a VirtualKey controls (so their deletion, which
// rotates the key, is seen even before the first compilation).
func (r *Reconciler) secretRelevant(o client.Object) bool {
	if ref := metav1.GetControllerOf(o); ref != nil && ref.Kind == compiler.KindVirtualKey && isOurGroup(ref.APIVersion) {
		return true
	}
	if m := r.referenced.Load(); m != nil {
		return (*m)[o.GetNamespace()+"/"+o.GetName()]
	}
	// Before the first compilation nothing is known; the first
	// reconcile reads every Secret it needs anyway.
	return false
}

// replicaChanges re-evaluates Programmed whenever a data-plane replica
// connects, disconnects or acknowledges a table.
func (r *Reconciler) replicaChanges(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	ch := r.Publisher.Changes()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-ch:
				if !ok {
					return
				}
				q.Add(aggregateRequest)
			}
		}
	}()
	return nil
}

// snapshot is every live object the table depends on.
type snapshot struct {
	providers []v1alpha1.LLMProvider
	routes    []v1alpha1.Route
	keys      []v1alpha1.VirtualKey
	tools     []v1alpha1.MCPTool
}

// Reconcile lists everything, ensures every VirtualKey has its key Secret,
// compiles, publishes a new table version and writes status.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	r.reconciles.Add(1)
	snap, err := r.list(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}

	in := compiler.Input{
		Providers:         snap.providers,
		Routes:            snap.routes,
		VirtualKeys:       snap.keys,
		MCPTools:          snap.tools,
		Secrets:           map[string]map[string][]byte{},
		ForeignKeySecrets: map[string]bool{},
	}
	keys, keyErr := r.ensureKeySecrets(ctx, snap.keys, &in)
	if err := r.readReferencedSecrets(ctx, &in); err != nil {
		return reconcile.Result{}, err
	}

	out := compiler.Compile(in)
	if out.Err != nil {
		// A compiler bug: keep the data plane on its last good table.
		log.Error(out.Err, "Routing table failed its own validation; not publishing it")
		return reconcile.Result{}, out.Err
	}
	referenced := make(map[string]bool, len(out.ReferencedSecrets))
	for _, s := range out.ReferencedSecrets {
		referenced[s] = true
	}
	r.referenced.Store(&referenced)

	if r.Publisher != nil && out.Table.Version != r.published {
		r.Publisher.Publish(out.Table)
		r.published = out.Table.Version
		log.Info("Published routing table", "version", out.Table.Version,
			"providers", len(out.Table.Providers), "routes", len(out.Table.Routes),
			"keys", len(out.Table.Keys), "mcpServers", len(out.Table.MCPServers))
	}

	var replicas []Replica
	if r.Publisher != nil {
		replicas = r.Publisher.Replicas()
	}
	statusErr := r.writeStatuses(ctx, snap, &out, replicas, keys)

	// A Secret that appeared between reading the cache and publishing the
	// referenced set above may have had its event filtered out; look again.
	requeue, err := r.missedSecrets(ctx, &in, out.ReferencedSecrets)
	if err != nil {
		return reconcile.Result{}, err
	}
	if err := errors.Join(keyErr, statusErr); err != nil {
		return reconcile.Result{}, err
	}
	if requeue {
		return reconcile.Result{RequeueAfter: missedSecretRetry}, nil
	}
	return reconcile.Result{}, nil
}

func (r *Reconciler) list(ctx context.Context) (*snapshot, error) {
	var (
		lp v1alpha1.LLMProviderList
		rl v1alpha1.RouteList
		vk v1alpha1.VirtualKeyList
		mt v1alpha1.MCPToolList
	)
	for _, l := range []client.ObjectList{&lp, &rl, &vk, &mt} {
		if err := r.Client.List(ctx, l); err != nil {
			return nil, fmt.Errorf("list %T: %w", l, err)
		}
	}
	// Objects on their way out are no longer in effect; leaving them out
	// also frees a model name or tool prefix for a successor at once.
	s := &snapshot{}
	for _, o := range lp.Items {
		if o.DeletionTimestamp == nil {
			s.providers = append(s.providers, o)
		}
	}
	for _, o := range rl.Items {
		if o.DeletionTimestamp == nil {
			s.routes = append(s.routes, o)
		}
	}
	for _, o := range vk.Items {
		if o.DeletionTimestamp == nil {
			s.keys = append(s.keys, o)
		}
	}
	for _, o := range mt.Items {
		if o.DeletionTimestamp == nil {
			s.tools = append(s.tools, o)
		}
	}
	return s, nil
}

// readReferencedSecrets copies the Secrets that providers and MCP tools name
// into in.Secrets. A missing Secret is left out: the compiler reports it.
func (r *Reconciler) readReferencedSecrets(ctx context.Context, in *compiler.Input) error {
	want := map[string]bool{}
	add := func(ns string, sel *v1alpha1.SecretKeySelector) {
		if sel != nil && sel.Name != "" {
			want[ns+"/"+sel.Name] = true
		}
	}
	for i := range in.Providers {
		p := &in.Providers[i]
		if c := p.Spec.Credentials; c != nil {
			add(p.Namespace, c.APIKey)
			add(p.Namespace, c.AWSAccessKeyID)
			add(p.Namespace, c.AWSSecretAccessKey)
			add(p.Namespace, c.AWSSessionToken)
		}
	}
	for i := range in.MCPTools {
		t := &in.MCPTools[i]
		if a := t.Spec.Auth; a != nil {
			add(t.Namespace, &a.SecretRef)
		}
	}
	for id := range want {
		if _, done := in.Secrets[id]; done {
			continue
		}
		ns, name := splitID(id)
		var s corev1.Secret
		switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &s); {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("read Secret %s: %w", id, err)
		default:
			in.Secrets[id] = s.Data
		}
	}
	return nil
}

// missedSecrets reports whether a referenced Secret that the compilation did
// not find is in the cache now. Foreign key Secrets were found and refused;
// they do not count.
func (r *Reconciler) missedSecrets(ctx context.Context, in *compiler.Input, referenced []string) (bool, error) {
	for _, id := range referenced {
		if _, ok := in.Secrets[id]; ok || in.ForeignKeySecrets[id] {
			continue
		}
		ns, name := splitID(id)
		var s corev1.Secret
		switch err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &s); {
		case apierrors.IsNotFound(err):
		case err != nil:
			return false, err
		default:
			if s.DeletionTimestamp == nil {
				return true, nil
			}
		}
	}
	return false, nil
}

// forEach runs f over n items with at most statusWorkers at once and joins
// the errors.
func forEach(n int, f func(i int) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, statusWorkers)
	)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func splitID(id string) (ns, name string) {
	for i := range len(id) {
		if id[i] == '/' {
			return id[:i], id[i+1:]
		}
	}
	return "", id
}

// isOurGroup reports whether apiVersion is in the gateway.tollgate.dev group
// (any version, so a future v1 still owns its key Secrets).
func isOurGroup(apiVersion string) bool {
	gv, err := schema.ParseGroupVersion(apiVersion)
	return err == nil && gv.Group == v1alpha1.GroupVersion.Group
}
