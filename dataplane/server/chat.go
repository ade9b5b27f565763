package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"tollgate.dev/tollgate/dataplane/router"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// inbound is one client-facing API dialect (OpenAI chat completions, or
// Anthropic messages): how requests are parsed and answers written.
type inbound interface {
	dialect() openai.Dialect
	// parse reads a request body (and what it needs of the headers).
	parse(r *http.Request, body []byte) (*openai.ChatRequest, *openai.APIError)
	writeError(w http.ResponseWriter, e *openai.APIError)
	writeResponse(w http.ResponseWriter, resp *openai.ChatResponse)
	// startStream writes the response headers and returns the event writer.
	startStream(w http.ResponseWriter, meta translate.StreamMeta, includeUsage bool) streamOut
}

// streamOut writes translated chunks to the client.
type streamOut interface {
	chunk(c *openai.ChatChunk) error
	// end finishes the stream: cleanly when err is nil, else with an
	// in-stream error event.
	end(err error)
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	s.serveChat(w, r, openaiInbound{})
}

// request carries one request's state through the pipeline.
type request struct {
	start   time.Time
	table   *routetable.Table
	key     *routetable.Key
	route   *routetable.Route
	req     *openai.ChatRequest
	meta    translate.StreamMeta
	in      inbound
	verdict GuardVerdict
	labels  [6]string
}

func (s *Server) serveChat(w http.ResponseWriter, r *http.Request, in inbound) {
	rq := &request{start: time.Now(), in: in}
	t, key, aerr := s.caller(r, rq.start)
	if aerr != nil {
		in.writeError(w, aerr)
		return
	}
	rq.table, rq.key = t, key
	body, aerr := s.readBody(w, r)
	if aerr != nil {
		in.writeError(w, aerr)
		return
	}
	req, aerr := in.parse(r, body)
	if aerr != nil {
		in.writeError(w, aerr)
		return
	}
	rq.req = req
	route, aerr := resolveRoute(t, key, req.Model)
	if aerr != nil {
		in.writeError(w, aerr)
		return
	}
	rq.route = route
	if req.Stream {
		release, aerr := s.streams.acquire(key)
		if aerr != nil {
			in.writeError(w, aerr)
			return
		}
		defer release()
	}
	rq.labels = [6]string{key.Namespace, key.Name, key.Team, route.Name, "", ""}
	feats := router.ExtractFeatures(req, r.Header, key, router.NeedsCode(route))

	if s.opts.Meter != nil {
		release, aerr := s.opts.Meter.Admit(key, route, feats.PromptTokens+req.MaxOutputTokens())
		if aerr != nil {
			s.countRequest(rq, aerr.Status)
			in.writeError(w, aerr)
			return
		}
		defer release()
	}
	if !s.inspect(w, rq) {
		return
	}

	plan := s.router.Plan(route, &feats)
	if plan.Rule != "" {
		w.Header().Set("x-tollgate-rule", plan.Rule)
		s.m.IntentRules.WithLabelValues(route.Namespace, route.Name, plan.Rule).Inc()
	}
	if rq.verdict.SovereignOnly {
		plan.Targets = sovereignOnly(t, plan.Targets)
		if len(plan.Targets) == 0 {
			aerr := noSovereignTarget(route, rq.verdict.Findings)
			s.countRequest(rq, aerr.Status)
			in.writeError(w, aerr)
			return
		}
	}

	timeout := route.Timeouts.Request
	if timeout <= 0 {
		timeout = s.opts.DefaultRequestTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	rq.meta = translate.StreamMeta{ID: newCompletionID(), Created: rq.start.Unix(), Model: req.Model, IncludeUsage: req.WantsUsageChunk()}
	s.execute(ctx, w, rq, plan.Targets)
}

// inspect applies the data policies to rq (rq.verdict), announcing
// findings in a header; false when the request was refused and answered.
func (s *Server) inspect(w http.ResponseWriter, rq *request) bool {
	if s.opts.Guard == nil {
		return true
	}
	v, aerr := s.opts.Guard.Inspect(rq.req, rq.route, rq.key)
	if v.Findings != "" {
		w.Header().Set("x-tollgate-data-findings", v.Findings)
	}
	if aerr != nil {
		s.countRequest(rq, aerr.Status)
		rq.in.writeError(w, aerr)
		return false
	}
	rq.verdict = v
	return true
}

var errNoTable = openai.NewError(http.StatusServiceUnavailable, openai.TypeServer, "not_ready", "",
	"The gateway has not received its routing table yet; retry shortly.")

func resolveRoute(t *routetable.Table, key *routetable.Key, model string) (*routetable.Route, *openai.APIError) {
	route, ok := t.RouteForModel(key.Namespace, model)
	if !ok {
		return nil, openai.NewError(http.StatusNotFound, openai.TypeInvalidRequest, "model_not_found", "model",
			"The model `"+model+"` does not exist or you do not have access to it.")
	}
	if !key.Allows(route) {
		return nil, openai.NewError(http.StatusForbidden, openai.TypePermission, "model_not_allowed", "model",
			"The virtual key "+key.Namespace+"/"+key.Name+" may not use the model `"+model+"` (Route "+route.Name+").")
	}
	return route, nil
}

func noSovereignTarget(route *routetable.Route, findings string) *openai.APIError {
	return openai.NewError(http.StatusForbidden, openai.TypePermission, "sovereignty_violation", "",
		"The request contains sensitive data ("+findings+") and route "+route.Namespace+"/"+route.Name+" has no in-cluster or on-prem target to send it to.")
}

func sovereignOnly(t *routetable.Table, ts []routetable.Target) []routetable.Target {
	out := ts[:0:0]
	for _, tg := range ts {
		if p, ok := t.Provider(tg.Provider); ok && p.Locality.Sovereign() {
			out = append(out, tg)
		}
	}
	return out
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *openai.APIError) {
	if r.ContentLength > s.opts.MaxBodyBytes {
		return nil, tooLarge(s.opts.MaxBodyBytes)
	}
	// The body must arrive within the deadline boundBodies set. It is
	// lifted only after a complete read (streams answer for longer):
	// after a failed one, net/http would wait for the rest of the body
	// before answering.
	b, err := readSized(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes), r.ContentLength)
	if err == nil && r.ContentLength != 0 {
		_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(s.opts.MaxBodyBytes)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, openai.NewError(http.StatusRequestTimeout, openai.TypeInvalidRequest, "request_timeout", "",
				fmt.Sprintf("The request body did not arrive within %v.", s.opts.BodyTimeout))
		}
		return nil, openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, "invalid_body", "", "could not read request body: "+err.Error())
	}
	return b, nil
}

