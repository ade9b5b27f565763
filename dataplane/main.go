// Package dataplane wires the data-plane process: the public API server,
// the admin server (metrics, health, readiness), and the source of routing
// tables (the controller's push channel, or a directory of manifests in
// file mode).
package dataplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tollgate.dev/tollgate/dataplane/guard"
	"tollgate.dev/tollgate/dataplane/mcp"
	"tollgate.dev/tollgate/dataplane/metering"
	"tollgate.dev/tollgate/dataplane/probe"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/server"
	"tollgate.dev/tollgate/dataplane/sync"
	"tollgate.dev/tollgate/dataplane/sync/wire"
	"tollgate.dev/tollgate/dataplane/translate"
	"tollgate.dev/tollgate/dataplane/translate/media"
	"tollgate.dev/tollgate/dataplane/translate/providers"
)

// Options are the data plane's settings, from flags.
type Options struct {
	Listen        string
	AdminListen   string
	ConfigDir     string
	ControllerURL string
	// ControllerCAFile is a PEM bundle to trust for an https:// controller.
	ControllerCAFile      string
	TokenFile             string
	Token                 string
	ReplicaID             string
	ShutdownGrace         time.Duration
	DrainDelay            time.Duration
	MaxBodyBytes          int64
	AllowPrivateImageURLs bool
	// NoImageFetch refuses http(s) image URLs for providers that need the
	// bytes inline, so no request can make the gateway call a host that no
	// resource names (air-gapped and sovereign installs).
	NoImageFetch bool
	LogLevel     int
	// ReadHeaderTimeout bounds how long a client may take to send its
	// request headers (slowloris); default 10s.
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes bounds request headers (431 beyond); default 64 KiB.
	MaxHeaderBytes int
	// BodyTimeout bounds reading a request body (408 beyond); default 2 min.
	BodyTimeout time.Duration
	// Ready, when set, receives the bound public and admin addresses (tests
	// and `make run` use ":0").
	Ready func(public, admin string)
}

// Main parses args and runs the data plane until ctx is cancelled.
func Main(ctx context.Context, args []string) error {
	o := Options{}
	fs := flag.NewFlagSet("dataplane", flag.ContinueOnError)
	fs.StringVar(&o.Listen, "listen", ":8080", "address of the public API (OpenAI/Anthropic-compatible, /mcp)")
	fs.StringVar(&o.AdminListen, "admin-listen", ":9090", "address of /metrics, /healthz and /readyz")
	fs.StringVar(&o.ConfigDir, "config", "", "file mode: read LLMProvider/Route/VirtualKey/MCPTool/Secret manifests from this directory (no Kubernetes)")
	fs.StringVar(&o.ControllerURL, "controller", "", "URL of the controller's push channel, e.g. http://tollgate-controller:8082")
	fs.StringVar(&o.ControllerCAFile, "controller-ca-file", "", "PEM CA bundle that signs the controller's push certificate (for an https:// --controller)")
	fs.StringVar(&o.TokenFile, "token-file", "/var/run/secrets/tollgate/token", "file with the token presented to the controller (projected service-account token)")
	fs.StringVar(&o.ReplicaID, "replica-id", "", "replica name reported to the controller (default: hostname)")
	fs.DurationVar(&o.ShutdownGrace, "shutdown-grace", 30*time.Second, "how long in-flight requests and streams may take to finish on shutdown")
	fs.DurationVar(&o.DrainDelay, "drain-delay", 5*time.Second, "how long readiness fails before the listener closes on shutdown")
	fs.Int64Var(&o.MaxBodyBytes, "max-body-bytes", 32<<20, "largest accepted request body")
	fetchImages := fs.Bool("fetch-image-urls", true, "download http(s) image URLs for providers that need image bytes inline (Gemini, Bedrock, Ollama); false keeps every outbound call to the providers resources name (air-gapped), and such URLs are refused with a 400")
	fs.BoolVar(&o.AllowPrivateImageURLs, "allow-private-image-urls", false, "let image URLs in requests resolve to private/loopback addresses (SSRF guard off)")
	fs.IntVar(&o.LogLevel, "v", 0, "log verbosity")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.NoImageFetch = !*fetchImages
	if (o.ConfigDir == "") == (o.ControllerURL == "") {
		return errors.New("exactly one of --config (file mode) or --controller is required")
	}
	if o.ReplicaID == "" {
		o.ReplicaID, _ = os.Hostname()
	}
	h := slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.Level(-o.LogLevel)})
	return Run(ctx, o, logr.FromSlogHandler(h).WithName("dataplane"))
}

