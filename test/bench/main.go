// Command bench is Tollgate's load harness. On loopback it starts a lean
// fake provider (test/bench/upstream), the gateway and a plain
// httputil.ReverseProxy baseline, each in a process of its own (gateway and
// baseline pinned to the same single core when taskset exists), drives
// them with a closed-loop (fixed concurrency) or open-loop (fixed rate)
// load generator, and reports the gateway as ratios to the baseline
// measured in the same run, checked against the targets of issue 10.
//
//	go run ./test/bench                         # every scenario, ~2-3 min
//	go run ./test/bench -quick                  # shorter windows, 20k-request soak
//	go run ./test/bench -scenario passthrough,latency -duration 10s
//	go run ./test/bench -write docs/benchmarks.md
//
// The gateway runs as `bin/tollgate dataplane --config <dir>` (file mode,
// generated manifests; -gateway binary), or as this program re-executed
// running dataplane.Run on the same manifests, with a debug listener for
// pprof (-gateway self). -gateway auto tries the binary first.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"tollgate.dev/tollgate/test/bench/upstream"
)

type config struct {
	duration    time.Duration
	rounds      int
	concurrency int
	rate        float64
	streamConc  int
	streams     int
	requests    int
	scenarios   map[string]bool
	gatewayMode string
	pin         bool
	write       string
	pprofDir    string
	strict      bool
	quick       bool
}

var allScenarios = []string{"passthrough", "translate", "messages", "latency", "stream", "streams", "soak"}

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		runRole(role, os.Args[1:])
	}
	var c config
	var scen string
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "measurement window of one throughput round (latency and stream windows are twice this)")
	flag.IntVar(&c.rounds, "rounds", 3, "interleaved baseline/gateway rounds for throughput; the ratio is the median over rounds")
	flag.IntVar(&c.concurrency, "concurrency", 50, "closed-loop concurrency for throughput and soak")
	flag.Float64Var(&c.rate, "rate", 300, "open-loop request rate (req/s) for the added-latency scenario")
	flag.IntVar(&c.streamConc, "stream-concurrency", 10, "concurrent streams in the streaming TTFB scenario")
	flag.IntVar(&c.streams, "streams", 1000, "concurrent open streams in the memory scenario")
	flag.IntVar(&c.requests, "requests", 100000, "requests in the soak (goroutine/memory growth) run")
	flag.StringVar(&scen, "scenario", strings.Join(allScenarios, ","), "comma-separated scenarios: "+strings.Join(allScenarios, ", "))
	flag.StringVar(&c.gatewayMode, "gateway", "auto", "how to run the gateway: binary (bin/tollgate dataplane --config), self (this program running dataplane.Run, with pprof), auto (binary if it builds)")
	flag.BoolVar(&c.pin, "pin", true, "pin the gateway and the baseline proxy to the last CPU, and this load generator and the upstream to the others, with taskset")
	flag.StringVar(&c.write, "write", "", "also write the results into this markdown file, between the bench:begin/bench:end markers")
	flag.StringVar(&c.pprofDir, "pprof", "", "self mode: save gateway CPU and allocation profiles of the throughput scenarios here")
	flag.BoolVar(&c.strict, "strict", false, "exit 1 when a target is missed")
	flag.BoolVar(&c.quick, "quick", false, "short run: 2s windows, 2 rounds, 20,000-request soak, 500 open streams")
	flag.Parse()
	if c.quick { // shorter defaults; flags given explicitly still win
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["duration"] {
			c.duration = 2 * time.Second
		}
		if !set["rounds"] {
			c.rounds = 2
		}
		if !set["requests"] {
			c.requests = 20000
		}
		if !set["streams"] {
			c.streams = 500
		}
	}
	if c.pin {
		pinLoad() // may re-execute this program under taskset
	}
	c.scenarios = map[string]bool{}
	for _, s := range strings.Split(scen, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allScenarios, s) {
			fatalf("unknown scenario %q (have %s)", s, strings.Join(allScenarios, ", "))
		}
		c.scenarios[s] = true
	}
	rep, err := run(c)
	if err != nil {
		fatalf("%v", err)
	}
	md := rep.markdown()
	fmt.Println(md)
	if c.write != "" {
		if err := writeInto(c.write, md); err != nil {
			fatalf("%v", err)
		}
		fmt.Fprintln(os.Stderr, "bench: wrote", c.write)
	}
	if c.strict && rep.failed() {
		os.Exit(1)
	}
}