// readSized reads all of r into a buffer of the announced size n, when
// known (n > 0; callers have bounded it), instead of growing one by
// doubling: one allocation per body on the hot path. A body longer than
// announced is still read whole.
func readSized(r io.Reader, n int64) ([]byte, error) {
	if n <= 0 {
		return io.ReadAll(r)
	}
	b := make([]byte, n, n+1) // the spare byte probes for EOF without growing
	if m, err := io.ReadFull(r, b); err != nil {
		return b[:m], err
	}
	for {
		k, err := r.Read(b[n : n+1])
		switch {
		case k > 0: // longer than announced: read the rest the slow way
			rest, err := io.ReadAll(r)
			return append(b[:n+1], rest...), err
		case err == io.EOF:
			return b[:n], nil
		case err != nil:
			return b[:n], err
		}
	}
}

func tooLarge(limit int64) *openai.APIError {
	return openai.NewError(http.StatusRequestEntityTooLarge, openai.TypeInvalidRequest, "request_too_large", "",
		fmt.Sprintf("Request body exceeds the gateway's limit of %d bytes.", limit))
}

// outcome of one upstream attempt.
type outcome uint8

const (
	// answered: the client got an answer (success, or a committed stream).
	answered outcome = iota
	// clientFault: upstream refused the request as invalid; do not retry.
	clientFault
	// retryable: this target failed; try again or fail over.
	retryable
	// skip: this target cannot serve the request (translation refused it).
	skip
)

