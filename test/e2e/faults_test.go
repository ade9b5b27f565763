package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"tollgate.dev/tollgate/dataplane/eventstream"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/server"
	"tollgate.dev/tollgate/dataplane/sse"
	"tollgate.dev/tollgate/dataplane/translate"
	"tollgate.dev/tollgate/dataplane/translate/providers"
	"tollgate.dev/tollgate/test/fakeprovider"
)

// rawUpstream is a loopback server that reads each HTTP request and hands
// the connection to answer, which writes exact bytes (or none). Connections
// still open are closed when the test ends, so an answer that blocks (a
// writer the gateway stopped reading, a server that never answers) ends.
func rawUpstream(t *testing.T, answer func(c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				answer(c)
			}()
		}
	}()
	return "http://" + l.Addr().String()
}

// reset closes c with an RST instead of a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

const streamHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"

// upstreamFormat is one provider wire format, with the bytes of a healthy
// stream's start (enough for the gateway to commit to the client) and end.
type upstreamFormat struct {
	typ   routetable.ProviderType
	start string
	end   string
}

var faultFormats = []upstreamFormat{
	{
		typ: routetable.ProviderOpenAI,
		start: `data: {"id":"chatcmpl-up","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}` + "\n\n" +
			`data: {"id":"chatcmpl-up","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}` + "\n\n",
		end: `data: {"id":"chatcmpl-up","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n" +
			"data: [DONE]\n\n",
	},
	{
		typ: routetable.ProviderAnthropic,
		start: "event: message_start\n" + `data: {"type":"message_start","message":{"id":"msg_up","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}}` + "\n\n" +
			"event: content_block_start\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` + "\n\n" +
			"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}` + "\n\n" +
			"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}` + "\n\n",
		end: "event: content_block_stop\n" + `data: {"type":"content_block_stop","index":0}` + "\n\n" +
			"event: message_delta\n" + `data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}` + "\n\n" +
			"event: message_stop\n" + `data: {"type":"message_stop"}` + "\n\n",
	},
}

// faultTable is route "chain" with the faulty upstream of type typ first
// and, when fallbackURL is set, a healthy OpenAI fake as its fallback.
func faultTable(typ routetable.ProviderType, faultURL, fallbackURL string, timeouts routetable.Timeouts) *routetable.Table {
	tbl := &routetable.Table{Keys: []routetable.Key{{ID: "team-a/app", Namespace: "team-a", Name: "app", Team: "a", Hash: server.HashKey(testKey)}}}
	route := routetable.Route{ID: "team-a/chain", Namespace: "team-a", Name: "chain", Model: "chain", Retry: routetable.Retry{Attempts: 1},
		Timeouts: timeouts, Balancing: routetable.BalancingWeighted}
	tbl.Providers = append(tbl.Providers, newProvider(typ, "p0", faultURL))
	route.Targets = []routetable.Target{{Provider: "team-a/p0", Model: "m-p0", Weight: 1}}
	if fallbackURL != "" {
		tbl.Providers = append(tbl.Providers, newProvider(routetable.ProviderOpenAI, "p1", fallbackURL))
		route.Fallbacks = []routetable.Target{{Provider: "team-a/p1", Model: "m-p1", Weight: 1}}
	}
	tbl.Routes = []routetable.Route{route}
	return tbl
}

// wantInStreamError checks a committed stream that broke: 200, the text
// sent before the fault, an error event, and no [DONE].
func wantInStreamError(t *testing.T, r result, mentions string) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200 (the stream had started): %s", r.status, r.body)
	}
	if !strings.Contains(r.body, `"Hel"`) {
		t.Errorf("the content sent before the fault is missing:\n%s", r.body)
	}
	if !strings.Contains(r.body, `"error"`) || strings.Contains(r.body, "data: [DONE]") {
		t.Errorf("a broken stream must end with an in-stream error event and no [DONE]:\n%s", r.body)
	}
	if mentions != "" && !strings.Contains(r.body, mentions) {
		t.Errorf("the error event does not say %q:\n%s", mentions, r.body)
	}
	if strings.Contains(r.body, "127.0.0.1") {
		t.Errorf("the error leaks the upstream address:\n%s", r.body)
	}
}