// sutCPUEnv carries the core reserved for the system under test into the
// re-executed harness.
const sutCPUEnv = "TOLLGATE_BENCH_SUT_CPU"

// pinLoad keeps the load generator and the upstream off the core of the
// system under test: with two or more CPUs and taskset, the harness
// re-executes itself pinned to every CPU but the last (its children, the
// upstream included, inherit that), and the gateway and the plain proxy
// are later pinned to the last one.
func pinLoad() {
	if os.Getenv(sutCPUEnv) != "" || runtime.NumCPU() < 2 {
		return
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	n := runtime.NumCPU()
	env := append(os.Environ(), fmt.Sprintf("%s=%d", sutCPUEnv, n-1))
	err = syscall.Exec(ts, append([]string{ts, "-c", fmt.Sprintf("0-%d", n-2), exe}, os.Args[1:]...), env)
	logf("could not re-execute under taskset (%v); the load generator shares the gateway's core", err)
}

// sutCPU is the core of the system under test, -1 when nothing is pinned.
func sutCPU() int {
	if v := os.Getenv(sutCPUEnv); v != "" {
		var n int
		if _, err := fmt.Sscan(v, &n); err == nil {
			return n
		}
	}
	if _, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() >= 2 {
		return runtime.NumCPU() - 1
	}
	return -1
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05")+" "+format+"\n", args...)
}

// repoRoot walks up from the working directory to go.mod.
func repoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		p := filepath.Dir(d)
		if p == d {
			return "", errors.New("go.mod not found above the working directory")
		}
		d = p
	}
}

// environment collects the processes of a run.
type environment struct {
	c        config
	tmp      string
	up       *child
	proxy    *child
	gw       *child
	gwMode   string
	gwNote   string
	sutCPU   int
	children []*child
}

func (e *environment) stop() {
	for _, ch := range e.children {
		ch.stop()
	}
}

func run(c config) (*report, error) {
	tmp, err := os.MkdirTemp("", "tollgate-bench-")
	if err != nil {
		return nil, err
	}
	e := &environment{c: c, tmp: tmp, sutCPU: -1}
	defer e.stop()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		e.stop()
		os.Exit(130)
	}()
	if c.pin {
		e.sutCPU = sutCPU()
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if e.up, err = startChild("upstream", []string{roleEnv + "=upstream"}, -1, tmp, exe); err != nil {
		return nil, err
	}
	e.children = append(e.children, e.up)
	upURL := "http://" + e.up.addr
	cfgDir := filepath.Join(tmp, "config")
	if err := writeManifests(cfgDir, upURL); err != nil {
		return nil, err
	}
	if e.proxy, err = startChild("proxy", []string{roleEnv + "=proxy"}, e.sutCPU, tmp, exe, upURL); err != nil {
		return nil, err
	}
	e.children = append(e.children, e.proxy)
	if err := e.startGateway(exe, cfgDir); err != nil {
		return nil, err
	}
	e.children = append(e.children, e.gw)
	logf("upstream %s, baseline proxy %s (pid %d), gateway %s (pid %d, admin %s, debug %s, %s), logs in %s",
		e.up.addr, e.proxy.addr, e.proxy.pid, e.gw.addr, e.gw.pid, e.gw.admin, e.gw.debug, e.gwMode, tmp)
	r, err := e.scenarios()
	if err == nil {
		e.stop()
		_ = os.RemoveAll(tmp) // logs are kept only when something failed
	}
	return r, err
}

func (e *environment) startGateway(exe, cfgDir string) error {
	mode := e.c.gatewayMode
	if mode == "auto" || mode == "binary" {
		bin, err := buildBinary()
		switch {
		case err == nil:
			gw, err := startBinary(bin, cfgDir, e.sutCPU, e.tmp)
			if err != nil {
				return err
			}
			e.gw, e.gwMode = gw, "binary: bin/tollgate dataplane --config"
			return nil
		case mode == "binary":
			return err
		default:
			e.gwNote = "bin/tollgate did not build (" + firstLine(err.Error()) + "), so the gateway ran as the harness re-executed running dataplane.Run in file mode"
			logf("%s", e.gwNote)
		}
	}
	gw, err := startChild("gateway", []string{roleEnv + "=gateway"}, e.sutCPU, e.tmp, exe, cfgDir)
	if err != nil {
		return err
	}
	e.gw, e.gwMode = gw, "self: this harness re-executed running dataplane.Run in file mode"
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// buildBinary builds bin/tollgate from the module root.
func buildBinary() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "bin", "tollgate")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	logf("building %s", bin)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, out)
	}
	return bin, nil
}

