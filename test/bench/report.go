package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// report is the outcome of a run.
type report struct {
	c                     config
	mode, note            string
	sutCPU                int
	start                 time.Time
	wall                  time.Duration
	loadBefore, loadAfter string
	phases                []phase
	tput                  map[string]phase
	base                  map[string]string // throughput: gateway endpoint -> its baseline endpoint
	ratio                 map[string]float64
	ratioAll              map[string][]float64
	latency               map[string]stats
	latencyPhase          map[string]phase
	stream                map[string]stats
	openStreams           map[string]phase
	soakBefore, soakAfter gwState
	soakPhase             phase
	soakRan               bool
	checks                []check
	cpus                  int
}

func newReport(c config) *report {
	return &report{c: c, start: time.Now(), tput: map[string]phase{}, base: map[string]string{}, ratio: map[string]float64{}, ratioAll: map[string][]float64{},
		latency: map[string]stats{}, latencyPhase: map[string]phase{}, stream: map[string]stats{}, openStreams: map[string]phase{}}
}

// check is one target of issue 10, or an informational row (no target:
// reported, never failed).
type check struct {
	target, goal, measured string
	pass                   bool
	info                   bool
}

func (r *report) failed() bool {
	for _, c := range r.checks {
		if !c.pass && !c.info {
			return true
		}
	}
	return false
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }

func errsNote(ss ...stats) (string, bool) {
	n := 0
	for _, s := range ss {
		n += s.errs
	}
	if n == 0 {
		return "", true
	}
	return fmt.Sprintf(" (%d errors)", n), false
}