// wantServedByFallback checks an invisible failover to the healthy fake.
func wantServedByFallback(t *testing.T, r result, stream bool, fallback *fakeprovider.Server) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200 from the fallback: %s", r.status, r.body)
	}
	if got := r.header.Get("x-tollgate-provider"); got != "p1" {
		t.Errorf("served by %q, want the fallback p1", got)
	}
	if !strings.Contains(r.body, "echo") {
		t.Errorf("the fallback's answer is missing:\n%s", r.body)
	}
	if stream && (!strings.Contains(r.body, "data: [DONE]") || strings.Contains(r.body, `"error"`)) {
		t.Errorf("the failover must be invisible: a clean stream ending in [DONE]:\n%s", r.body)
	}
	if fallback.Count() != 1 {
		t.Errorf("fallback received %d requests, want 1", fallback.Count())
	}
}

// TestUpstreamFaults drives each upstream fault through the gateway, for
// the OpenAI and the Anthropic wire format. A fault before the first event
// fails over invisibly; after it, the client gets an in-stream error event
// and no [DONE]. The replica serves a clean request after every case.
func TestUpstreamFaults(t *testing.T) {
	const huge = 64 << 20
	cases := []struct {
		name     string
		stream   bool
		answer   func(f upstreamFormat) func(c net.Conn)
		fallback bool
		timeouts routetable.Timeouts
		check    func(t *testing.T, r result, fallback *fakeprovider.Server)
	}{
		{
			name: "reset mid-stream gives an in-stream error", stream: true, fallback: true,
			answer: func(f upstreamFormat) func(net.Conn) {
				return func(c net.Conn) { _, _ = io.WriteString(c, streamHead+f.start); reset(c) }
			},
			check: func(t *testing.T, r result, fb *fakeprovider.Server) {
				wantInStreamError(t, r, "")
				if fb.Count() != 0 {
					t.Errorf("a committed stream must not be retried elsewhere; fallback got %d", fb.Count())
				}
			},
		},
		{
			name: "garbage instead of SSE fails over invisibly", stream: true, fallback: true,
			answer: func(upstreamFormat) func(net.Conn) {
				return func(c net.Conn) {
					_, _ = io.WriteString(c, streamHead+"event: message_start\ndata: <html><body>502 Bad Gateway</body></html>\n\n")
				}
			},
			check: func(t *testing.T, r result, fb *fakeprovider.Server) { wantServedByFallback(t, r, true, fb) },
		},
		{
			name: "non-SSE bytes and close before any event fail over invisibly", stream: true, fallback: true,
			answer: func(upstreamFormat) func(net.Conn) {
				return func(c net.Conn) {
					_, _ = io.WriteString(c, streamHead+"\x00\xff\xfe garbage without a single field\r\n\x01\x02")
				}
			},
			check: func(t *testing.T, r result, fb *fakeprovider.Server) { wantServedByFallback(t, r, true, fb) },
		},
		{
			name: "garbage after the first event gives an in-stream error", stream: true, fallback: true,
			answer: func(f upstreamFormat) func(net.Conn) {
				return func(c net.Conn) {
					_, _ = io.WriteString(c, streamHead+f.start+"event: content_block_delta\ndata: {not json at all\n\n"+f.end)
				}
			},
			check: func(t *testing.T, r result, fb *fakeprovider.Server) { wantInStreamError(t, r, "") },
		},
		{
			name: "truncated SSE (mid-event, no terminator) gives an in-stream error", stream: true, fallback: true,
			answer: func(f upstreamFormat) func(net.Conn) {
				return func(c net.Conn) {
					_, _ = io.WriteString(c, streamHead+f.start+"event: content_block_delta\n"+`data: {"type":"content_block_del`)
				}
			},
			check: func(t *testing.T, r result, fb *fakeprovider.Server) { wantInStreamError(t, r, "") },
		},
		{
			name: "stream ending cleanly between events but without [DONE]/message_stop gives an in-stream error", stream: true, fallback: true,
			answer: func(f upstreamFormat) func(net.Conn) {
				return func(c net.Conn) { _, _ = io.WriteString(c, streamHead+f.start) }
			},
			check: func(t *testing.T, r result, fb *fakeprovider.Server) { wantInStreamError(t, r, "") },
		},
		{
			name: "huge SSE line before the first event is bounded and fails over", stream: true, fallback: true,
			answer: func(upstreamFormat) func(net.Conn) {
				return func(c net.Conn) { writeHugeLine(c, streamHead+"data: ", huge) }
			},
			check: func(t *testing.T, r result, fb *fakeprovider.Server) { wantServedByFallback(t, r, true, fb) },
		},
		{
			name: "huge SSE line after the first event is bounded and gives an in-stream error", stream: true, fallback: true,
			answer: func(f upstreamFormat) func(net.Conn) {
				return func(c net.Conn) { writeHugeLine(c, streamHead+f.start+"event: content_block_delta\ndata: ", huge) }
			},
			check: func(t *testing.T, r result, fb *fakeprovider.Server) {
				wantInStreamError(t, r, "size limit")
			},
		},
		{
			name: "non-JSON 200 body fails over", fallback: true,
			answer: func(upstreamFormat) func(net.Conn) {
				return func(c net.Conn) { writeBody(c, "application/json", "<html><body>upstream proxy error</body></html>") }
			},
			check: func(t *testing.T, r result, fb *fakeprovider.Server) { wantServedByFallback(t, r, false, fb) },
		},
		{
			name: "200 body cut short of its Content-Length fails over", fallback: true,
			answer: func(upstreamFormat) func(net.Conn) {
				return func(c net.Conn) {
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"id\":\"chatcmpl-up\",\"choices\":[")
				}
			},
			check: func(t *testing.T, r result, fb *fakeprovider.Server) { wantServedByFallback(t, r, false, fb) },
		},
		{
			name: "non-JSON 200 body without a fallback is a 502 OpenAI error",
			answer: func(upstreamFormat) func(net.Conn) {
				return func(c net.Conn) { writeBody(c, "application/json", "<html><body>upstream proxy error</body></html>") }
			},
			check: func(t *testing.T, r result, _ *fakeprovider.Server) {
				wantOpenAIError(t, r, http.StatusBadGateway, "invalid_upstream_response")
			},
		},
		{
			name: "an upstream that never answers hits the request deadline: 504",
			answer: func(upstreamFormat) func(net.Conn) {
				return func(c net.Conn) { _, _ = io.Copy(io.Discard, c) } // holds the connection until the gateway gives up
			},
			timeouts: routetable.Timeouts{Request: 300 * time.Millisecond},
			check: func(t *testing.T, r result, _ *fakeprovider.Server) {
				wantOpenAIError(t, r, http.StatusGatewayTimeout, "timeout")
				if r.duration > 3*time.Second {
					t.Errorf("took %v; the 300ms request deadline must end it", r.duration)
				}
			},
		},
		{
			name: "an upstream that never answers a stream hits the request deadline: 504", stream: true,
			answer: func(upstreamFormat) func(net.Conn) {
				return func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }
			},
			timeouts: routetable.Timeouts{Request: 300 * time.Millisecond},
			check: func(t *testing.T, r result, _ *fakeprovider.Server) {
				wantOpenAIError(t, r, http.StatusGatewayTimeout, "timeout")
				if r.duration > 3*time.Second {
					t.Errorf("took %v; the 300ms request deadline must end it", r.duration)
				}
			},
		},
	}
	client := &http.Client{Timeout: 30 * time.Second}
	for _, f := range faultFormats {
		for _, tc := range cases {
			t.Run(string(f.typ)+"/"+tc.name, func(t *testing.T) {
				fault := rawUpstream(t, tc.answer(f))
				fb := fakeprovider.Start(fakeprovider.Behavior{Chunks: 1})
				t.Cleanup(fb.Close)
				fbURL := ""
				if tc.fallback {
					fbURL = fb.URL
				}
				srv, url := serveTable(t, faultTable(f.typ, fault, fbURL, tc.timeouts))
				r := chat(t, client, url, tc.stream)
				tc.check(t, r, fb)

				// The replica keeps serving: a healthy route answers.
				good := fakeprovider.Start(fakeprovider.Behavior{Chunks: 1})
				t.Cleanup(good.Close)
				tbl := faultTable(routetable.ProviderOpenAI, good.URL, "", routetable.Timeouts{})
				if err := tbl.Finalize(); err != nil {
					t.Fatal(err)
				}
				if err := srv.SetTable(tbl); err != nil {
					t.Fatal(err)
				}
				if r := chat(t, client, url, tc.stream); r.status != http.StatusOK {
					t.Fatalf("after the fault the replica answered %d: %s", r.status, r.body)
				}
			})
		}
	}
}

