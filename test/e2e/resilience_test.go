package e2e

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/server"
	"tollgate.dev/tollgate/dataplane/translate/providers"
	"tollgate.dev/tollgate/test/fakeprovider"
)

// serveTable runs a data plane with table tbl (finalized here) on loopback.
func serveTable(t *testing.T, tbl *routetable.Table) (*server.Server, string) {
	t.Helper()
	if err := tbl.Finalize(); err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{Translators: providers.For})
	if err := srv.SetTable(tbl); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return srv, hs.URL
}

// chainTable is one route "chain" whose targets are the given provider
// URLs, in order, as OpenAI and Anthropic providers alternately (so
// failover also crosses wire formats).
func chainTable(urls []string, retry routetable.Retry, timeouts routetable.Timeouts, asFallbacks bool) *routetable.Table {
	tbl := &routetable.Table{Keys: []routetable.Key{{ID: "team-a/app", Namespace: "team-a", Name: "app", Team: "a", Hash: server.HashKey(testKey)}}}
	route := routetable.Route{ID: "team-a/chain", Namespace: "team-a", Name: "chain", Model: "chain", Retry: retry, Timeouts: timeouts,
		Balancing: routetable.BalancingWeighted}
	for i, u := range urls {
		typ := routetable.ProviderOpenAI
		if i%2 == 1 {
			typ = routetable.ProviderAnthropic
		}
		name := "p" + string(rune('0'+i))
		tbl.Providers = append(tbl.Providers, newProvider(typ, name, u))
		tg := routetable.Target{Provider: "team-a/" + name, Model: "m-" + name, Weight: 1}
		if asFallbacks && i > 0 {
			route.Fallbacks = append(route.Fallbacks, tg)
		} else {
			route.Targets = append(route.Targets, tg)
		}
	}
	tbl.Routes = []routetable.Route{route}
	return tbl
}

// refusedURL is a loopback address nobody listens on.
func refusedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}

// hangupURL is a loopback server that reads each request and closes the
// connection without answering.
func hangupURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Read(make([]byte, 64<<10))
			c.Close()
		}
	}()
	return "http://" + l.Addr().String()
}

type result struct {
	status   int
	header   http.Header
	body     string
	duration time.Duration
}