// execute tries the planned targets in order, retrying each per the route's
// policy, until one answers. The client sees only the successful answer,
// unless a stream already started, in which case it gets an in-stream error.
func (s *Server) execute(ctx context.Context, w http.ResponseWriter, rq *request, targets []routetable.Target) {
	var lastErr, firstSkip *openai.APIError
	attempts := max(rq.route.Retry.Attempts, 1)
	for i, tg := range targets {
		prov, ok := rq.table.Provider(tg.Provider)
		if !ok {
			continue
		}
		tr, ok := s.opts.Translators(prov.Type)
		if !ok {
			continue
		}
		for a := 0; a < attempts; a++ {
			if a > 0 {
				wait := backoff(rq.route.Retry, a, lastErr)
				if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
					break // not worth waiting: move on to the next target
				}
				if !sleepCtx(ctx, wait) {
					break
				}
			}
			if ctx.Err() != nil {
				break
			}
			res, aerr := s.attempt(ctx, w, rq, prov, tr, tg, i > 0)
			switch res {
			case answered:
				return
			case clientFault:
				s.countRequest(rq, aerr.Status)
				rq.in.writeError(w, aerr)
				return
			case skip:
				if firstSkip == nil {
					firstSkip = aerr
				}
				a = attempts // translation is deterministic: no retry
			case retryable:
				lastErr = aerr
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	final := lastErr
	switch {
	case final == nil && firstSkip != nil:
		final = firstSkip
	case ctx.Err() != nil && (final == nil || final.Status != http.StatusTooManyRequests):
		final = openai.NewError(http.StatusGatewayTimeout, openai.TypeServer, "timeout", "",
			"The request to model `"+rq.req.Model+"` timed out after trying every target.")
	case final == nil:
		final = openai.NewError(http.StatusBadGateway, openai.TypeServer, "no_target", "",
			"No target of route "+rq.route.Namespace+"/"+rq.route.Name+" could serve the request.")
	}
	s.countRequest(rq, final.Status)
	rq.in.writeError(w, final)
}

// attempt sends the request to one target. It commits to the client only
// when the first byte (response, or first stream chunk) is in hand, so every
// earlier failure can still fail over invisibly.
func (s *Server) attempt(ctx context.Context, w http.ResponseWriter, rq *request, prov *routetable.Provider,
	tr translate.Translator, tg routetable.Target, isFallback bool) (outcome, *openai.APIError) {
	if rq.req.NativeOnly != "" && !speaks(tr, rq.in.dialect()) {
		return skip, openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, "native_only", "",
			fmt.Sprintf("The request uses %s, which the gateway can only pass on unchanged to a provider of the API it was sent to; provider %s (%s) cannot serve it.",
				rq.req.NativeOnly, prov.Name, prov.Type))
	}
	target := translate.Target{Provider: prov, Model: tg.Model, Media: s.opts.Media}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	timeout := rq.route.Timeouts.FirstByte
	if prov.Timeout > 0 && (timeout == 0 || prov.Timeout < timeout) && !rq.req.Stream {
		timeout = prov.Timeout
	}
	var timedOut atomic.Bool
	var timer *time.Timer
	if timeout > 0 {
		timer = time.AfterFunc(timeout, func() { timedOut.Store(true); cancel() })
	}
	stopTimer := func() bool { return timer == nil || timer.Stop() }

	hreq, err := tr.ChatRequest(actx, rq.req, target)
	if err != nil {
		stopTimer()
		var aerr *openai.APIError
		if errors.As(err, &aerr) {
			return skip, aerr
		}
		return skip, openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, "unsupported_request", "",
			fmt.Sprintf("Provider %s cannot serve this request: %v", prov.Name, err))
	}
	hk := router.TargetKey{Provider: prov.ID, Model: tg.Model}
	done := s.opts.Health.Start(hk)
	sent := time.Now()
	resp, err := s.client.Do(hreq)
	if err != nil {
		stopTimer()
		done(false, 0)
		kind, aerr := transportError(ctx, err, timedOut.Load(), prov)
		s.m.Attempts.WithLabelValues(prov.Namespace, prov.Name, tg.Model, kind).Inc()
		return retryable, aerr
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		stopTimer()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		aerr := tr.Error(resp.StatusCode, resp.Header, b)
		if aerr == nil {
			aerr = openai.NewError(http.StatusBadGateway, openai.TypeServer, "upstream_error", "", fmt.Sprintf("provider %s answered %d", prov.Name, resp.StatusCode))
		}
		if failoverStatus(resp.StatusCode) || aerr.Retryable {
			done(false, 0)
			s.m.Attempts.WithLabelValues(prov.Namespace, prov.Name, tg.Model, "retryable").Inc()
			aerr = hideUpstreamAuth(aerr, resp.StatusCode, prov)
			aerr.Retryable = true
			return retryable, aerr
		}
		done(true, time.Since(sent))
		s.m.Attempts.WithLabelValues(prov.Namespace, prov.Name, tg.Model, "error").Inc()
		return clientFault, aerr
	}
	rq.labels[4], rq.labels[5] = prov.Name, tg.Model
	if !rq.req.Stream {
		b, err := readSized(io.LimitReader(resp.Body, s.opts.MaxResponseBytes+1), min(resp.ContentLength, s.opts.MaxResponseBytes))
		fired := !stopTimer()
		if err != nil || fired || int64(len(b)) > s.opts.MaxResponseBytes {
			done(false, 0)
			kind, aerr := transportError(ctx, errOr(err, errors.New("response too large")), timedOut.Load(), prov)
			s.m.Attempts.WithLabelValues(prov.Namespace, prov.Name, tg.Model, kind).Inc()
			return retryable, aerr
		}
		if raw, usage, ok := s.nativeAnswer(rq, tr, b, target); ok {
			done(true, time.Since(sent))
			s.m.Attempts.WithLabelValues(prov.Namespace, prov.Name, tg.Model, "ok").Inc()
			if isFallback {
				s.m.Fallbacks.WithLabelValues(rq.route.Namespace, rq.route.Name).Inc()
			}
			s.setTargetHeaders(w, prov, tg)
			writeJSONBytes(w, http.StatusOK, raw)
			s.finish(rq, prov, tg.Model, usage, http.StatusOK, false, 0)
			return answered, nil
		}
		out, err := tr.ChatResponse(b, target, rq.meta)
		if err != nil {
			done(false, 0)
			s.m.Attempts.WithLabelValues(prov.Namespace, prov.Name, tg.Model, "invalid_response").Inc()
			return retryable, openai.NewError(http.StatusBadGateway, openai.TypeServer, "invalid_upstream_response", "",
				fmt.Sprintf("provider %s sent a response the gateway could not parse: %v", prov.Name, err))
		}
		latency := time.Since(sent)
		done(true, latency)
		s.m.Attempts.WithLabelValues(prov.Namespace, prov.Name, tg.Model, "ok").Inc()
		if rq.verdict.Restore != nil {
			restoreResponse(out, rq.verdict)
		}
		if isFallback {
			s.m.Fallbacks.WithLabelValues(rq.route.Namespace, rq.route.Name).Inc()
		}
		s.setTargetHeaders(w, prov, tg)
		rq.in.writeResponse(w, out)
		s.finish(rq, prov, tg.Model, out.Usage, http.StatusOK, false, 0)
		return answered, nil
	}

	// Streaming: hold the response until the first event is in hand.
	rl := s.relayFor(rq, tr, resp.Body, target)
	err = rl.next()
	fired := !stopTimer()
	if err != nil || fired {
		done(false, 0)
		var aerr *openai.APIError
		if errors.As(err, &aerr) && !aerr.Retryable && !fired {
			s.m.Attempts.WithLabelValues(prov.Namespace, prov.Name, tg.Model, "error").Inc()
			return clientFault, aerr
		}
		kind, terr := transportError(ctx, errOr(err, context.DeadlineExceeded), timedOut.Load(), prov)
		if aerr != nil && !fired {
			terr = aerr
			terr.Retryable = true
		}
		s.m.Attempts.WithLabelValues(prov.Namespace, prov.Name, tg.Model, kind).Inc()
		return retryable, terr
	}
	ttft := time.Since(rq.start)
	done(true, time.Since(sent))
	s.m.Attempts.WithLabelValues(prov.Namespace, prov.Name, tg.Model, "ok").Inc()
	if isFallback {
		s.m.Fallbacks.WithLabelValues(rq.route.Namespace, rq.route.Name).Inc()
	}
	s.setTargetHeaders(w, prov, tg)
	rl.start(w)
	var streamErr error
	for {
		if werr := rl.write(); werr != nil {
			streamErr = werr // client went away: stop reading upstream
			break
		}
		err = rl.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			streamErr = err
			var aerr *openai.APIError
			if !errors.As(err, &aerr) {
				aerr = openai.NewError(http.StatusBadGateway, openai.TypeServer, "upstream_stream_error", "",
					fmt.Sprintf("the stream from provider %s broke off: %v", prov.Name, safeErr(err)))
			}
			rl.end(aerr)
			break
		}
	}
	if streamErr == nil {
		rl.end(nil)
	}
	status := http.StatusOK
	if streamErr != nil {
		status = 599 // stream started and then failed; counted apart from clean answers
	}
	s.finish(rq, prov, tg.Model, rl.usage(), status, true, ttft)
	return answered, nil
}