// TestUpstreamFaultsAnthropicClient repeats the stream faults for a client
// on the Anthropic Messages API: a fault after the first event ends the
// stream with an Anthropic error event and no message_stop; before it, the
// failover is invisible and the stream ends with message_stop.
func TestUpstreamFaultsAnthropicClient(t *testing.T) {
	cases := []struct {
		name      string
		answer    func(f upstreamFormat) func(c net.Conn)
		failsOver bool
	}{
		{name: "reset mid-stream", answer: func(f upstreamFormat) func(net.Conn) {
			return func(c net.Conn) { _, _ = io.WriteString(c, streamHead+f.start); reset(c) }
		}},
		{name: "truncated mid-event", answer: func(f upstreamFormat) func(net.Conn) {
			return func(c net.Conn) {
				_, _ = io.WriteString(c, streamHead+f.start+"event: content_block_delta\n"+`data: {"type":"content_block_del`)
			}
		}},
		{name: "huge line after the first event", answer: func(f upstreamFormat) func(net.Conn) {
			return func(c net.Conn) { writeHugeLine(c, streamHead+f.start+"data: ", 64<<20) }
		}},
		{name: "garbage before the first event", failsOver: true, answer: func(upstreamFormat) func(net.Conn) {
			return func(c net.Conn) { _, _ = io.WriteString(c, streamHead+"data: <html>oops</html>\n\n") }
		}},
	}
	for _, f := range faultFormats {
		for _, tc := range cases {
			t.Run(string(f.typ)+"/"+tc.name, func(t *testing.T) {
				fb := fakeprovider.Start(fakeprovider.Behavior{Chunks: 1})
				t.Cleanup(fb.Close)
				_, url := serveTable(t, faultTable(f.typ, rawUpstream(t, tc.answer(f)), fb.URL, routetable.Timeouts{}))
				req, _ := http.NewRequest("POST", url+"/v1/messages",
					strings.NewReader(`{"model":"chain","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hello"}]}`))
				req.Header.Set("x-api-key", testKey)
				req.Header.Set("anthropic-version", "2023-06-01")
				resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				body := string(b)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				if tc.failsOver {
					if !strings.Contains(body, "event: message_stop") || strings.Contains(body, "event: error") || fb.Count() != 1 {
						t.Fatalf("want an invisible failover ending in message_stop (fallback got %d):\n%s", fb.Count(), body)
					}
					return
				}
				if !strings.Contains(body, `"Hel"`) || !strings.Contains(body, "event: error") || strings.Contains(body, "event: message_stop") {
					t.Fatalf("want the content so far, an error event and no message_stop:\n%s", body)
				}
				if strings.Contains(body, "127.0.0.1") {
					t.Errorf("the error leaks the upstream address:\n%s", body)
				}
			})
		}
	}
}

