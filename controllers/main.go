package controllers

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/controllers/push"
	"tollgate.dev/tollgate/controllers/usage"
	"tollgate.dev/tollgate/dataplane/routetable"
)

// LeaderElectionID names the Lease the controller replicas compete for.
const LeaderElectionID = "tollgate-controller.gateway.tollgate.dev"

// Options are the controller's settings, from flags.
type Options struct {
	Kubeconfig              string
	LeaderElect             bool
	LeaderElectionNamespace string
	PushAddr                string
	PushAuth                string
	PushTokenFile           string
	PushAudience            string
	PushAllowed             []string
	PushTLSCert             string
	PushTLSKey              string
	MetricsAddr             string
	HealthAddr              string
	Namespace               string
	LogLevel                int
}

// Main parses args and runs the controller until ctx is cancelled.
func Main(ctx context.Context, args []string) error {
	o := Options{}
	var allowed string
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config, then $KUBECONFIG)")
	fs.BoolVar(&o.LeaderElect, "leader-elect", true, "elect one active controller among the replicas (a Lease); only the leader compiles, serves push streams and writes status")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader-election Lease (default: the pod's namespace)")
	fs.StringVar(&o.PushAddr, "push-addr", ":8082", "address of the push channel the data-plane replicas connect to")
	fs.StringVar(&o.PushAuth, "push-auth", "tokenreview", "how replicas authenticate: tokenreview (projected service-account token) or static (a shared token from --push-token-file)")
	fs.StringVar(&o.PushTokenFile, "push-token-file", "", "file holding the shared token (--push-auth=static)")
	fs.StringVar(&o.PushAudience, "push-audience", "tollgate", "audience the replicas' projected tokens must carry (--push-auth=tokenreview)")
	fs.StringVar(&allowed, "push-allowed-serviceaccounts", "", "comma-separated namespace/name of the ServiceAccounts data-plane replicas run as (--push-auth=tokenreview)")
	fs.StringVar(&o.PushTLSCert, "push-tls-cert", "", "serve the push channel over TLS with this certificate (PEM); the table carries provider credentials")
	fs.StringVar(&o.PushTLSKey, "push-tls-key", "", "private key (PEM) for --push-tls-cert")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", ":8080", "address of /metrics (\"0\" disables it)")
	fs.StringVar(&o.HealthAddr, "health-addr", ":8081", "address of /healthz and /readyz")
	fs.StringVar(&o.Namespace, "namespace", "", "watch only this namespace (default: all namespaces)")
	fs.IntVar(&o.LogLevel, "v", 0, "log verbosity")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	for _, s := range strings.Split(allowed, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.PushAllowed = append(o.PushAllowed, s)
		}
	}
	h := slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.Level(-o.LogLevel)})
	return Run(ctx, o, logr.FromSlogHandler(h).WithName("controller"))
}

// Scheme returns a scheme with the core kinds and Tollgate's.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Run runs the controller with options o.
func Run(ctx context.Context, o Options, log logr.Logger) error {
	ctrl.SetLogger(log)
	cfg, err := restConfig(o.Kubeconfig)
	if err != nil {
		return err
	}
	auth, err := pushAuthenticator(o, cfg)
	if err != nil {
		return err
	}
	if (o.PushTLSCert == "") != (o.PushTLSKey == "") {
		return errors.New("--push-tls-cert and --push-tls-key go together")
	}
	scheme, err := Scheme()
	if err != nil {
		return err
	}

	cacheOpts := cache.Options{
		// Secrets are cached too (referenced and key Secrets are read on
		// every reconcile); managed fields are dead weight in memory.
		DefaultTransform: cache.TransformStripManagedFields(),
	}
	if o.Namespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{o.Namespace: {}}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         cacheOpts,
		Logger:                        log,
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:        o.HealthAddr,
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}

	srv := push.NewServer(push.Options{Auth: auth, Log: log.WithName("push")})
	rec := &Reconciler{Client: mgr.GetClient(), Publisher: pushPublisher{srv}}
	if err := rec.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up reconciler: %w", err)
	}
	// Usage reports come in on the push listener with the same credentials;
	// the handler folds them into VirtualKey status while leader.
	uh := usage.New(usage.Options{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Auth: auth, Log: log.WithName("usage")})
	if err := mgr.Add(uh); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv.Handler())
	mux.Handle("POST "+usage.Path, uh)
	ps := &pushServer{addr: o.PushAddr, handler: mux, certFile: o.PushTLSCert, keyFile: o.PushTLSKey, log: log.WithName("push"), elected: mgr.Elected()}
	if err := mgr.Add(ps); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("push", ps.ready); err != nil {
		return err
	}
	log.Info("Starting controller", "leaderElection", o.LeaderElect, "namespace", o.Namespace, "pushAddr", o.PushAddr, "pushAuth", o.PushAuth)
	return mgr.Start(ctx)
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	return ctrl.GetConfig()
}

