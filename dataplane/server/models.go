package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/router"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	oaitr "tollgate.dev/tollgate/dataplane/translate/openai"
)

// handleModels lists the public model names the caller's key may use.
func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	t, key, aerr := s.caller(r, time.Now())
	if aerr != nil {
		writeOpenAIError(w, aerr)
		return
	}
	list := openai.ModelList{Object: "list", Data: []openai.ModelObject{}}
	for _, rt := range t.RoutesFor(key) {
		list.Data = append(list.Data, openai.ModelObject{ID: rt.Model, Object: "model", OwnedBy: "tollgate:" + rt.Namespace})
	}
	writeJSON(w, http.StatusOK, list)
}

// handleModel answers GET /v1/models/{model} (the SDKs' models.retrieve):
// the model if the caller's key may use it, else 404 as OpenAI answers for
// a model that does not exist, so other teams' routes are not revealed.
func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	t, key, aerr := s.caller(r, time.Now())
	if aerr != nil {
		writeOpenAIError(w, aerr)
		return
	}
	model := r.PathValue("model")
	rt, ok := t.RouteForModel(key.Namespace, model)
	if !ok || !key.Allows(rt) {
		writeOpenAIError(w, openai.NewError(http.StatusNotFound, openai.TypeInvalidRequest, "model_not_found", "model",
			"The model `"+model+"` does not exist or you do not have access to it."))
		return
	}
	writeJSON(w, http.StatusOK, openai.ModelObject{ID: rt.Model, Object: "model", OwnedBy: "tollgate:" + rt.Namespace})
}

// handleEmbeddings serves /v1/embeddings for routes whose targets have
// embeddings, with the same failover as chat (minus streaming).
func (s *Server) handleEmbeddings(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	t, key, aerr := s.caller(r, start)
	if aerr != nil {
		writeOpenAIError(w, aerr)
		return
	}
	body, aerr := s.readBody(w, r)
	if aerr != nil {
		writeOpenAIError(w, aerr)
		return
	}
	req, aerr := oaitr.ParseEmbeddingRequest(body)
	if aerr != nil {
		writeOpenAIError(w, aerr)
		return
	}
	route, aerr := resolveRoute(t, key, req.Model)
	if aerr != nil {
		writeOpenAIError(w, aerr)
		return
	}
	rq := &request{start: start, table: t, key: key, route: route, labels: [6]string{key.Namespace, key.Name, key.Team, route.Name, "", ""}}
	if s.opts.Meter != nil {
		release, aerr := s.opts.Meter.Admit(key, route, len(req.Input)/4)
		if aerr != nil {
			s.countRequest(rq, aerr.Status)
			writeOpenAIError(w, aerr)
			return
		}
		defer release()
	}
	plan := s.router.Plan(route, &router.Features{})
	if g, ok := s.opts.Guard.(TextGuard); ok {
		v, aerr := guardEmbeddingInput(g, req, route, key)
		if v.Findings != "" {
			w.Header().Set("x-tollgate-data-findings", v.Findings)
		}
		if aerr == nil && v.SovereignOnly {
			if plan.Targets = sovereignOnly(t, plan.Targets); len(plan.Targets) == 0 {
				aerr = noSovereignTarget(route, v.Findings)
			}
		}
		if aerr != nil {
			s.countRequest(rq, aerr.Status)
			writeOpenAIError(w, aerr)
			return
		}
	}
	var lastErr *openai.APIError
	for _, tg := range plan.Targets {
		prov, ok := t.Provider(tg.Provider)
		if !ok {
			continue
		}
		tr, ok := s.opts.Translators(prov.Type)
		if !ok {
			continue
		}
		emb, ok := tr.(translate.Embedder)
		if !ok {
			if lastErr == nil {
				lastErr = openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, "embeddings_unsupported", "model",
					fmt.Sprintf("provider %s (%s) has no embeddings API", prov.Name, prov.Type))
			}
			continue
		}
		target := translate.Target{Provider: prov, Model: tg.Model, Media: s.opts.Media}
		hreq, err := emb.EmbeddingRequest(r.Context(), req, target)
		if err != nil {
			var ae *openai.APIError
			if errors.As(err, &ae) {
				lastErr = ae
			}
			continue
		}
		done := s.opts.Health.Start(router.TargetKey{Provider: prov.ID, Model: tg.Model})
		sent := time.Now()
		resp, err := s.client.Do(hreq)
		if err != nil {
			done(false, 0)
			_, lastErr = transportError(r.Context(), err, false, prov)
			continue
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, s.opts.MaxResponseBytes))
		resp.Body.Close()
		if err != nil {
			done(false, 0)
			_, lastErr = transportError(r.Context(), err, false, prov)
			continue
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			ae := tr.Error(resp.StatusCode, resp.Header, b)
			if failoverStatus(resp.StatusCode) || ae.Retryable {
				done(false, 0)
				lastErr = hideUpstreamAuth(ae, resp.StatusCode, prov)
				continue
			}
			done(true, time.Since(sent))
			s.countRequest(rq, ae.Status)
			writeOpenAIError(w, ae)
			return
		}
		out, err := emb.EmbeddingResponse(b, target)
		if err != nil {
			done(false, 0)
			lastErr = openai.NewError(http.StatusBadGateway, openai.TypeServer, "invalid_upstream_response", "",
				fmt.Sprintf("provider %s sent an embeddings response the gateway could not parse: %v", prov.Name, err))
			continue
		}
		if req.EncodingFormat == "base64" {
			if err := out.EncodeBase64(); err != nil {
				done(false, 0)
				lastErr = openai.NewError(http.StatusBadGateway, openai.TypeServer, "invalid_upstream_response", "",
					fmt.Sprintf("provider %s sent embeddings the gateway could not encode as base64: %v", prov.Name, err))
				continue
			}
		}
		done(true, time.Since(sent))
		out.Model = req.Model
		rq.labels[4], rq.labels[5] = prov.Name, tg.Model
		s.setTargetHeaders(w, prov, tg)
		writeJSON(w, http.StatusOK, out)
		s.finish(rq, prov, tg.Model, out.Usage, http.StatusOK, false, 0)
		return
	}
	if lastErr == nil {
		lastErr = openai.NewError(http.StatusBadGateway, openai.TypeServer, "no_target", "", "no target could serve the embeddings request")
	}
	s.countRequest(rq, lastErr.Status)
	writeOpenAIError(w, lastErr)
}

// guardEmbeddingInput applies the data policy to the texts of an
// embeddings request, writing redacted texts back into req.Input in the
// shape they came in (one string or an array). Token-id inputs carry no
// text and pass.
func guardEmbeddingInput(g TextGuard, req *openai.EmbeddingRequest, route *routetable.Route, key *routetable.Key) (GuardVerdict, *openai.APIError) {
	texts, ok := req.Inputs()
	if !ok {
		return GuardVerdict{}, nil
	}
	orig := slices.Clone(texts)
	v, aerr := g.InspectTexts(texts, route, key)
	if aerr != nil || slices.Equal(orig, texts) {
		return v, aerr
	}
	var raw []byte
	if trimmed := bytes.TrimSpace(req.Input); len(trimmed) > 0 && trimmed[0] == '"' && len(texts) == 1 {
		raw, _ = json.Marshal(texts[0])
	} else {
		raw, _ = json.Marshal(texts)
	}
	req.Input = raw
	return v, nil
}