func wantOpenAIError(t *testing.T, r result, status int, code string) {
	t.Helper()
	if r.status != status || !strings.Contains(r.body, `"error"`) || !strings.Contains(r.body, `"code":"`+code+`"`) {
		t.Fatalf("got %d %s; want %d with an OpenAI error, code %q", r.status, r.body, status, code)
	}
	if strings.Contains(r.body, "127.0.0.1") {
		t.Errorf("the error leaks the upstream address: %s", r.body)
	}
}

func writeBody(c net.Conn, contentType, body string) {
	_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", contentType, len(body), body)
}

// writeHugeLine writes head and then n bytes without a newline, stopping
// when the gateway closes the connection.
func writeHugeLine(c net.Conn, head string, n int) {
	if _, err := io.WriteString(c, head); err != nil {
		return
	}
	block := bytes.Repeat([]byte("a"), 64<<10)
	for sent := 0; sent < n; sent += len(block) {
		if _, err := c.Write(block); err != nil {
			return
		}
	}
}

// countingReader yields endless 'a' bytes (a line that never ends) and
// counts how many were read.
type countingReader struct{ n int }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	r.n += len(p)
	return len(p), nil
}

// TestStreamReadersAreBounded feeds each stream reader an endless line (or
// a frame that claims to be huge) and checks that it fails with a clear
// error after reading no more than its limit plus one buffer: memory per
// stream stays bounded whatever an upstream sends.
func TestStreamReadersAreBounded(t *testing.T) {
	const limit = 1 << 20
	const slack = 64 << 10 // bufio buffer and one read
	t.Run("SSE", func(t *testing.T) {
		src := &countingReader{}
		_, err := sse.NewReader(io.MultiReader(strings.NewReader("data: "), src), limit).Next()
		if !errors.Is(err, sse.ErrEventTooLarge) {
			t.Fatalf("err = %v, want ErrEventTooLarge", err)
		}
		if src.n > limit+slack {
			t.Errorf("read %d bytes of one line before failing; the limit is %d", src.n, limit)
		}
	})
	t.Run("SSE default limit", func(t *testing.T) {
		src := &countingReader{}
		_, err := sse.NewReader(src, 0).Next()
		if !errors.Is(err, sse.ErrEventTooLarge) {
			t.Fatalf("err = %v, want ErrEventTooLarge", err)
		}
		if src.n > sse.DefaultMaxEventSize+slack {
			t.Errorf("read %d bytes of one line before failing; the limit is %d", src.n, sse.DefaultMaxEventSize)
		}
	})
	t.Run("SSE many data lines", func(t *testing.T) {
		// Short lines that never end the event add up too.
		line := "data: " + strings.Repeat("b", 1000) + "\n"
		src := &repeatReader{s: line}
		_, err := sse.NewReader(src, limit).Next()
		if !errors.Is(err, sse.ErrEventTooLarge) {
			t.Fatalf("err = %v, want ErrEventTooLarge", err)
		}
		if src.n > limit+slack {
			t.Errorf("read %d bytes of one event before failing; the limit is %d", src.n, limit)
		}
	})
	t.Run("SSE lone CR terminators", func(t *testing.T) {
		// CR alone ends a line (the spec allows it): a long CR-only
		// stream is many small events, not one line over the limit, and
		// each event is dispatched without waiting for an LF.
		const events = 100000
		ev := "data: {\"n\":1}\r\r"
		r := sse.NewReader(strings.NewReader(strings.Repeat(ev, events)), limit)
		n := 0
		for {
			e, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("after %d events: %v", n, err)
			}
			if string(e.Data) != `{"n":1}` {
				t.Fatalf("event %d = %q", n, e.Data)
			}
			n++
		}
		if n != events || events*len(ev) <= limit {
			t.Fatalf("%d events of %d", n, events)
		}
		pr, pw := io.Pipe()
		defer pw.Close()
		go func() { _, _ = io.WriteString(pw, "data: first\r\r") }() // and then nothing more for now
		got := make(chan string, 1)
		go func() {
			e, err := sse.NewReader(pr, limit).Next()
			got <- fmt.Sprintf("%s %v", e.Data, err)
		}()
		select {
		case s := <-got:
			if s != "first <nil>" {
				t.Fatalf("got %q", s)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("an event ended by CR CR waited for more bytes")
		}
	})
	t.Run("NDJSON", func(t *testing.T) {
		src := &countingReader{}
		_, err := sse.NewLineReader(src, limit).Next()
		if !errors.Is(err, sse.ErrEventTooLarge) {
			t.Fatalf("err = %v, want ErrEventTooLarge", err)
		}
		if src.n > limit+slack {
			t.Errorf("read %d bytes of one line before failing; the limit is %d", src.n, limit)
		}
	})
	t.Run("eventstream", func(t *testing.T) {
		// A prelude that claims a 2 GiB message: refused before allocating.
		var prelude [12]byte
		binary.BigEndian.PutUint32(prelude[0:4], 2<<30)
		binary.BigEndian.PutUint32(prelude[4:8], 0)
		src := &countingReader{}
		_, err := eventstream.NewReader(io.MultiReader(bytes.NewReader(prelude[:]), src), limit).Next()
		if err == nil {
			t.Fatal("a 2 GiB frame was accepted")
		}
		if src.n > slack {
			t.Errorf("read %d bytes past a prelude that is over the limit", src.n)
		}
	})
}

