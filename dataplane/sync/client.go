// Package sync is the data plane's end of the push channel: it keeps one
// long-lived stream open to the controller, applies every routing table the
// controller pushes, and acknowledges (or rejects) each version. When the
// controller is unreachable the replica keeps serving the last table it
// applied and reconnects with capped, jittered exponential backoff.
//
// The messages are in dataplane/sync/wire, the server in controllers/push, the
// protocol in docs/push-channel.md.
package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/go-logr/logr"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/sync/wire"
)

// Backoff defaults for Client.
const (
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
)

// ErrUnauthorized is returned (and logged) when the controller refuses the
// replica's token.
var ErrUnauthorized = errors.New("controller refused the token (401)")

// ErrNoToken means neither Token nor a non-empty TokenFile is available.
var ErrNoToken = errors.New("no token to present to the controller")

// Client receives routing tables from the controller. Set the exported
// fields, then call Run once.
type Client struct {
	// URL is the controller's push address, e.g. http://tollgate-controller:8082.
	URL string
	// TokenFile holds the bearer token (a projected service-account token).
	// It is re-read on every connection because kubelet rotates it.
	TokenFile string
	// Token, when set, is used instead of TokenFile.
	Token string
	// ReplicaID names this replica to the controller (its pod name).
	ReplicaID string
	// Apply installs a decoded, finalized table. An error rejects the table:
	// the previous one stays in service and the controller is told why.
	Apply func(*routetable.Table) error
	// Report, if set, returns what this replica observes of its upstreams
	// (target health, MCP servers). It is attached, bounded, to every
	// heartbeat, and polled every ReportCheck so that a meaningful change
	// (wire.SameHealth) is sent at once rather than at the next heartbeat.
	Report func() *wire.Report
	// ReportCheck is how often Report is polled between heartbeats
	// (default 1s).
	ReportCheck time.Duration
	Log         logr.Logger

	// HTTPClient, if set, is used for the stream (e.g. for TLS or mTLS). It
	// must not have a Timeout: the stream lives for hours.
	HTTPClient *http.Client
	// MinBackoff and MaxBackoff bound the reconnect delay (defaults 500ms
	// and 10s); each delay is jittered to between half and all of the
	// current backoff.
	MinBackoff, MaxBackoff time.Duration

	synced  atomic.Bool
	version atomic.Pointer[string]
}

// Synced reports whether a table from the controller has been applied. It
// stays true while the controller is away: the replica serves its last table.
func (c *Client) Synced() bool { return c.synced.Load() }

// Version returns the version of the table applied last ("" before the first).
func (c *Client) Version() string {
	if v := c.version.Load(); v != nil {
		return *v
	}
	return ""
}

// BearerToken returns the bearer token to present to the controller, re-reading
// TokenFile on every call. Other data-plane code that calls the controller
// (usage reports) uses it, or Authorize, so the same identity is used.
func (c *Client) BearerToken() (string, error) {
	if c.Token != "" {
		return c.Token, nil
	}
	if c.TokenFile == "" {
		return "", ErrNoToken
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%w: %s is empty", ErrNoToken, c.TokenFile)
	}
	return tok, nil
}