func chat(t *testing.T, c *http.Client, url string, stream bool) result {
	t.Helper()
	body := `{"model":"chain","messages":[{"role":"user","content":"hello"}]` + map[bool]string{true: `,"stream":true}`, false: `}`}[stream]
	req, _ := http.NewRequest("POST", url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("request failed: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: string(b), duration: time.Since(start)}
}

func TestFailoverOutcomes(t *testing.T) {
	type setup struct {
		behaviors []fakeprovider.Behavior // one fake provider per entry
		refused   []bool                  // provider i refuses connections
		hangup    []bool                  // provider i accepts, reads the request and closes without answering
		retry     routetable.Retry
		timeouts  routetable.Timeouts
		stream    bool
	}
	cases := []struct {
		name string
		setup
		// wantServedBy is the index of the provider whose answer the client gets.
		wantServedBy int
		wantMin      time.Duration
		wantCounts   []int // requests each fake received
		check        func(t *testing.T, r result)
	}{
		{
			name:         "connection refused fails over",
			setup:        setup{behaviors: []fakeprovider.Behavior{{}, {}}, refused: []bool{true, false}, retry: routetable.Retry{Attempts: 1}},
			wantServedBy: 1, wantCounts: []int{0, 1},
		},
		{
			name:         "500 then 200 on the same target with a retry",
			setup:        setup{behaviors: []fakeprovider.Behavior{{FailFirst: 1}}, retry: routetable.Retry{Attempts: 2, InitialBackoff: time.Millisecond}},
			wantServedBy: 0, wantCounts: []int{2},
		},
		{
			name:         "500 fails over to the fallback",
			setup:        setup{behaviors: []fakeprovider.Behavior{{FailFirst: 100}, {}}, retry: routetable.Retry{Attempts: 1}},
			wantServedBy: 1, wantCounts: []int{1, 1},
		},
		{
			name: "429 with Retry-After is honoured before the retry",
			setup: setup{behaviors: []fakeprovider.Behavior{{FailFirst: 1, FailStatus: 429, RetryAfter: 1}},
				retry: routetable.Retry{Attempts: 2, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}},
			wantServedBy: 0, wantMin: time.Second, wantCounts: []int{2},
		},
		{
			name:         "429 fails over at once when a fallback exists",
			setup:        setup{behaviors: []fakeprovider.Behavior{{FailFirst: 1, FailStatus: 429, RetryAfter: 30}, {}}, retry: routetable.Retry{Attempts: 1}},
			wantServedBy: 1, wantCounts: []int{1, 1},
		},
		{
			name: "slow first byte over the threshold fails over",
			setup: setup{behaviors: []fakeprovider.Behavior{{FirstByteDelay: 3 * time.Second}, {}}, retry: routetable.Retry{Attempts: 1},
				timeouts: routetable.Timeouts{FirstByte: 200 * time.Millisecond}},
			wantServedBy: 1, wantCounts: []int{1, 1},
			check: func(t *testing.T, r result) {
				if r.duration > 2*time.Second {
					t.Errorf("took %v; the first-byte threshold should have cut the slow target at 200ms", r.duration)
				}
			},
		},
		{
			name: "slow first byte over the threshold fails over (stream)",
			setup: setup{behaviors: []fakeprovider.Behavior{{FirstByteDelay: 3 * time.Second}, {}}, retry: routetable.Retry{Attempts: 1},
				timeouts: routetable.Timeouts{FirstByte: 200 * time.Millisecond}, stream: true},
			wantServedBy: 1, wantCounts: []int{1, 1},
		},
		{
			name:         "stream dying before its first event fails over invisibly",
			setup:        setup{behaviors: []fakeprovider.Behavior{{}, {}}, hangup: []bool{true, false}, retry: routetable.Retry{Attempts: 1}, stream: true},
			wantServedBy: 1, wantCounts: []int{1, 1},
		},
		{
			name:         "stream dying mid-way ends with an in-stream error, no retry",
			setup:        setup{behaviors: []fakeprovider.Behavior{{DieAfterChunks: 3, Chunks: 8}, {}}, retry: routetable.Retry{Attempts: 3}, stream: true},
			wantServedBy: 0, wantCounts: []int{1, 0},
			check: func(t *testing.T, r result) {
				if !strings.Contains(r.body, `"error"`) || strings.Contains(r.body, "data: [DONE]") {
					t.Errorf("a broken stream must end with an error event and no [DONE]:\n%s", r.body)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var urls []string
			var fakes []*fakeprovider.Server
			for i, b := range tc.behaviors {
				switch {
				case i < len(tc.refused) && tc.refused[i]:
					urls = append(urls, refusedURL(t))
					fakes = append(fakes, nil)
				case i < len(tc.hangup) && tc.hangup[i]:
					urls = append(urls, hangupURL(t))
					fakes = append(fakes, nil)
				default:
					f := fakeprovider.Start(b)
					t.Cleanup(f.Close)
					urls = append(urls, f.URL)
					fakes = append(fakes, f)
				}
			}
			_, url := serveTable(t, chainTable(urls, tc.retry, tc.timeouts, true))
			r := chat(t, http.DefaultClient, url, tc.stream)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if got, want := r.header.Get("x-tollgate-provider"), "p"+string(rune('0'+tc.wantServedBy)); got != want {
				t.Errorf("served by %q, want %q", got, want)
			}
			if tc.check == nil && tc.stream && !strings.Contains(r.body, "data: [DONE]") {
				t.Errorf("stream did not end cleanly:\n%s", r.body)
			}
			if tc.check == nil && !tc.stream && !strings.Contains(r.body, "echo: hello") {
				t.Errorf("body = %s", r.body)
			}
			if r.duration < tc.wantMin {
				t.Errorf("took %v, want at least %v (Retry-After)", r.duration, tc.wantMin)
			}
			for i, want := range tc.wantCounts {
				if fakes[i] != nil && fakes[i].Count() != want {
					t.Errorf("provider %d received %d requests, want %d", i, fakes[i].Count(), want)
				}
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func TestAllTargetsDownGivesOneClearError(t *testing.T) {
	_, url := serveTable(t, chainTable([]string{refusedURL(t), refusedURL(t)}, routetable.Retry{Attempts: 1}, routetable.Timeouts{}, true))
	r := chat(t, http.DefaultClient, url, false)
	if r.status != http.StatusBadGateway || !strings.Contains(r.body, `"error"`) || strings.Contains(r.body, "127.0.0.1") {
		t.Fatalf("status %d body %s; want one 502 OpenAI error that does not leak upstream addresses", r.status, r.body)
	}
}

// TestSoakShiftsTrafficFromBadTargets sends 10,000 requests to a route
// over three providers: one healthy, one failing 30% of the time, one slow.
// No client may see an error, and the healthy provider must end up with
// most of the traffic.
func TestSoakShiftsTrafficFromBadTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test skipped in -short mode")
	}
	good := fakeprovider.Start(fakeprovider.Behavior{})
	flaky := fakeprovider.Start(fakeprovider.Behavior{FailRatio: 0.3})
	slow := fakeprovider.Start(fakeprovider.Behavior{FirstByteDelay: 15 * time.Millisecond})
	for _, f := range []*fakeprovider.Server{good, flaky, slow} {
		t.Cleanup(f.Close)
	}
	tbl := chainTable([]string{good.URL, flaky.URL, slow.URL}, routetable.Retry{Attempts: 1}, routetable.Timeouts{Request: 10 * time.Second}, false)
	tbl.Routes[0].Balancing = routetable.BalancingLeastLatency
	_, url := serveTable(t, tbl)

	const total, workers = 10000, 16
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var next, failures atomic.Int64
	served := map[string]int{}
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	body := []byte(`{"model":"chain","messages":[{"role":"user","content":"hello"}]}`)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= total && ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/chat/completions", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+testKey)
				resp, err := client.Do(req)
				if err != nil {
					failures.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failures.Add(1)
					continue
				}
				mu.Lock()
				served[resp.Header.Get("x-tollgate-provider")]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("soak did not finish in time")
	}
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed; failover must hide every upstream failure", n, total)
	}
	t.Logf("served: %v; upstream requests: good=%d flaky=%d slow=%d", served, good.Count(), flaky.Count(), slow.Count())
	if served["p0"] < total/2 {
		t.Errorf("healthy provider served %d of %d; traffic must shift to it", served["p0"], total)
	}
	if served["p1"] >= served["p0"]/2 || served["p2"] >= served["p0"]/2 {
		t.Errorf("bad providers still get too much traffic: %v", served)
	}
}

// TestCarriedToolCallStateIsCutForOtherProviders continues a tool loop that
// started on Gemini (its tool call ids carry thought signatures) on other
// providers: they receive the short id proper, paired consistently.
func TestCarriedToolCallStateIsCutForOtherProviders(t *testing.T) {
	g := startGateway(t)
	longID := "call_0123456789abcdefghijklmn_0__ts1" + strings.Repeat("c2lnbmF0dXJl", 200)
	body := `{"model":"MODEL","messages":[{"role":"user","content":"weather in Paris"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"` + longID + `","type":"function","function":{"name":"get_weather","arguments":"{\"input\":\"Paris\"}"}}]},` +
		`{"role":"tool","tool_call_id":"` + longID + `","content":"sunny"}],` +
		`"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}`
	for _, at := range []struct {
		typ   routetable.ProviderType
		model string
	}{{routetable.ProviderOpenAI, "via-openai"}, {routetable.ProviderAnthropic, "via-anthropic"}, {routetable.ProviderBedrock, "via-bedrock"}} {
		req, _ := http.NewRequest("POST", g.URL+"/v1/chat/completions", strings.NewReader(strings.Replace(body, "MODEL", at.model, 1)))
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "tool said: sunny") {
			t.Fatalf("%s: %d %s", at.typ, resp.StatusCode, b)
		}
		recs := g.fakes[at.typ].Requests()
		sent := string(recs[len(recs)-1].Body)
		if strings.Contains(sent, "__ts1") || strings.Count(sent, "call_0123456789abcdefghijklmn_0") != 2 {
			t.Errorf("%s received:\n%s\nwant the short id on the call and on its result", at.typ, sent)
		}
	}
}