// phase is one measured window against one system under test (SUT).
type phase struct {
	scenario string
	sut      string
	st       stats
	cpu      float64       // SUT CPU seconds
	wait     time.Duration // SUT threads' time runnable but not running
	hwmKiB   int64         // SUT peak RSS during the window
	extra    string
}

func (p *phase) cpuPer1k() float64 {
	if p.st.n == 0 {
		return 0
	}
	return p.cpu / float64(p.st.n) * 1000
}

// measure runs f against the process of sut and records its CPU time and
// peak RSS.
func measure(scenario, name string, sut *child, f func() stats) phase {
	resetPeakRSS(sut.pid)
	c0, w0 := cpuSeconds(sut.pid), runDelay(sut.pid)
	st := f()
	p := phase{scenario: scenario, sut: name, st: st, cpu: cpuSeconds(sut.pid) - c0, wait: runDelay(sut.pid) - w0, hwmKiB: memKiB(sut.pid, "VmHWM")}
	logf("%-12s %-22s %s cpu=%.2fs wait=%v hwm=%dMiB", scenario, name, st, p.cpu, p.wait.Round(time.Millisecond), p.hwmKiB>>10)
	return p
}

func (e *environment) endpoints() map[string]endpoint {
	oai := upstream.RequestBody("gpt-bench", false)
	ep := map[string]endpoint{
		"direct":       {name: "direct", url: "http://" + e.up.addr + "/v1/chat/completions", body: oai},
		"proxy":        {name: "proxy", url: "http://" + e.proxy.addr + "/v1/chat/completions", body: oai},
		"gw-openai":    {name: "gateway openai", url: "http://" + e.gw.addr + "/v1/chat/completions", body: upstream.RequestBody(modelOpenAI, false)},
		"gw-anthropic": {name: "gateway openai->anthropic", url: "http://" + e.gw.addr + "/v1/chat/completions", body: upstream.RequestBody(modelAnthropic, false)},
		// Anthropic Messages client: the same request to the gateway's
		// /v1/messages, routed to the Anthropic provider (native
		// passthrough), and through the plain proxy to the upstream's.
		"proxy-messages": {name: "proxy messages", url: "http://" + e.proxy.addr + "/v1/messages",
			body: upstream.MessagesRequestBody("claude-bench", false), messages: true},
		"gw-messages": {name: "gateway messages->anthropic", url: "http://" + e.gw.addr + "/v1/messages",
			body: upstream.MessagesRequestBody(modelAnthropic, false), messages: true},
		"proxy-stream": {name: "proxy", url: "http://" + e.proxy.addr + streamProfile.PathPrefix() + "/v1/chat/completions",
			body: upstream.RequestBody("gpt-bench", true), stream: true, gapFloor: streamProfile.Interval / 2},
		"gw-stream": {name: "gateway openai", url: "http://" + e.gw.addr + "/v1/chat/completions",
			body: upstream.RequestBody(modelStream, true), stream: true, gapFloor: streamProfile.Interval / 2},
		"proxy-hold": {name: "proxy", url: "http://" + e.proxy.addr + holdProfile.PathPrefix() + "/v1/chat/completions",
			body: upstream.RequestBody("gpt-bench", true), stream: true},
		"gw-hold": {name: "gateway openai", url: "http://" + e.gw.addr + "/v1/chat/completions",
			body: upstream.RequestBody(modelHold, true), stream: true},
	}
	return ep
}