// Authorize sets the Authorization header of a request to the controller.
func (c *Client) Authorize(r *http.Request) error {
	tok, err := c.BearerToken()
	if err != nil {
		return err
	}
	r.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

// Run keeps the stream to the controller open until ctx is done, then
// returns nil. Transient failures (controller away, 401, bad tables) are
// logged and retried; they never end Run.
func (c *Client) Run(ctx context.Context) error {
	if c.Apply == nil {
		return errors.New("sync: Client.Apply is required")
	}
	if _, err := url.Parse(c.URL); err != nil || c.URL == "" {
		return fmt.Errorf("sync: invalid controller URL %q", c.URL)
	}
	minB, maxB := c.MinBackoff, c.MaxBackoff
	if minB <= 0 {
		minB = DefaultMinBackoff
	}
	if maxB < minB {
		maxB = max(DefaultMaxBackoff, minB)
	}
	backoff := minB
	for {
		established, err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if established {
			backoff = minB
		}
		delay := backoff/2 + rand.N(backoff/2+1)
		c.Log.Error(err, "Push stream to the controller ended; serving the last table and reconnecting",
			"version", c.Version(), "retryIn", delay.Round(time.Millisecond))
		backoff = min(2*backoff, maxB)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

var errSilent = errors.New("controller silent for three heartbeats")

// session runs one stream. established reports whether the controller
// accepted it (sent hello), which resets the backoff.
func (c *Client) session(ctx context.Context) (established bool, err error) {
	tok, err := c.BearerToken()
	if err != nil {
		return false, err
	}
	u := strings.TrimSuffix(c.URL, "/") + wire.StreamPath + "?" + wire.ReplicaParam + "=" + url.QueryEscape(c.ReplicaID)

	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pr, pw := io.Pipe()
	stop := context.AfterFunc(sctx, func() { pw.CloseWithError(context.Cause(sctx)) })
	defer stop()
	defer pw.Close()

	req, err := http.NewRequestWithContext(sctx, http.MethodPost, u, pr)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", wire.ContentType)
	req.Header.Set("Accept", wire.ContentType)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return false, ErrUnauthorized
	default:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return false, fmt.Errorf("controller answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}

	var wmu gosync.Mutex
	send := func(m wire.Message) error {
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		wmu.Lock()
		defer wmu.Unlock()
		_, err = pw.Write(append(b, '\n'))
		return err
	}

	// Until hello says otherwise, assume the default heartbeat.
	silence := 3 * wire.DefaultHeartbeat
	watchdog := time.AfterFunc(silence, func() { cancel(errSilent) })
	defer watchdog.Stop()

	dec := json.NewDecoder(resp.Body)
	for {
		var m wire.Message
		if err := dec.Decode(&m); err != nil {
			if cause := context.Cause(sctx); cause != nil {
				return established, cause
			}
			if errors.Is(err, io.EOF) {
				return established, errors.New("controller closed the stream")
			}
			return established, fmt.Errorf("read: %w", err)
		}
		watchdog.Reset(silence)
		switch m.Type {
		case wire.TypeHello:
			if !established {
				established = true
				hb := time.Duration(m.HeartbeatMillis) * time.Millisecond
				if hb <= 0 {
					hb = wire.DefaultHeartbeat
				}
				silence = 3 * hb
				watchdog.Reset(silence)
				go c.heartbeats(sctx, hb, send)
				c.Log.Info("Connected to the controller", "url", c.URL, "heartbeat", hb)
			}
		case wire.TypeTable:
			if err := send(c.receive(m)); err != nil {
				return established, fmt.Errorf("send ack: %w", err)
			}
		case wire.TypeHeartbeat:
		default:
			// Unknown messages are ignored so the server can add new ones.
		}
	}
}

// DefaultReportCheck is how often Client.Report is polled for changes.
const DefaultReportCheck = time.Second

// heartbeats sends a heartbeat every interval, with the current report, and
// an early one whenever the report changed meaningfully since the last one
// sent. The first goes out at once, so a new controller learns the
// replica's view without waiting an interval.
func (c *Client) heartbeats(ctx context.Context, every time.Duration, send func(wire.Message) error) {
	t := time.NewTicker(every)
	defer t.Stop()
	var poll <-chan time.Time
	if c.Report != nil {
		d := c.ReportCheck
		if d <= 0 {
			d = DefaultReportCheck
		}
		pt := time.NewTicker(d)
		defer pt.Stop()
		poll = pt.C
	}
	var sent *wire.Report
	beat := func(r *wire.Report) error {
		sent = r
		return send(wire.Message{Type: wire.TypeHeartbeat, Version: c.Version(), Report: r})
	}
	if c.Report != nil {
		if err := beat(c.report()); err != nil {
			return
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			var r *wire.Report
			if c.Report != nil {
				r = c.report()
			}
			if err := beat(r); err != nil {
				return
			}
		case <-poll:
			if r := c.report(); !wire.SameHealth(sent, r) {
				if err := beat(r); err != nil {
					return
				}
				t.Reset(every)
			}
		}
	}
}

// report calls Report, bounding the result and surviving a panic (a broken
// report must not take the table channel down).
func (c *Client) report() (r *wire.Report) {
	defer func() {
		if p := recover(); p != nil {
			c.Log.Error(fmt.Errorf("panic: %v", p), "Building the replica status report failed")
			r = nil
		}
	}()
	return c.Report().Bound()
}

// receive decodes and applies one table and returns the answer (ack or
// nack) for the controller. A rejected table leaves the current one in
// service.
func (c *Client) receive(m wire.Message) wire.Message {
	nack := func(err error) wire.Message {
		c.Log.Error(err, "Rejected routing table; still serving the previous one", "version", m.Version, "serving", c.Version())
		return wire.Message{Type: wire.TypeNack, Version: m.Version, Error: err.Error()}
	}
	t, err := routetable.Decode(m.Table)
	if err != nil {
		return nack(err)
	}
	if t.Version != m.Version {
		return nack(fmt.Errorf("table version %s does not match message version %s", t.Version, m.Version))
	}
	if t.Version == c.Version() {
		// A reconnect re-sends the table we serve; nothing to apply.
		return wire.Message{Type: wire.TypeAck, Version: t.Version}
	}
	if err := c.apply(t); err != nil {
		return nack(fmt.Errorf("apply: %w", err))
	}
	v := t.Version
	c.version.Store(&v)
	c.synced.Store(true)
	return wire.Message{Type: wire.TypeAck, Version: v}
}

func (c *Client) apply(t *routetable.Table) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return c.Apply(t)
}

var defaultHTTPClient = &http.Client{Transport: &http.Transport{
	Proxy: http.ProxyFromEnvironment,
	DialContext: (&net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 15 * time.Second,
	}).DialContext,
	TLSHandshakeTimeout:   10 * time.Second,
	ResponseHeaderTimeout: 30 * time.Second,
	ForceAttemptHTTP2:     true,
	MaxIdleConnsPerHost:   2,
}}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return defaultHTTPClient
}
