package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tollgate.dev/tollgate/controllers/compiler"
	"tollgate.dev/tollgate/dataplane/server"
	"tollgate.dev/tollgate/dataplane/translate/media"
	"tollgate.dev/tollgate/dataplane/translate/providers"
	"tollgate.dev/tollgate/test/bench/upstream"
)

// roleEnv names the role of a re-executed harness process: the upstream,
// the plain reverse proxy and (in self mode) the gateway each run in a
// process of their own, so their CPU time and RSS are theirs alone.
const roleEnv = "TOLLGATE_BENCH_ROLE"

// runRole runs a child role and never returns.
func runRole(role string, args []string) {
	var err error
	switch role {
	case "upstream":
		err = serveUpstream()
	case "proxy":
		err = serveProxy(args[0])
	case "gateway":
		err = serveGateway(args[0])
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	fmt.Fprintln(os.Stderr, "bench role", role+":", err)
	os.Exit(1)
}

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// announce tells the parent the addresses it listens on.
func announce(addrs ...string) { fmt.Println("READY " + strings.Join(addrs, " ")) }

func serveUpstream() error {
	l, err := listenLoopback()
	if err != nil {
		return err
	}
	announce(l.Addr().String())
	return (&http.Server{Handler: upstream.Handler{}, ReadHeaderTimeout: 10 * time.Second}).Serve(l)
}

// newBaselineTransport is the baseline proxy's upstream transport, tuned
// like the gateway's (server.NewUpstreamTransport) so that only the work
// done per request differs.
func newBaselineTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.ForceAttemptHTTP2 = true
	return t
}

// serveProxy is the baseline: a plain httputil.ReverseProxy, nothing else.
func serveProxy(up string) error {
	u, err := url.Parse(up)
	if err != nil {
		return err
	}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(u) },
		Transport: newBaselineTransport(),
	}
	l, err := listenLoopback()
	if err != nil {
		return err
	}
	announce(l.Addr().String(), "-")
	return (&http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}).Serve(l)
}

// serveGateway runs the data plane the way `tollgate dataplane --config`
// wires it (dataplane.Run): the same compiler on the same manifests, the
// same server options, Prometheus registry with Go and process collectors.
// Its admin listener adds /debug/pprof and /debug/gc for the harness.
func serveGateway(dir string) error {
	in, err := compiler.LoadManifests(dir)
	if err != nil {
		return err
	}
	out := compiler.Compile(in)
	for _, v := range out.Verdicts {
		if !v.InTable {
			fmt.Fprintf(os.Stderr, "manifest not in table: %s: %s %s\n", v.Ref, v.Accepted.Message, v.ResolvedRefs.Message)
		}
	}
	if out.Err != nil {
		return out.Err
	}
	if out.Table == nil {
		return errors.New("no routing table compiled")
	}
	log := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv := server.New(server.Options{
		Translators:  providers.For,
		Media:        media.NewFetcher(30*time.Second, media.DefaultMaxBytes, false),
		Log:          log,
		MaxBodyBytes: 32 << 20,
		Metrics:      server.NewMetrics(reg),
	})
	if err := srv.SetTable(out.Table); err != nil {
		return err
	}
	pub, err := listenLoopback()
	if err != nil {
		return err
	}
	adm, err := listenLoopback()
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/gc", func(w http.ResponseWriter, _ *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(w, "go_memstats_heap_inuse_bytes %d\ngo_goroutines %d\n", ms.HeapInuse, runtime.NumGoroutine())
	})
	go func() {
		_ = (&http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}).Serve(adm)
	}()
	announce(pub.Addr().String(), adm.Addr().String())
	public := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	return public.Serve(pub)
}

// child is a running role process.
type child struct {
	name  string
	cmd   *exec.Cmd
	addr  string // public address
	admin string // admin address, "" when none
	pid   int
}

// startChild starts a process, pinned to cpu when cpu >= 0 and taskset
// exists, and waits for its READY line.
func startChild(name string, env []string, cpu int, logDir string, argv ...string) (*child, error) {
	if cpu >= 0 {
		if ts, err := exec.LookPath("taskset"); err == nil {
			argv = append([]string{ts, "-c", fmt.Sprint(cpu)}, argv...)
		}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{name: name, cmd: cmd, pid: cmd.Process.Pid}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			if strings.HasPrefix(s.Text(), "READY ") {
				line <- s.Text()
			}
		}
		close(line)
	}()
	select {
	case l, ok := <-line:
		if !ok {
			c.stop()
			return nil, fmt.Errorf("%s exited before it was ready; see %s", name, logf.Name())
		}
		f := strings.Fields(l)
		c.addr = f[1]
		if len(f) > 2 && f[2] != "-" {
			c.admin = f[2]
		}
	case <-time.After(60 * time.Second):
		c.stop()
		return nil, fmt.Errorf("%s not ready after 60s; see %s", name, logf.Name())
	}
	return c, nil
}

// startBinary runs `tollgate dataplane --config dir` on free loopback ports
// and waits for /readyz.
func startBinary(bin, dir string, cpu int, logDir string) (*child, error) {
	pub, adm, err := freePort(), freePort(), error(nil)
	argv := []string{bin, "dataplane", "--config", dir, "--listen", pub, "--admin-listen", adm, "--drain-delay", "0s", "--shutdown-grace", "1s"}
	if cpu >= 0 {
		if ts, lerr := exec.LookPath("taskset"); lerr == nil {
			argv = append([]string{ts, "-c", fmt.Sprint(cpu)}, argv...)
		}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	logf, err := os.Create(filepath.Join(logDir, "gateway.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stderr, cmd.Stdout = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{name: "gateway", cmd: cmd, pid: cmd.Process.Pid, addr: pub, admin: adm}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		resp, err := http.Get("http://" + adm + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.stop()
	return nil, fmt.Errorf("tollgate dataplane not ready after 60s; see %s", logf.Name())
}

func freePort() string {
	l, err := listenLoopback()
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}

func (c *child) stop() {
	if c == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}