// repeatReader repeats s forever and counts the bytes read.
type repeatReader struct {
	s   string
	off int
	n   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.s[r.off]
		r.off = (r.off + 1) % len(r.s)
	}
	r.n += len(p)
	return len(p), nil
}

// panicky wraps a translator and panics where told.
type panicky struct {
	translate.Translator
	inRequest         bool
	chunksBeforePanic int
}

func (p panicky) ChatRequest(ctx context.Context, req *openai.ChatRequest, t translate.Target) (*http.Request, error) {
	if p.inRequest {
		panic("injected fault in ChatRequest")
	}
	return p.Translator.ChatRequest(ctx, req, t)
}

func (p panicky) ChatStream(body io.Reader, t translate.Target, meta translate.StreamMeta) translate.ChunkReader {
	return &panickyChunks{ChunkReader: p.Translator.ChatStream(body, t, meta), after: p.chunksBeforePanic}
}

// panickyChunks panics in Next after the given number of chunks.
type panickyChunks struct {
	translate.ChunkReader
	after, n int
}

func (p *panickyChunks) Next() (*openai.ChatChunk, error) {
	if p.n++; p.n > p.after {
		panic("injected fault in a stream")
	}
	return p.ChunkReader.Next()
}

// TestPanicIsRecoveredAndCounted injects panics through a translator:
// before anything was sent the request gets a 500 OpenAI error; in a
// stream already under way the client keeps a well-formed SSE body with no
// [DONE] (no JSON error glued after the events). Every panic is counted in
// tollgate_panics_recovered_total, and the replica keeps serving.
func TestPanicIsRecoveredAndCounted(t *testing.T) {
	fake := fakeprovider.Start(fakeprovider.Behavior{Chunks: 1})
	t.Cleanup(fake.Close)
	var mu sync.Mutex
	var inject panicky
	translators := func(typ routetable.ProviderType) (translate.Translator, bool) {
		tr, ok := providers.For(typ)
		if !ok || typ != routetable.ProviderAnthropic {
			return tr, ok
		}
		mu.Lock()
		defer mu.Unlock()
		p := inject
		p.Translator = tr
		return p, true
	}
	reg := prometheus.NewRegistry()
	metrics := server.NewMetrics(reg)
	srv := server.New(server.Options{Translators: translators, Metrics: metrics})
	bad := faultTable(routetable.ProviderAnthropic, fake.URL, "", routetable.Timeouts{})
	good := faultTable(routetable.ProviderOpenAI, fake.URL, "", routetable.Timeouts{})
	for _, tbl := range []*routetable.Table{bad, good} {
		if err := tbl.Finalize(); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)

	cases := []struct {
		name   string
		inject panicky
		stream bool
		check  func(t *testing.T, status int, body string, readErr error)
	}{
		{name: "in ChatRequest", inject: panicky{inRequest: true}, check: want500},
		{name: "in the first stream read", inject: panicky{chunksBeforePanic: 0}, stream: true, check: want500},
		{name: "mid-stream", inject: panicky{chunksBeforePanic: 1}, stream: true, check: func(t *testing.T, status int, body string, _ error) {
			if status != http.StatusOK || strings.Contains(body, "data: [DONE]") {
				t.Errorf("got %d; want the committed 200 stream cut without [DONE]:\n%s", status, body)
			}
			for _, line := range strings.Split(body, "\n") {
				if line != "" && !strings.HasPrefix(line, "data: ") && !strings.HasPrefix(line, "event: ") {
					t.Errorf("the stream carries a line that is not SSE: %q", line)
				}
			}
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			inject = tc.inject
			mu.Unlock()
			if err := srv.SetTable(bad); err != nil {
				t.Fatal(err)
			}
			body := `{"model":"chain","messages":[{"role":"user","content":"hello"}]` + map[bool]string{true: `,"stream":true}`, false: `}`}[tc.stream]
			req, _ := http.NewRequest("POST", hs.URL+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+testKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, readErr := io.ReadAll(resp.Body)
			resp.Body.Close()
			tc.check(t, resp.StatusCode, string(b), readErr)
			if got := counterValue(t, metrics.Panics); got != float64(i+1) {
				t.Errorf("tollgate_panics_recovered_total = %v, want %d", got, i+1)
			}
			if err := srv.SetTable(good); err != nil {
				t.Fatal(err)
			}
			if r := chat(t, http.DefaultClient, hs.URL, tc.stream); r.status != http.StatusOK || !strings.Contains(r.body, "echo") {
				t.Fatalf("after a recovered panic the replica must keep serving; got %d %s", r.status, r.body)
			}
		})
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := false
	for _, mf := range mfs {
		exported = exported || mf.GetName() == "tollgate_panics_recovered_total"
	}
	if !exported {
		t.Error("tollgate_panics_recovered_total is not exported")
	}
}

func want500(t *testing.T, status int, body string, _ error) {
	t.Helper()
	if status != http.StatusInternalServerError || !strings.Contains(body, `"internal_error"`) {
		t.Errorf("a panic before the answer started must give a 500 OpenAI error; got %d %s", status, body)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// traffic sends requests to every replica in a loop until stopped, and
// counts the answers that were not 200.
type traffic struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	total    int
	failures []string
}

func (cp *controlPlane) startTraffic() *traffic {
	tr := &traffic{stop: make(chan struct{})}
	for _, r := range cp.gw.URLs {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-tr.stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				_, err := cp.served(c, r)
				tr.mu.Lock()
				tr.total++
				if err != nil {
					tr.failures = append(tr.failures, fmt.Sprintf("%s: %v", r, err))
				}
				tr.mu.Unlock()
			}
		}()
	}
	return tr
}

func (tr *traffic) count() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.total
}

