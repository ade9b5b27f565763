// Package probe actively checks the health of LLM providers that ask for it
// (routetable.Provider.HealthCheckInterval): every replica sends each such
// provider a cheap, authenticated request (its model listing) on a timer
// and feeds the outcome into the router's live health, so a dead upstream
// (a local vLLM that crashed) is ejected before user traffic finds out, and
// taken back into service as soon as it answers again.
//
// Probes complement passive outlier detection rather than replace it: a
// probe that succeeds while the provider is healthy records nothing, so a
// provider whose model listing works but whose completions fail is still
// ejected by the requests that fail.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"tollgate.dev/tollgate/dataplane/router"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/anthropic"
	"tollgate.dev/tollgate/dataplane/translate/openai"
)

// Defaults for Options.
const (
	// DefaultTimeout bounds one probe (also capped at the interval).
	DefaultTimeout = 5 * time.Second
	// DefaultUnhealthyThreshold is how many probes in a row must fail
	// before the provider's targets are ejected. A failed probe is
	// repeated after ConfirmDelay rather than a whole interval later, so
	// a dead upstream is ejected within about a second while a single lost
	// packet ejects nothing.
	DefaultUnhealthyThreshold = 2
	// DefaultConfirmDelay is how soon a failed probe is repeated.
	DefaultConfirmDelay = time.Second
	// DefaultMinInterval is the shortest interval honoured; shorter ones
	// are raised to it so a typo cannot hammer an upstream.
	DefaultMinInterval = time.Second
	// maxBody is how much of a probe's answer is read (and discarded) so
	// the connection can be reused.
	maxBody = 64 << 10
)

// Options configure a Prober.
type Options struct {
	// Health receives the outcomes. Required.
	Health *router.Health
	// Client sends the probes; it should not follow redirects to other
	// hosts with credentials (the default does not follow any).
	Client *http.Client
	// Timeout bounds one probe (default DefaultTimeout, at most the
	// interval).
	Timeout time.Duration
	// UnhealthyThreshold is the number of consecutive failed probes that
	// eject (default DefaultUnhealthyThreshold).
	UnhealthyThreshold int
	// ConfirmDelay is how soon a failed probe is repeated (default
	// DefaultConfirmDelay, at most the interval).
	ConfirmDelay time.Duration
	// MinInterval raises shorter provider intervals (default
	// DefaultMinInterval).
	MinInterval time.Duration
	Log         logr.Logger
}

// Prober runs one probe loop per provider with a health-check interval in
// the current table. Call SetTable with every applied table and Close on
// shutdown. It is safe for concurrent use.
type Prober struct {
	o Options

	mu     sync.Mutex
	loops  map[string]*loop // by provider ID
	closed bool
	wg     sync.WaitGroup
}

// loop probes one provider configuration until cancelled.
type loop struct {
	fp     string // configuration fingerprint; a change restarts the loop
	cancel context.CancelFunc

	mu      sync.Mutex
	targets []router.TargetKey
}

// New returns a Prober that probes nothing until SetTable.
func New(o Options) *Prober {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.UnhealthyThreshold <= 0 {
		o.UnhealthyThreshold = DefaultUnhealthyThreshold
	}
	if o.ConfirmDelay <= 0 {
		o.ConfirmDelay = DefaultConfirmDelay
	}
	if o.MinInterval <= 0 {
		o.MinInterval = DefaultMinInterval
	}
	if o.Client == nil {
		o.Client = defaultClient()
	}
	return &Prober{o: o, loops: map[string]*loop{}}
}

func defaultClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.MaxIdleConnsPerHost = 1
	return &http.Client{
		Transport: tr,
		// A redirect could carry the credential to another host; a probe
		// that is redirected has still been answered.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// SetTable starts probing the providers of t that have a health-check
// interval and are used by some route, stops probing the others, and
// restarts loops whose provider configuration changed.
func (p *Prober) SetTable(t *routetable.Table) {
	if t == nil {
		return
	}
	models := targetModels(t)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	keep := map[string]bool{}
	for i := range t.Providers {
		prov := t.Providers[i] // a copy: the loop keeps it
		keys := models[prov.ID]
		if prov.HealthCheckInterval <= 0 || len(keys) == 0 || !Supported(prov.Type) {
			continue
		}
		keep[prov.ID] = true
		fp := fingerprint(&prov)
		l := p.loops[prov.ID]
		if l != nil && l.fp != fp {
			l.cancel()
			l = nil
		}
		if l == nil {
			ctx, cancel := context.WithCancel(context.Background())
			l = &loop{fp: fp, cancel: cancel}
			p.loops[prov.ID] = l
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.run(ctx, &prov, l)
			}()
		}
		l.mu.Lock()
		l.targets = keys
		l.mu.Unlock()
	}
	for id, l := range p.loops {
		if !keep[id] {
			l.cancel()
			delete(p.loops, id)
		}
	}
}

// Close stops every loop and waits for them.
func (p *Prober) Close() {
	p.mu.Lock()
	p.closed = true
	for id, l := range p.loops {
		l.cancel()
		delete(p.loops, id)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Supported reports whether providers of type t can be probed. Bedrock
// cannot (yet): its model listing is on a different, SigV4-signed control
// plane endpoint; passive outlier detection still covers it.
func Supported(t routetable.ProviderType) bool {
	switch t {
	case routetable.ProviderOpenAI, routetable.ProviderOpenAICompatible, routetable.ProviderAzureOpenAI,
		routetable.ProviderOllama, routetable.ProviderAnthropic, routetable.ProviderGemini:
		return true
	}
	return false
}

// targetModels lists, per provider ID, the targets routes send to (targets,
// fallbacks and intent-rule targets), sorted.
func targetModels(t *routetable.Table) map[string][]router.TargetKey {
	seen := map[router.TargetKey]bool{}
	out := map[string][]router.TargetKey{}
	add := func(ts []routetable.Target) {
		for _, tg := range ts {
			k := router.TargetKey{Provider: tg.Provider, Model: tg.Model}
			if !seen[k] {
				seen[k] = true
				out[k.Provider] = append(out[k.Provider], k)
			}
		}
	}
	for i := range t.Routes {
		r := &t.Routes[i]
		add(r.Targets)
		add(r.Fallbacks)
		for j := range r.Rules {
			add(r.Rules[j].Targets)
		}
	}
	for _, ks := range out {
		slices.SortFunc(ks, func(a, b router.TargetKey) int { return strings.Compare(a.Model, b.Model) })
	}
	return out
}

// fingerprint identifies what a probe depends on. It holds credentials, so
// it is never logged.
func fingerprint(p *routetable.Provider) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x00%s\x00%s\x00%s\x00%d\x00%d", p.Type, p.BaseURL, p.APIKey, p.APIVersion, p.HealthCheckInterval, p.Timeout)
	keys := make([]string, 0, len(p.Headers))
	for k := range p.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "\x00%s=%s", k, p.Headers[k])
	}
	return b.String()
}

