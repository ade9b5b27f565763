package main

import (
	"bufio"
	"context"
	"fmt"
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

	"tollgate.dev/tollgate/dataplane"
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

// serveGateway runs the data plane exactly as `tollgate dataplane --config`
// does (dataplane.Run in file mode), plus a debug listener with
// /debug/pprof and /debug/gc for the harness.
func serveGateway(dir string) error {
	dbg, err := listenLoopback()
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/gc", func(w http.ResponseWriter, _ *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(w, "go_memstats_heap_inuse_bytes %d\ngo_goroutines %d\n", ms.HeapInuse, runtime.NumGoroutine())
	})
	go func() { _ = (&http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}).Serve(dbg) }()
	log := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return dataplane.Run(context.Background(), dataplane.Options{
		Listen:        "127.0.0.1:0",
		AdminListen:   "127.0.0.1:0",
		ConfigDir:     dir,
		ShutdownGrace: time.Second,
		MaxBodyBytes:  32 << 20,
		Ready:         func(pub, admin string) { announce(pub, admin, dbg.Addr().String()) },
	}, log)
}

// child is a running role process.
type child struct {
	name  string
	cmd   *exec.Cmd
	addr  string // public address
	admin string // admin address (/metrics, /readyz), "" when none
	debug string // self mode: /debug/pprof and /debug/gc
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
	dieWithParent(cmd)
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
		if len(f) > 3 {
			c.debug = f[3]
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
	dieWithParent(cmd)
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