func pushAuthenticator(o Options, cfg *rest.Config) (push.Authenticator, error) {
	switch o.PushAuth {
	case "static":
		if o.PushTokenFile == "" {
			return nil, errors.New("--push-auth=static needs --push-token-file")
		}
		b, err := os.ReadFile(o.PushTokenFile)
		if err != nil {
			return nil, fmt.Errorf("read push token: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 {
			return nil, errors.New("the push token must be at least 16 characters")
		}
		return push.NewStaticTokenAuth(tok), nil
	case "tokenreview":
		if len(o.PushAllowed) == 0 {
			return nil, errors.New("--push-auth=tokenreview needs --push-allowed-serviceaccounts (namespace/name of the data plane's ServiceAccount)")
		}
		users := make([]string, 0, len(o.PushAllowed))
		for _, sa := range o.PushAllowed {
			ns, name, ok := strings.Cut(sa, "/")
			if !ok || ns == "" || name == "" {
				return nil, fmt.Errorf("--push-allowed-serviceaccounts: %q is not namespace/name", sa)
			}
			users = append(users, "system:serviceaccount:"+ns+":"+name)
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		return push.NewTokenReviewAuth(cs, o.PushAudience, users), nil
	}
	return nil, fmt.Errorf("--push-auth %q is not one of static, tokenreview", o.PushAuth)
}

// pushPublisher adapts push.Server to Publisher.
type pushPublisher struct{ s *push.Server }

func (p pushPublisher) Publish(t *routetable.Table) { p.s.Publish(t) }
func (p pushPublisher) Changes() <-chan struct{}    { return p.s.Changes() }
func (p pushPublisher) Replicas() []Replica {
	rs := p.s.Replicas()
	out := make([]Replica, len(rs))
	for i, r := range rs {
		out[i] = Replica{ID: r.ID, Connected: r.Connected, Acked: r.Acked, RejectedVersion: r.NackedVersion, Error: r.Error, Report: r.Report}
	}
	return out
}

// pushServer listens on every controller replica but serves the push
// channel on the elected leader only: the leader is the one replica that
// compiles and publishes, and the only one that can count every replica's
// acknowledgement. Before it is elected a replica answers 503 with
// "Connection: close", so a data plane that reached it through the Service
// reconnects on a fresh connection (kube-proxy picks a pod per connection)
// until it lands on the leader. Every replica is ready: gating readiness on
// leadership would stall every rolling update (a surge pod that can never be
// elected never turns ready).
type pushServer struct {
	addr              string
	handler           http.Handler
	certFile, keyFile string
	log               logr.Logger
	// elected is closed when this replica becomes the leader.
	elected <-chan struct{}
	leader  atomic.Bool
	serving atomic.Bool
}

// NeedLeaderElection is false: the listener runs on every replica.
func (p *pushServer) NeedLeaderElection() bool { return false }

func (p *pushServer) ready(*http.Request) error {
	if !p.serving.Load() {
		return errors.New("the push channel listener is not up")
	}
	return nil
}

// ServeHTTP hands the stream to the push server on the leader and turns it
// away elsewhere.
func (p *pushServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.leader.Load() {
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", "1")
		http.Error(w, "this controller replica is not the leader; reconnect", http.StatusServiceUnavailable)
		return
	}
	p.handler.ServeHTTP(w, r)
}

// Start serves until ctx ends.
func (p *pushServer) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("push channel: %w", err)
	}
	srv := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		// No read or write timeout: streams live for hours; the push
		// server's heartbeats detect dead peers.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() {
		if p.certFile != "" {
			errc <- srv.ServeTLS(ln, p.certFile, p.keyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	p.serving.Store(true)
	p.log.Info("Push channel listening; serving streams once elected", "addr", ln.Addr().String(), "tls", p.certFile != "")
	go func() {
		select {
		case <-p.elected:
			p.leader.Store(true)
			p.log.Info("Elected: serving the push channel")
		case <-ctx.Done():
		}
	}()
	select {
	case <-ctx.Done():
		p.serving.Store(false)
		// Streams never finish on their own; the base context above has
		// already ended them, so a short grace suffices.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		return nil
	case err := <-errc:
		p.serving.Store(false)
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("push channel: %w", err)
	}
}

var _ manager.LeaderElectionRunnable = (*pushServer)(nil)