// evaluate compares the measurements with the targets.
func (r *report) evaluate() {
	r.checks = nil
	add := func(target, goal, measured string, pass bool) {
		r.checks = append(r.checks, check{target: target, goal: goal, measured: measured, pass: pass})
	}
	// ratio reports a throughput scenario against its baseline; info: no
	// target of its own, goal is only named for comparison.
	ratio := func(k, target string, goal float64, info bool) {
		v, ok := r.ratio[k]
		if !ok {
			return
		}
		parts := []string{}
		for _, x := range r.ratioAll[k] {
			parts = append(parts, fmt.Sprintf("%.2f", x))
		}
		gw, px := r.tput[k], r.tput[r.base[k]]
		note, ok := errsNote(gw.st, px.st)
		eff := ""
		if gw.cpuPer1k() > 0 {
			// What the ratio would be if the pinned core were the only
			// limit: robust against a client- or neighbour-bound run.
			eff = fmt.Sprintf("; CPU per request %.3f vs %.3f ms, i.e. %.2fx", gw.cpuPer1k(), px.cpuPer1k(), px.cpuPer1k()/gw.cpuPer1k())
		}
		g := fmt.Sprintf(">= %.2fx plain proxy", goal)
		if info {
			g = fmt.Sprintf("none in issue 10 (for comparison, passthrough's: %s)", g)
		}
		measured := fmt.Sprintf("%.3fx (%.0f vs %.0f req/s; rounds %s%s)%s", v, gw.st.rps(), px.st.rps(), strings.Join(parts, ", "), eff, note)
		r.checks = append(r.checks, check{target: target, goal: g, measured: measured, pass: ok && v >= goal, info: info})
	}
	ratio("gw-openai", fmt.Sprintf("OpenAI passthrough throughput, concurrency %d", r.c.concurrency), 0.85, false)
	ratio("gw-anthropic", fmt.Sprintf("OpenAI -> Anthropic translation throughput, concurrency %d", r.c.concurrency), 0.70, false)
	ratio("gw-messages", fmt.Sprintf("Anthropic Messages (/v1/messages) native passthrough throughput, concurrency %d", r.c.concurrency), 0.85, true)
	if gw, ok := r.latency["gw-openai"]; ok {
		d := r.latency["direct"]
		note, ok := errsNote(gw, d)
		for _, k := range []string{"proxy", "gw-openai"} {
			// A process's own threads queue behind each other on its one
			// core too, so its wait tracks its CPU time; much more than
			// that means other work held the core.
			if p := r.latencyPhase[k]; p.st.wall > 0 && p.wait.Seconds() > max(0.2*p.st.wall.Seconds(), 2*p.cpu) {
				note += fmt.Sprintf("; %s waited for its core %.0f%% of the window (starved by other load, so its tail latency says little about its own cost)",
					p.sut, 100*p.wait.Seconds()/p.st.wall.Seconds())
			}
		}
		a50 := pct(gw.lat, .5) - pct(d.lat, .5)
		a99 := pct(gw.lat, .99) - pct(d.lat, .99)
		p := r.latency["proxy"]
		add(fmt.Sprintf("Added latency p50 at %.0f req/s (vs direct)", r.c.rate), "<= 0.3 ms",
			fmt.Sprintf("%s (gateway %s, direct %s; the plain proxy alone adds %s)%s", msSigned(a50), ms(pct(gw.lat, .5)), ms(pct(d.lat, .5)),
				msSigned(pct(p.lat, .5)-pct(d.lat, .5)), note), ok && a50 <= 300*time.Microsecond)
		add(fmt.Sprintf("Added latency p99 at %.0f req/s (vs direct)", r.c.rate), "<= 1 ms",
			fmt.Sprintf("%s (gateway %s, direct %s; the plain proxy alone adds %s)%s", msSigned(a99), ms(pct(gw.lat, .99)), ms(pct(d.lat, .99)),
				msSigned(pct(p.lat, .99)-pct(d.lat, .99)), note), ok && a99 <= time.Millisecond)
	}
	if gw, ok := r.stream["gw-stream"]; ok {
		p := r.stream["proxy-stream"]
		note, ok := errsNote(gw, p)
		d := pct(gw.ttfb, .5) - pct(p.ttfb, .5)
		add(fmt.Sprintf("Streaming TTFB p50, %d chunks (vs plain proxy)", streamProfile.Chunks), "<= +0.5 ms",
			fmt.Sprintf("%s (gateway %s, plain proxy %s)%s", msSigned(d), ms(pct(gw.ttfb, .5)), ms(pct(p.ttfb, .5)), note), ok && d <= 500*time.Microsecond)
		fg, fp := frac(gw.bunched, gw.events), frac(p.bunched, p.events)
		add("Streaming: no buffering (each chunk forwarded as it arrives)",
			fmt.Sprintf("events closer than %v (upstream paces %v): <= proxy + 2 pp", streamProfile.Interval/2, streamProfile.Interval),
			fmt.Sprintf("gateway %.2f%% of %d events, plain proxy %.2f%% of %d", 100*fg, gw.events, 100*fp, p.events),
			ok && gw.events > 0 && fg <= fp+0.02)
	}
	if p, ok := r.openStreams["gw-hold"]; ok {
		note, ok := errsNote(p.st)
		b := r.openStreams["proxy-hold"]
		add(fmt.Sprintf("Memory: %d concurrent open streams", r.c.streams), "< 200 MiB peak RSS",
			fmt.Sprintf("%d MiB (plain proxy %d MiB)%s", p.hwmKiB>>10, b.hwmKiB>>10, note), ok && p.hwmKiB < 200<<10)
	}
	if r.soakRan {
		b, a := r.soakBefore, r.soakAfter
		note, ok := errsNote(r.soakPhase.st)
		gOK := a.goroutines <= b.goroutines+soakGoroutineSlack
		var mOK bool
		var what string
		if b.gced {
			mOK = a.heap <= b.heap*1.10+(1<<20)
			what = fmt.Sprintf("heap after GC %.1f -> %.1f MiB", b.heap/(1<<20), a.heap/(1<<20))
		} else {
			mOK = a.rssKiB <= b.rssKiB+16<<10
			what = fmt.Sprintf("RSS %d -> %d MiB (no forced GC in binary mode)", b.rssKiB>>10, a.rssKiB>>10)
		}
		add(fmt.Sprintf("No goroutine or memory growth after %d requests", r.c.requests),
			fmt.Sprintf("goroutines <= +%d; heap <= +10%% (RSS <= +16 MiB without GC)", soakGoroutineSlack),
			fmt.Sprintf("goroutines %d -> %d; %s%s", b.goroutines, a.goroutines, what, note), ok && gOK && mOK)
	}
}