// run probes prov every interval until ctx is done. The first probe goes
// out at once.
func (p *Prober) run(ctx context.Context, prov *routetable.Provider, l *loop) {
	interval := max(prov.HealthCheckInterval, p.o.MinInterval)
	timeout := min(p.o.Timeout, interval)
	if prov.Timeout > 0 {
		timeout = min(prov.Timeout, interval)
	}
	confirm := min(p.o.ConfirmDelay, interval)
	log := p.o.Log.WithValues("provider", prov.ID, "type", string(prov.Type))
	failures := 0
	down := false
	for {
		latency, err := p.probe(ctx, prov, timeout)
		if ctx.Err() != nil {
			return
		}
		l.mu.Lock()
		targets := l.targets
		l.mu.Unlock()
		next := interval
		if err != nil {
			failures++
			if failures >= p.o.UnhealthyThreshold {
				if !down {
					log.Info("Provider health probe failed; ejecting its targets", "failures", failures, "error", err.Error())
				}
				down = true
				for _, k := range targets {
					p.o.Health.Eject(k)
				}
			} else {
				next = confirm
				log.V(1).Info("Provider health probe failed; confirming", "error", err.Error(), "retryIn", next)
			}
		} else {
			failures = 0
			if down {
				down = false
				log.Info("Provider health probe succeeded again; returning its targets to service", "latency", latency.Round(time.Millisecond))
				for _, k := range targets {
					p.o.Health.Restore(k)
				}
			}
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func ejected(h *router.Health, k router.TargetKey) bool {
	for _, s := range h.Snapshot() {
		if s.Key == k {
			return s.Ejected
		}
	}
	return false
}

// ErrStatus is wrapped by probe errors for answers that mean the provider
// cannot serve (5xx, or its credential refused).
var ErrStatus = errors.New("provider answered")

// probe sends one probe and reports why it failed (nil: healthy) and how
// long the answer took. Errors never contain the URL (it may carry
// userinfo) or any header.
func (p *Prober) probe(ctx context.Context, prov *routetable.Provider, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := Request(ctx, prov)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := p.o.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("no answer within %s", timeout)
		}
		return 0, err
	}
	latency := time.Since(start)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	if Healthy(resp.StatusCode) {
		return latency, nil
	}
	return latency, fmt.Errorf("%w %d", ErrStatus, resp.StatusCode)
}

// Healthy decides whether a probe's status code means the provider can
// serve: any 2xx, and answers that only say the probe itself was not
// welcome (404 or 405: the server has no model listing; 429: it is alive
// but rate-limited, which passive detection handles per request). 401 and
// 403 fail: every request with this credential would fail too. So does
// every 5xx and any other 4xx.
func Healthy(code int) bool {
	switch {
	case code >= 200 && code <= 299:
		return true
	case code == http.StatusNotFound, code == http.StatusMethodNotAllowed, code == http.StatusTooManyRequests:
		return true
	}
	return false
}

// Request builds the probe for prov: the cheapest authenticated call each
// API has, its model listing.
//
//	OpenAI, OpenAI-compatible (vLLM, llama.cpp, ...): GET {base}/v1/models
//	Azure OpenAI:  GET {base}/openai/models?api-version=...
//	Ollama:        GET {base}/api/tags
//	Anthropic:     GET {base}/v1/models
//	Gemini:        GET {base}/v1beta/models
//
// Static provider headers go first and the credential last, as on user
// requests, so a configured header cannot replace it.
func Request(ctx context.Context, prov *routetable.Provider) (*http.Request, error) {
	base := strings.TrimRight(prov.BaseURL, "/")
	var u string
	switch prov.Type {
	case routetable.ProviderOpenAI, routetable.ProviderOpenAICompatible:
		if strings.HasSuffix(base, "/v1") {
			u = base + "/models"
		} else {
			u = base + "/v1/models"
		}
	case routetable.ProviderAzureOpenAI:
		v := prov.APIVersion
		if v == "" {
			v = openai.DefaultAzureAPIVersion
		}
		u = base + "/openai/models?api-version=" + url.QueryEscape(v)
	case routetable.ProviderOllama:
		if !strings.HasSuffix(base, "/api") {
			base += "/api"
		}
		u = base + "/tags"
	case routetable.ProviderAnthropic:
		u = base + "/v1/models"
	case routetable.ProviderGemini:
		u = base + "/v1beta/models"
	default:
		return nil, fmt.Errorf("probe: providers of type %s cannot be probed", prov.Type)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("probe: provider %s: invalid base URL", prov.ID)
	}
	for k, v := range prov.Headers {
		req.Header.Set(k, v)
	}
	switch prov.Type {
	case routetable.ProviderAzureOpenAI:
		req.Header.Del("Authorization")
		req.Header.Set("api-key", prov.APIKey)
	case routetable.ProviderAnthropic:
		req.Header.Set("x-api-key", prov.APIKey)
		v := prov.APIVersion
		if v == "" {
			v = anthropic.DefaultVersion
		}
		req.Header.Set("anthropic-version", v)
	case routetable.ProviderGemini:
		if prov.APIKey != "" {
			req.Header.Set("x-goog-api-key", prov.APIKey)
		}
	default:
		if prov.APIKey != "" {
			req.Header.Set("Authorization", "Bearer "+prov.APIKey)
		}
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}
