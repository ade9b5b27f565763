package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// endpoint is what the load generator sends: the same client request to
// the gateway, to the baseline proxy, or straight to the upstream.
type endpoint struct {
	name string
	url  string
	body []byte
	// messages: an Anthropic Messages client (x-api-key and
	// anthropic-version headers) instead of an OpenAI one (Authorization:
	// Bearer).
	messages bool
	// stream: read the body as SSE and time each event.
	stream bool
	// gapFloor: a data event arriving sooner than this after the previous
	// one counts as bunched (the upstream paces events further apart).
	gapFloor time.Duration
}

// sample is one request's outcome.
type sample struct {
	lat, ttfb time.Duration
	events    int
	bunched   int
	err       bool
}

// stats summarise one measurement window.
type stats struct {
	n, errs         int
	wall            time.Duration
	lat, ttfb       []time.Duration // sorted
	events, bunched int
}

func (s stats) rps() float64 { return float64(s.n) / s.wall.Seconds() }

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(p * float64(len(d)-1))
	return d[i]
}

func newClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = conns + 16
	t.MaxIdleConnsPerHost = conns + 16
	t.DisableCompression = true
	t.ForceAttemptHTTP2 = false
	return &http.Client{Transport: t, Timeout: 5 * time.Minute}
}

// setHeaders sets the content type and the virtual key as the client's SDK
// would.
func setHeaders(req *http.Request, ep endpoint) {
	h := req.Header
	h["Content-Type"] = []string{"application/json"}
	if ep.messages {
		h["X-Api-Key"] = []string{benchKey}
		h["Anthropic-Version"] = []string{"2023-06-01"}
		return
	}
	h["Authorization"] = []string{"Bearer " + benchKey}
}

// do sends one request and reads the whole answer.
func do(ctx context.Context, c *http.Client, ep endpoint) sample {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.url, bytes.NewReader(ep.body))
	if err != nil {
		return sample{err: true}
	}
	setHeaders(req, ep)
	resp, err := c.Do(req)
	if err != nil {
		return sample{err: true, lat: time.Since(start)}
	}
	defer resp.Body.Close()
	s := sample{err: resp.StatusCode != http.StatusOK}
	if !ep.stream {
		var buf [512]byte
		n, rerr := io.ReadAtLeast(resp.Body, buf[:], 1)
		s.ttfb = time.Since(start)
		if n == 0 || (rerr != nil && rerr != io.EOF) {
			s.err = true
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			s.err = true
		}
		s.lat = time.Since(start)
		return s
	}
	br := bufio.NewReaderSize(resp.Body, 8<<10)
	var prev time.Time
	done := false
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && s.ttfb == 0 {
			s.ttfb = time.Since(start)
		}
		if bytes.HasPrefix(line, []byte("data: ")) {
			if bytes.HasPrefix(line, []byte("data: [DONE]")) {
				done = true
			} else {
				now := time.Now()
				if !prev.IsZero() && now.Sub(prev) < ep.gapFloor {
					s.bunched++
				}
				prev = now
				s.events++
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err != io.EOF || !done {
				s.err = true
			}
			break
		}
	}
	s.lat = time.Since(start)
	return s
}

// collector gathers samples from many goroutines.
type collector struct {
	mu sync.Mutex
	s  stats
}

func (c *collector) add(x sample) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.n++
	if x.err {
		c.s.errs++
		return
	}
	c.s.lat = append(c.s.lat, x.lat)
	c.s.ttfb = append(c.s.ttfb, x.ttfb)
	c.s.events += x.events
	c.s.bunched += x.bunched
}

func (c *collector) done(wall time.Duration) stats {
	s := c.s
	s.wall = wall
	slices.Sort(s.lat)
	slices.Sort(s.ttfb)
	return s
}

// closedLoop runs conc workers back to back until d has passed or total
// requests were sent (total 0: no limit).
func closedLoop(ep endpoint, conc int, d time.Duration, total int) stats {
	c := newClient(conc)
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var col collector
	var sent atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if total > 0 && sent.Add(1) > int64(total) {
					return
				}
				x := do(context.Background(), c, ep)
				if ctx.Err() != nil && total == 0 {
					return // the window closed while this request ran
				}
				col.add(x)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if total == 0 {
		wall = d // requests finishing after the window are not counted
	}
	return col.done(wall)
}

// openLoop sends at a fixed rate for d whatever the answers' latency
// (latency counts from the scheduled send time, so a stall is not hidden
// by the generator waiting for it).
func openLoop(ep endpoint, rate float64, d time.Duration) stats {
	c := newClient(256)
	defer c.CloseIdleConnections()
	var col collector
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / rate)
	n := int(d / interval)
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := do(context.Background(), c, ep)
			lag := time.Since(at) - x.lat // time the request waited to be sent
			x.lat += max(lag, 0)
			x.ttfb += max(lag, 0)
			col.add(x)
		}()
	}
	wg.Wait()
	return col.done(time.Since(start))
}

// openStreams opens n streams at once and calls atPlateau once every
// stream has delivered its first byte (or failed).
func openStreams(ep endpoint, n int, atPlateau func()) (stats, int) {
	c := newClient(n)
	defer c.CloseIdleConnections()
	var col collector
	var wg, first sync.WaitGroup
	var opened atomic.Int64
	start := time.Now()
	for range n {
		wg.Add(1)
		first.Add(1)
		go func() {
			defer wg.Done()
			once := sync.OnceFunc(first.Done)
			defer once()
			x := doStreamNotify(c, ep, func() { opened.Add(1); once() })
			col.add(x)
		}()
	}
	first.Wait()
	atPlateau()
	wg.Wait()
	return col.done(time.Since(start)), int(opened.Load())
}

// doStreamNotify reads a stream to its end, calling onFirst at the first
// body byte.
func doStreamNotify(c *http.Client, ep endpoint, onFirst func()) sample {
	start := time.Now()
	req, err := http.NewRequest(http.MethodPost, ep.url, bytes.NewReader(ep.body))
	if err != nil {
		return sample{err: true}
	}
	setHeaders(req, ep)
	resp, err := c.Do(req)
	if err != nil {
		return sample{err: true}
	}
	defer resp.Body.Close()
	var buf [4096]byte
	s := sample{err: resp.StatusCode != http.StatusOK}
	for {
		k, err := resp.Body.Read(buf[:])
		if k > 0 && s.ttfb == 0 {
			s.ttfb = time.Since(start)
			onFirst()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			s.err = true
			break
		}
	}
	s.lat = time.Since(start)
	return s
}

func (s stats) String() string {
	return fmt.Sprintf("n=%d errs=%d rps=%.0f p50=%v p99=%v ttfb50=%v", s.n, s.errs, s.rps(), pct(s.lat, .5), pct(s.lat, .99), pct(s.ttfb, .5))
}