// speaks reports whether tr's provider speaks dialect d natively.
func speaks(tr translate.Translator, d openai.Dialect) bool {
	nr, ok := tr.(translate.NativeResponder)
	return ok && nr.Dialect() == d
}

// nativeAnswer is the upstream's answer edited in place
// (translate.NativeResponder), when the client speaks the provider's
// dialect and nothing in the answer has to change on the way back (no
// redacted value to restore).
func (s *Server) nativeAnswer(rq *request, tr translate.Translator, body []byte, target translate.Target) ([]byte, *openai.Usage, bool) {
	if !speaks(tr, rq.in.dialect()) || rq.verdict.Restore != nil {
		return nil, nil, false
	}
	return tr.(translate.NativeResponder).ChatResponseBytes(body, target, rq.meta)
}

func errOr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

// failoverStatus lists upstream statuses that say "this target cannot
// serve now" rather than "this request is wrong": the gateway's own
// credentials or model mapping at that provider (401/403/404), timeouts,
// rate limits and server errors.
func failoverStatus(code int) bool {
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusRequestTimeout,
		http.StatusConflict, http.StatusTooManyRequests:
		return true
	}
	return code >= 500
}

// hideUpstreamAuth turns an upstream 401/403 (the gateway's provider
// credential was refused) into a 502: the client's own key is fine, and
// telling it "401" would send it chasing the wrong problem.
func hideUpstreamAuth(aerr *openai.APIError, code int, prov *routetable.Provider) *openai.APIError {
	if code != http.StatusUnauthorized && code != http.StatusForbidden {
		return aerr
	}
	return openai.NewError(http.StatusBadGateway, openai.TypeServer, "upstream_auth_failed", "",
		fmt.Sprintf("provider %s/%s refused the gateway's credentials (%d); check the LLMProvider's credentials Secret", prov.Namespace, prov.Name, code))
}

