package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"tollgate.dev/tollgate/dataplane/router"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	"tollgate.dev/tollgate/dataplane/translate/anthropic"
	"tollgate.dev/tollgate/dataplane/translate/bedrock"
	"tollgate.dev/tollgate/dataplane/translate/gemini"
)

// Values of the x-tollgate-token-count header: who counted.
const (
	tokenCountProvider  = "provider"
	tokenCountEstimated = "estimated"
)

// countTokensWait bounds the upstream count: an estimate now serves a
// client that is sizing its next request better than a count later.
const countTokensWait = 15 * time.Second

// maxCountResponse bounds the upstream count answer ({"input_tokens": N},
// {"totalTokens": N, ...}, {"inputTokens": N}).
const maxCountResponse = 64 << 10

// tokenCounter is a provider's token counting API.
type tokenCounter struct {
	request func(context.Context, *openai.ChatRequest, translate.Target) (*http.Request, error)
	answer  func(body []byte) (int, error)
}

// tokenCounters lists the provider types with a counting API.
var tokenCounters = map[routetable.ProviderType]tokenCounter{
	routetable.ProviderAnthropic: {anthropic.CountTokensRequest, anthropic.ParseCountTokensResponse},
	routetable.ProviderGemini:    {gemini.CountTokensRequest, gemini.ParseCountTokensResponse},
	routetable.ProviderBedrock:   {bedrock.CountTokensRequest, bedrock.ParseCountTokensResponse},
}

// handleCountTokens serves POST /v1/messages/count_tokens, Anthropic's
// Token Counting API (Claude Code and the Anthropic SDKs size requests with
// it). Authentication, body limits, parsing, route resolution, the key's
// route access and the sensitive-data policy are those of /v1/messages,
// errors are Anthropic's. The count comes from the target the route would
// try first when that target's provider has a counting API; otherwise, or
// when that call fails, it is estimated locally with the estimator intent
// rules use. x-tollgate-token-count says which ("provider" or "estimated").
// Counting is free: it is not admitted against budgets or rate limits and
// records no usage, but it is counted in tollgate_requests_total.
func (s *Server) handleCountTokens(w http.ResponseWriter, r *http.Request) {
	in := anthropicInbound{}
	rq, aerr := s.countTokensRequest(w, r)
	if aerr != nil {
		in.writeError(w, aerr)
		return
	}
	feats := router.ExtractFeatures(rq.req, r.Header, rq.key, router.NeedsCode(rq.route))
	if !s.inspect(w, rq) {
		return
	}
	plan := s.router.Plan(rq.route, &feats)
	if plan.Rule != "" {
		w.Header().Set("x-tollgate-rule", plan.Rule)
	}
	targets := plan.Targets
	if rq.verdict.SovereignOnly {
		// Only a sovereign target may see this prompt; with none, the
		// estimate is answered, which sends nothing anywhere.
		targets = sovereignOnly(rq.table, targets)
	}

	n, by := feats.PromptTokens, tokenCountEstimated
	if prov, tg, ok := s.firstTarget(rq.table, targets); ok {
		if c, ok := tokenCounters[prov.Type]; ok {
			if counted, err := s.countAt(r.Context(), rq, prov, tg, c); err == nil {
				n, by = counted, tokenCountProvider
				rq.labels[4], rq.labels[5] = prov.Name, tg.Model
				s.setTargetHeaders(w, prov, tg)
			} else {
				s.log.V(1).Info("Token count from provider failed; answering an estimate",
					"LLMProvider", prov.Namespace+"/"+prov.Name, "model", tg.Model, "error", safeErr(err))
			}
		}
	}
	w.Header().Set("x-tollgate-token-count", by)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(anthropic.CountTokensResponse(n))
	s.countRequest(rq, http.StatusOK)
}

// countTokensRequest authenticates, reads, parses and routes a count
// request as serveChat does a Messages request.
func (s *Server) countTokensRequest(w http.ResponseWriter, r *http.Request) (*request, *openai.APIError) {
	rq := &request{start: time.Now(), in: anthropicInbound{}}
	var aerr *openai.APIError
	if rq.table, rq.key, aerr = s.caller(r, rq.start); aerr != nil {
		return nil, aerr
	}
	body, aerr := s.readBody(w, r)
	if aerr != nil {
		return nil, aerr
	}
	if rq.req, aerr = anthropic.ParseCountTokensRequest(body); aerr != nil {
		return nil, aerr
	}
	if rq.route, aerr = resolveRoute(rq.table, rq.key, rq.req.Model); aerr != nil {
		return nil, aerr
	}
	rq.labels = [6]string{rq.key.Namespace, rq.key.Name, rq.key.Team, rq.route.Name, "", ""}
	return rq, nil
}

// firstTarget returns the target execute would try first: the first
// planned one whose provider is in the table and has a translator.
func (s *Server) firstTarget(t *routetable.Table, targets []routetable.Target) (*routetable.Provider, routetable.Target, bool) {
	for _, tg := range targets {
		prov, ok := t.Provider(tg.Provider)
		if !ok {
			continue
		}
		if _, ok := s.opts.Translators(prov.Type); ok {
			return prov, tg, true
		}
	}
	return nil, routetable.Target{}, false
}

// countAt asks one target's counting API, with the provider's credentials
// and the target model, within the route's and the provider's timeouts
// and at most countTokensWait. Counting failures are not fed to target
// health: a provider whose counting API fails may serve messages well.
func (s *Server) countAt(ctx context.Context, rq *request, prov *routetable.Provider, tg routetable.Target, c tokenCounter) (int, error) {
	wait := countTokensWait
	for _, d := range []time.Duration{rq.route.Timeouts.Request, rq.route.Timeouts.FirstByte, prov.Timeout} {
		if d > 0 && d < wait {
			wait = d
		}
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	hreq, err := c.request(ctx, rq.req, translate.Target{Provider: prov, Model: tg.Model, Media: s.opts.Media})
	if err != nil {
		return 0, err
	}
	resp, err := s.client.Do(hreq)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCountResponse))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("provider answered %d", resp.StatusCode)
	}
	return c.answer(b)
}