func (e *environment) scenarios() (*report, error) {
	c := e.c
	ep := e.endpoints()
	r := newReport(c)
	r.mode, r.note, r.sutCPU = e.gwMode, e.gwNote, e.sutCPU
	r.cpus = runtime.NumCPU()
	if os.Getenv(sutCPUEnv) != "" {
		r.cpus = e.sutCPU + 1 // this process only sees the CPUs it is pinned to
	}
	r.loadBefore = loadavg()

	// Warm up every path (connections, translator caches, JIT-free but
	// allocator and GC pacer settle) and fail fast on a broken setup.
	for _, k := range []string{"direct", "proxy", "gw-openai", "gw-anthropic", "proxy-messages", "gw-messages", "proxy-stream", "gw-stream"} {
		n := 400
		if ep[k].stream {
			n = 40 // paced streams take half a second each
		}
		st := closedLoop(ep[k], 8, 30*time.Second, n)
		if st.n == 0 || st.errs*10 > st.n {
			return nil, fmt.Errorf("warm-up of %s: %d of %d requests failed; see the logs in %s", k, st.errs, st.n, e.tmp)
		}
		if st.errs > 0 {
			logf("warm-up of %s: %d of %d requests failed (errors in measured windows show in the tables)", k, st.errs, st.n)
		}
	}

	if c.scenarios["passthrough"] || c.scenarios["translate"] || c.scenarios["messages"] {
		r.throughput(e, ep)
	}
	if c.scenarios["latency"] {
		d := max(2*c.duration, 4*time.Second)
		for _, k := range []string{"direct", "proxy", "gw-openai"} {
			sut := e.proxy
			if k == "gw-openai" {
				sut = e.gw
			}
			p := measure("latency", ep[k].name, sut, func() stats { return openLoop(ep[k], c.rate, d) })
			if k == "direct" {
				p.cpu, p.wait, p.hwmKiB = 0, 0, 0 // no process between client and upstream
			}
			r.phases = append(r.phases, p)
			r.latency[k] = p.st
			r.latencyPhase[k] = p
		}
	}
	if c.scenarios["stream"] {
		d := max(2*c.duration, 4*time.Second)
		for _, k := range []string{"proxy-stream", "gw-stream"} {
			sut := e.proxy
			if k == "gw-stream" {
				sut = e.gw
			}
			p := measure("stream", ep[k].name, sut, func() stats { return closedLoop(ep[k], c.streamConc, d, 0) })
			r.phases = append(r.phases, p)
			r.stream[k] = p.st
		}
	}
	if c.scenarios["streams"] {
		for _, k := range []string{"proxy-hold", "gw-hold"} {
			sut := e.proxy
			if k == "gw-hold" {
				sut = e.gw
			}
			var plateau int64
			var opened int
			p := measure("open streams", ep[k].name, sut, func() stats {
				st, n := openStreams(ep[k], c.streams, func() {
					plateau = memKiB(sut.pid, "VmRSS")
					if c.pprofDir != "" && sut == e.gw && e.gw.debug != "" {
						save(e, "http://"+e.gw.debug+"/debug/pprof/heap", "open-streams.heap.pprof")
					}
				})
				opened = n
				return st
			})
			p.extra = fmt.Sprintf("%d streams open at once; RSS with all open %d MiB", opened, plateau>>10)
			r.phases = append(r.phases, p)
			r.openStreams[k] = p
		}
	}
	if c.scenarios["soak"] {
		r.soak(e, ep["gw-openai"])
	}
	r.loadAfter = loadavg()
	r.wall = time.Since(r.start)
	return r, nil
}

// throughputScenarios are the closed-loop throughput scenarios: the
// gateway endpoint measured and the plain-proxy endpoint (same client
// dialect) it is compared with.
var throughputScenarios = []struct{ scenario, gw, base string }{
	{"passthrough", "gw-openai", "proxy"},
	{"translate", "gw-anthropic", "proxy"},
	{"messages", "gw-messages", "proxy-messages"},
}

// throughput interleaves baseline and gateway rounds so that background
// load on a shared machine hits both alike; each gateway's ratio is the
// median of its per-round ratios to its baseline in the same round.
func (r *report) throughput(e *environment, ep map[string]endpoint) {
	c := e.c
	var keys []string // run order within a round: each baseline before its first gateway
	isBase := map[string]bool{}
	for _, t := range throughputScenarios {
		if !c.scenarios[t.scenario] {
			continue
		}
		if !isBase[t.base] {
			isBase[t.base] = true
			keys = append(keys, t.base)
		}
		keys = append(keys, t.gw)
		r.base[t.gw] = t.base
	}
	acc := map[string]*phase{}
	ratios := map[string][]float64{}
	for round := range c.rounds {
		rps := map[string]float64{}
		for _, k := range keys {
			sut := e.gw
			if isBase[k] {
				sut = e.proxy
			}
			var prof func()
			if e.c.pprofDir != "" && round == 0 && !isBase[k] && e.gw.debug != "" {
				prof = startProfile(e, k, c.duration)
			}
			p := measure("throughput", ep[k].name, sut, func() stats { return closedLoop(ep[k], c.concurrency, c.duration, 0) })
			if prof != nil {
				prof()
			}
			rps[k] = p.st.rps()
			if a, ok := acc[k]; ok {
				a.st = mergeStats(a.st, p.st)
				a.cpu += p.cpu
				a.wait += p.wait
				a.hwmKiB = max(a.hwmKiB, p.hwmKiB)
			} else {
				acc[k] = &p
			}
		}
		for gw, base := range r.base {
			ratios[gw] = append(ratios[gw], rps[gw]/rps[base])
		}
	}
	for _, k := range keys {
		r.phases = append(r.phases, *acc[k])
		r.tput[k] = *acc[k]
	}
	for k, v := range ratios {
		slices.Sort(v)
		r.ratio[k] = v[len(v)/2]
		r.ratioAll[k] = v
	}
}