// transportError classifies a failed round trip for metrics and the client.
func transportError(ctx context.Context, err error, firstByteTimeout bool, prov *routetable.Provider) (string, *openai.APIError) {
	switch {
	case firstByteTimeout:
		return "timeout", openai.NewError(http.StatusGatewayTimeout, openai.TypeServer, "upstream_timeout", "",
			fmt.Sprintf("provider %s did not answer within the route's first-byte threshold", prov.Name))
	case ctx.Err() != nil:
		return "timeout", openai.NewError(http.StatusGatewayTimeout, openai.TypeServer, "timeout", "", "the request deadline passed")
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return "connect", openai.NewError(http.StatusBadGateway, openai.TypeServer, "upstream_unreachable", "",
			fmt.Sprintf("could not connect to provider %s", prov.Name))
	}
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout", openai.NewError(http.StatusGatewayTimeout, openai.TypeServer, "upstream_timeout", "",
			fmt.Sprintf("provider %s timed out", prov.Name))
	}
	return "error", openai.NewError(http.StatusBadGateway, openai.TypeServer, "upstream_error", "",
		fmt.Sprintf("provider %s failed: %v", prov.Name, safeErr(err)))
}

// safeErr renders an error without URLs (which could carry credentials in
// query strings for some providers) and without socket addresses (the
// gateway's and the upstream's network layout are not the client's business).
func safeErr(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	var ue interface{ Unwrap() error }
	msg := err.Error()
	if errors.As(err, &ue) {
		if i := strings.Index(msg, "\": "); i >= 0 && strings.Contains(msg[:i], "://") {
			msg = msg[i+3:]
		}
	}
	return msg
}