// waitFor lets at least n more requests through (bounded).
func (tr *traffic) waitFor(t *testing.T, n int) {
	t.Helper()
	want := tr.count() + n
	eventually(t, 30*time.Second, fmt.Sprintf("%d more requests", n), func() error {
		if got := tr.count(); got < want {
			return fmt.Errorf("%d of %d", got, want)
		}
		return nil
	})
}

func (tr *traffic) finish(t *testing.T) {
	t.Helper()
	close(tr.stop)
	tr.wg.Wait()
	t.Logf("%d requests, %d failed", tr.total, len(tr.failures))
	if len(tr.failures) > 0 {
		t.Errorf("%d of %d requests failed; first: %s", len(tr.failures), tr.total, tr.failures[0])
	}
}

// TestControllerKilledDuringTraffic SIGKILLs the controller while both
// replicas serve a steady stream of requests, restarts it, and changes the
// Route: no request fails, and the change reaches both replicas.
func TestControllerKilledDuringTraffic(t *testing.T) {
	fake := fakeprovider.Start(fakeprovider.Behavior{})
	t.Cleanup(fake.Close)
	cp := startControlPlane(t, fake.URL)
	cp.createRoute(t, "gpt-a", 60*time.Second)
	tr := cp.startTraffic()
	tr.waitFor(t, 20)

	must(t, cp.gw.Controller.Cmd.Process.Kill())
	_ = cp.gw.Controller.Cmd.Wait()
	tr.waitFor(t, 100) // about half a second per replica with the controller gone
	_, err := cp.gw.Start("controller-2", cp.gw.ControllerArgs...)
	must(t, err)
	tr.waitFor(t, 20)
	cp.setTarget(t, "gpt-b")
	d := eventually(t, 60*time.Second, "both replicas follow a Route change after the controller restart", cp.allServe("gpt-b"))
	t.Logf("Route change reached both replicas %v after the update", d.Round(time.Millisecond))
	tr.waitFor(t, 20)
	tr.finish(t)
}