func mergeStats(a, b stats) stats {
	out := stats{n: a.n + b.n, errs: a.errs + b.errs, wall: a.wall + b.wall, events: a.events + b.events, bunched: a.bunched + b.bunched}
	out.lat = append(append([]time.Duration{}, a.lat...), b.lat...)
	out.ttfb = append(append([]time.Duration{}, a.ttfb...), b.ttfb...)
	slices.Sort(out.lat)
	slices.Sort(out.ttfb)
	return out
}

// startProfile fetches a CPU profile of the gateway for d in the
// background and an allocation profile at the end.
func startProfile(e *environment, k string, d time.Duration) func() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		secs := max(int(d.Seconds())-1, 1)
		save(e, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", e.gw.debug, secs), k+".cpu.pprof")
	}()
	return func() {
		<-done
		save(e, "http://"+e.gw.debug+"/debug/pprof/allocs", k+".allocs.pprof")
	}
}

func save(e *environment, url, name string) {
	_ = os.MkdirAll(e.c.pprofDir, 0o755)
	resp, err := http.Get(url)
	if err != nil {
		logf("pprof: %v", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(filepath.Join(e.c.pprofDir, name))
	if err != nil {
		logf("pprof: %v", err)
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}

// soak runs many requests through the gateway and compares goroutines and
// memory before and after, once the connections are closed.
func (r *report) soak(e *environment, ep endpoint) {
	c := e.c
	_ = closedLoop(ep, c.concurrency, 60*time.Second, 5000)
	time.Sleep(time.Second)
	before := e.gwState()
	p := measure("soak", fmt.Sprintf("gateway openai (%d req)", c.requests), e.gw, func() stats {
		return closedLoop(ep, c.concurrency, 10*time.Minute, c.requests)
	})
	// Client connections are closed now; give server-side connection
	// goroutines a moment to exit.
	var after gwState
	for i := 0; i < 10; i++ {
		time.Sleep(500 * time.Millisecond)
		after = e.gwState()
		if after.goroutines <= before.goroutines+soakGoroutineSlack {
			break
		}
	}
	p.extra = fmt.Sprintf("goroutines %d -> %d; heap in use %.1f -> %.1f MiB%s; RSS %d -> %d MiB",
		before.goroutines, after.goroutines, before.heap/(1<<20), after.heap/(1<<20), map[bool]string{true: " (after GC)", false: " (no forced GC)"}[before.gced],
		before.rssKiB>>10, after.rssKiB>>10)
	r.phases = append(r.phases, p)
	r.soakBefore, r.soakAfter, r.soakPhase, r.soakRan = before, after, p, true
}

const soakGoroutineSlack = 5

type gwState struct {
	goroutines int
	heap       float64
	gced       bool
	rssKiB     int64
}

func (e *environment) gwState() gwState {
	var s gwState
	var m map[string]float64
	switch {
	case e.gw.debug != "":
		m = scrape("http://"+e.gw.debug+"/debug/gc", "go_goroutines", "go_memstats_heap_inuse_bytes")
		s.gced = len(m) == 2
	case e.gw.admin != "":
		m = scrape("http://"+e.gw.admin+"/metrics", "go_goroutines", "go_memstats_heap_inuse_bytes")
	}
	s.goroutines, s.heap = int(m["go_goroutines"]), m["go_memstats_heap_inuse_bytes"]
	s.rssKiB = memKiB(e.gw.pid, "VmRSS")
	return s
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
