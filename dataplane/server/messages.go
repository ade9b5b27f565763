package server

import (
	"net/http"
	"strconv"
	"strings"

	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/sse"
	"tollgate.dev/tollgate/dataplane/translate"
	"tollgate.dev/tollgate/dataplane/translate/anthropic"
)

// handleMessages serves the Anthropic Messages API inbound, so
// Anthropic-native clients can be routed to any provider: the request is
// parsed into the canonical form and answers are written back in
// Anthropic's format, streams included. Routed to an Anthropic provider,
// request and answer pass natively (see translate/anthropic's native.go).
func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request) {
	s.serveChat(w, r, anthropicInbound{})
}

type anthropicInbound struct{}

func (anthropicInbound) dialect() openai.Dialect { return openai.DialectAnthropic }

// parse also keeps the client's anthropic-beta header with its body, for a
// request sent on natively to an Anthropic provider.
func (anthropicInbound) parse(r *http.Request, body []byte) (*openai.ChatRequest, *openai.APIError) {
	req, aerr := anthropic.ParseMessagesRequest(body)
	if aerr == nil && req.Native != nil {
		req.Native.Beta = strings.Join(r.Header.Values("anthropic-beta"), ",")
	}
	return req, aerr
}

func (anthropicInbound) writeError(w http.ResponseWriter, e *openai.APIError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(max(int(e.RetryAfter.Seconds()), 1)))
	}
	w.Header().Set("Content-Type", "application/json")
	status := e.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	w.WriteHeader(status)
	_, _ = w.Write(anthropic.ErrorBody(e))
}

func (anthropicInbound) writeResponse(w http.ResponseWriter, resp *openai.ChatResponse) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(anthropic.MessagesResponse(resp, resp.Model))
}

func (anthropicInbound) startStream(w http.ResponseWriter, meta translate.StreamMeta, _ bool) streamOut {
	startSSE(w)
	return anthropicStream{anthropic.NewMessagesStreamWriter(sse.NewWriter(w), meta.ID, meta.Model)}
}

type anthropicStream struct {
	w *anthropic.MessagesStreamWriter
}

func (a anthropicStream) chunk(c *openai.ChatChunk) error { return a.w.WriteChunk(c) }
func (a anthropicStream) end(err error)                   { _ = a.w.Close(err) }