// TestAPIServerAwayAndBack stops kube-apiserver while both replicas serve
// traffic, starts it again (same address and certificates, etcd kept), and
// changes the Route: the replicas serve throughout, and the change
// propagates through the controller that lived through the outage.
func TestAPIServerAwayAndBack(t *testing.T) {
	fake := fakeprovider.Start(fakeprovider.Behavior{})
	t.Cleanup(fake.Close)
	cp := startControlPlane(t, fake.URL)
	cp.createRoute(t, "gpt-a", 60*time.Second)
	tr := cp.startTraffic()
	tr.waitFor(t, 20)

	api := cp.api.Env.ControlPlane.APIServer
	// Stop removes a generated certificate directory and Start would mint a
	// new serving CA that the controller's kubeconfig does not trust: keep
	// the directory's files and point the restart at the copy.
	keep := t.TempDir()
	files, err := os.ReadDir(api.CertDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(api.CertDir, f.Name()))
			if err != nil {
				t.Fatal(err)
			}
			must(t, os.WriteFile(filepath.Join(keep, f.Name()), b, 0o600))
		}
	}
	stopping := time.Now()
	must(t, api.Stop())
	t.Logf("kube-apiserver stopped in %v", time.Since(stopping).Round(time.Millisecond))
	tr.waitFor(t, 100)
	api.CertDir = keep
	must(t, api.Start())
	t.Log("kube-apiserver restarted")
	tr.waitFor(t, 20)
	cp.setTarget(t, "gpt-b")
	d := eventually(t, 90*time.Second, "both replicas follow a Route change after the API server returns", cp.allServe("gpt-b"))
	t.Logf("Route change reached both replicas %v after the update", d.Round(time.Millisecond))
	tr.waitFor(t, 20)
	tr.finish(t) // the change could only arrive through the controller that lived through the outage
}