// backoff returns the wait before retry number n (1-based) on one target:
// exponential with full jitter, or the upstream's Retry-After when longer.
func backoff(p routetable.Retry, n int, last *openai.APIError) time.Duration {
	base := p.InitialBackoff
	if base <= 0 {
		base = 100 * time.Millisecond
	}
	maxB := p.MaxBackoff
	if maxB <= 0 {
		maxB = 5 * time.Second
	}
	d := base << min(n-1, 20)
	if d > maxB || d <= 0 {
		d = maxB
	}
	d = d/2 + rand.N(d/2+1)
	if last != nil && last.RetryAfter > d {
		d = last.RetryAfter
	}
	return d
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Server) setTargetHeaders(w http.ResponseWriter, prov *routetable.Provider, tg routetable.Target) {
	h := w.Header()
	h.Set("x-tollgate-provider", prov.Name)
	h.Set("x-tollgate-model", tg.Model)
}

func (s *Server) countRequest(rq *request, status int) {
	l := rq.labels
	s.m.Requests.WithLabelValues(l[0], l[1], l[2], l[3], l[4], l[5], strconv.Itoa(status)).Inc()
}

// finish accounts a request that reached a provider.
func (s *Server) finish(rq *request, prov *routetable.Provider, model string, usage *openai.Usage, status int, stream bool, ttft time.Duration) {
	latency := time.Since(rq.start)
	l := rq.labels
	s.countRequest(rq, status)
	s.m.Duration.WithLabelValues(l[0], l[1], l[2], l[3], l[4], l[5]).Observe(latency.Seconds())
	if stream {
		s.m.TTFT.WithLabelValues(l[0], l[1], l[2], l[3], l[4], l[5]).Observe(ttft.Seconds())
	}
	if s.opts.Meter != nil {
		s.opts.Meter.Record(UsageRecord{Key: rq.key, Route: rq.route, Provider: prov, Model: model, Usage: usage,
			Status: status, Stream: stream, Latency: latency, TTFT: ttft})
	}
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// newCompletionID returns "chatcmpl-" plus 24 random characters.
func newCompletionID() string {
	var b [9 + 24]byte
	copy(b[:], "chatcmpl-")
	for i := 9; i < len(b); i++ {
		b[i] = idAlphabet[rand.N(len(idAlphabet))]
	}
	return string(b[:])
}

// restoreResponse maps redaction placeholders back to the original values.
// Each string is a whole answer, so nothing may stay held back.
func restoreResponse(r *openai.ChatResponse, v GuardVerdict) {
	whole := func(s string) string {
		s = v.Restore(s)
		if v.Flush != nil {
			s += v.Flush()
		}
		return s
	}
	for i := range r.Choices {
		m := &r.Choices[i].Message
		if m.Content.Kind == openai.ContentString {
			m.Content.Text = whole(m.Content.Text)
		}
		for j := range m.ToolCalls {
			m.ToolCalls[j].Function.Arguments = whole(m.ToolCalls[j].Function.Arguments)
		}
	}
}

// restoreChunk maps placeholders back in a chunk. A placeholder split
// across chunks is held back by Restore until it is complete; what is still
// held when a choice finishes is flushed into that final chunk.
func restoreChunk(c *openai.ChatChunk, v GuardVerdict) {
	for i := range c.Choices {
		d := &c.Choices[i].Delta
		var text string
		if d.Content != nil {
			text = v.Restore(*d.Content)
		}
		if c.Choices[i].FinishReason != nil && v.Flush != nil {
			text += v.Flush()
		}
		if d.Content != nil || text != "" {
			d.Content = &text
		}
	}
}