// Run runs the data plane with options o.
func Run(ctx context.Context, o Options, log logr.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := server.NewMetrics(reg)
	gw := mcp.NewGateway(mcp.Options{
		Authenticate: func(r *http.Request, t *routetable.Table, now time.Time) (*routetable.Key, error) {
			k, aerr := server.Authenticate(r, t, now)
			if aerr != nil {
				return nil, aerr
			}
			return k, nil
		},
		Registerer: reg,
		Log:        log.WithName("mcp"),
	})
	defer gw.Close()
	// Usage is reported to the controller over the push channel's address,
	// with the same token; file mode meters locally.
	var syncClient *sync.Client
	meterOpts := metering.Options{Registerer: reg, Log: log.WithName("metering"), Replica: o.ReplicaID}
	if o.ControllerURL != "" {
		syncClient = &sync.Client{URL: o.ControllerURL, TokenFile: o.TokenFile, Token: o.Token, ReplicaID: o.ReplicaID, Log: log}
		meterOpts.ReportURL = strings.TrimRight(o.ControllerURL, "/") + "/v1/usage"
		meterOpts.Token = syncClient.BearerToken
		if o.ControllerCAFile != "" {
			tr, err := controllerTransport(o.ControllerCAFile)
			if err != nil {
				return err
			}
			syncClient.HTTPClient = &http.Client{Transport: tr} // no timeout: the stream lives for hours
			meterOpts.Client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
		}
	}
	meter := metering.New(meterOpts)
	srv := server.New(server.Options{
		MCP:          gw.Handler(),
		Meter:        meter,
		Translators:  providers.For,
		Media:        imageFetcher(o),
		Log:          log,
		MaxBodyBytes: o.MaxBodyBytes,
		Metrics:      metrics,
		BodyTimeout:  o.BodyTimeout,
		Guard:        guard.New(reg),
	})
	// Active health checks feed the router's live health.
	prober := probe.New(probe.Options{Health: srv.Health(), Log: log.WithName("probe")})
	defer prober.Close()
	apply := func(t *routetable.Table) error {
		if err := srv.SetTable(t); err != nil {
			return err
		}
		gw.SetTable(t)
		meter.SetTable(t)
		prober.SetTable(t)
		log.Info("Applied routing table", "version", t.Version, "routes", len(t.Routes), "keys", len(t.Keys))
		return nil
	}

	var synced func() bool
	errc := make(chan error, 4)
	if o.ConfigDir != "" {
		fw := &FileWatcher{Dir: o.ConfigDir, Apply: apply, Log: log}
		if err := fw.Load(); err != nil {
			return fmt.Errorf("file mode: %w", err)
		}
		go func() { errc <- fw.Run(ctx) }()
		synced = func() bool { return true }
	} else {
		syncClient.Apply = apply
		syncClient.Report = func() *wire.Report {
			return replicaReport(srv.Table(), srv.Health().Snapshot(), gw.ServerStatus())
		}
		go func() { errc <- syncClient.Run(ctx) }()
		synced = syncClient.Synced
	}

	pub, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	adm, err := net.Listen("tcp", o.AdminListen)
	if err != nil {
		pub.Close()
		return err
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	public := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    o.MaxHeaderBytes,
	}
	// Open MCP streams never end by themselves: close them on shutdown.
	public.RegisterOnShutdown(func() { _ = gw.Close() })
	admin := &http.Server{Handler: adminMux(reg, srv, synced), ReadHeaderTimeout: 5 * time.Second}
	go func() { errc <- ignoreClosed(public.Serve(pub)) }()
	go func() { errc <- ignoreClosed(admin.Serve(adm)) }()
	log.Info("Data plane listening", "public", pub.Addr().String(), "admin", adm.Addr().String())
	if o.Ready != nil {
		o.Ready(pub.Addr().String(), adm.Addr().String())
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil {
			public.Close()
			admin.Close()
			return err
		}
		<-ctx.Done()
	}
	// Graceful shutdown: fail readiness first so load balancers stop sending,
	// then stop accepting and let in-flight requests and streams finish.
	log.Info("Shutting down: draining", "drainDelay", o.DrainDelay, "grace", o.ShutdownGrace)
	srv.Drain()
	time.Sleep(o.DrainDelay)
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownGrace)
	defer cancel()
	err = public.Shutdown(sctx)
	if err != nil {
		public.Close()
	}
	srv.Close()
	admin.Close()
	log.Info("Data plane stopped")
	return nil
}

// imageFetcher downloads image URLs for providers that need bytes, unless
// the operator turned that off; then only data: URLs can be inlined.
func imageFetcher(o Options) translate.MediaFetcher {
	if o.NoImageFetch {
		return nil
	}
	return media.NewFetcher(30*time.Second, media.DefaultMaxBytes, o.AllowPrivateImageURLs)
}

// controllerTransport trusts the CAs in caFile (and nothing else) for the
// connection to the controller: the routing table carries provider
// credentials.
func controllerTransport(caFile string) (*http.Transport, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--controller-ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--controller-ca-file %s holds no PEM certificate", caFile)
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   2,
	}, nil
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func adminMux(reg *prometheus.Registry, srv *server.Server, synced func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !srv.Ready() || !synced() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		t := srv.Table()
		_, _ = fmt.Fprintf(w, "ok %s\n", t.Version)
	})
	return mux
}