func msSigned(d time.Duration) string {
	if d >= 0 {
		return "+" + ms(d)
	}
	return "-" + ms(-d)
}

func frac(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// markdown renders the results section.
func (r *report) markdown() string {
	r.evaluate()
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("### Results of `go run ./test/bench%s`\n\n", r.flagsNote())
	pin := "not pinned (taskset missing or one CPU)"
	if r.sutCPU >= 0 {
		pin = fmt.Sprintf("gateway and plain proxy each pinned to CPU %d with taskset, load generator and upstream to the other CPUs", r.sutCPU)
	}
	w("%s UTC, %s, %s/%s, %d CPUs, %s. Gateway: %s. Load average before %s, after %s; wall time %s.\n\n",
		r.start.UTC().Format("2006-01-02 15:04"), runtime.Version(), runtime.GOOS, runtime.GOARCH, r.cpus, pin, r.mode,
		r.loadBefore, r.loadAfter, r.wall.Round(time.Second))
	if r.note != "" {
		w("Note: %s.\n\n", r.note)
	}
	if r.c.quick {
		w("Quick mode: %v windows, %d rounds, %d-request soak, %d open streams (the targets name 100,000 and 1,000).\n\n", r.c.duration, r.c.rounds, r.c.requests, r.c.streams)
	}
	w("| Target (issue 10) | Goal | Measured | Result |\n|---|---|---|---|\n")
	for _, c := range r.checks {
		res := "pass"
		switch {
		case c.info:
			res = "informational"
		case !c.pass:
			res = "**FAIL**"
		}
		w("| %s | %s | %s | %s |\n", c.target, c.goal, c.measured, res)
	}
	w("\n| Scenario | System | Requests | req/s | p50 | p90 | p99 | TTFB p50 | Errors | CPU of its core | Waiting for a core | CPU-s / 1k req | Peak RSS |\n")
	w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.phases {
		cpu, wait, per, rss := "-", "-", "-", "-"
		if p.cpu > 0 {
			cpu = fmt.Sprintf("%.0f%%", 100*p.cpu/p.st.wall.Seconds())
			wait = fmt.Sprintf("%.0f%%", 100*p.wait.Seconds()/p.st.wall.Seconds())
			per = fmt.Sprintf("%.3f", p.cpuPer1k())
		}
		if p.hwmKiB > 0 {
			rss = fmt.Sprintf("%d MiB", p.hwmKiB>>10)
		}
		w("| %s | %s | %d | %.0f | %s | %s | %s | %s | %d | %s | %s | %s | %s |\n", p.scenario, p.sut, p.st.n, p.st.rps(),
			ms(pct(p.st.lat, .5)), ms(pct(p.st.lat, .9)), ms(pct(p.st.lat, .99)), ms(pct(p.st.ttfb, .5)), p.st.errs, cpu, wait, per, rss)
	}
	notes := false
	for _, p := range r.phases {
		if p.extra != "" {
			if !notes {
				w("\n")
				notes = true
			}
			w("- %s, %s: %s\n", p.scenario, p.sut, p.extra)
		}
	}
	return b.String()
}

func (r *report) flagsNote() string {
	var f []string
	if r.c.quick {
		f = append(f, "-quick")
	}
	return strings.Join(append([]string{""}, f...), " ")
}

const (
	beginMarker = "<!-- bench:begin (generated by go run ./test/bench -write; do not edit by hand) -->"
	endMarker   = "<!-- bench:end -->"
)

// writeInto replaces the generated section of a markdown file (appending
// it when the markers are missing).
func writeInto(path, md string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	block := beginMarker + "\n\n" + md + "\n" + endMarker
	i := strings.Index(s, "<!-- bench:begin")
	j := strings.Index(s, endMarker)
	if i >= 0 && j > i {
		s = s[:i] + block + s[j+len(endMarker):]
	} else {
		if s != "" && !strings.HasSuffix(s, "\n\n") {
			s += "\n"
		}
		s += block + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
