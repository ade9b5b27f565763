package gemini

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"
	wire "tollgate.dev/tollgate/dataplane/schema/gemini"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// maxErrorSnippet bounds how much of a non-JSON error body is quoted back.
const maxErrorSnippet = 512

// Error maps a non-2xx answer ({"error":{"code","message","status"}}) to an
// OpenAI error with the same HTTP status and Google's message; the code is
// the lower-cased canonical status (resource_exhausted, ...). 429 and 5xx
// are retryable, and so is a rejected API key (another target may hold a
// valid one). Retry-After comes from the header, else from a RetryInfo
// detail.
func (Translator) Error(status int, header http.Header, body []byte) *openai.APIError {
	var er wire.ErrorResponse
	if json.Unmarshal(body, &er) != nil || er.Error == nil {
		msg := strings.TrimSpace(string(body))
		if len(msg) > maxErrorSnippet {
			msg = msg[:maxErrorSnippet]
		}
		if msg == "" {
			msg = http.StatusText(status)
		}
		if status < 400 {
			status = http.StatusBadGateway
		}
		e := openai.NewError(status, openai.ErrorTypeForStatus(status), "", "", fmt.Sprintf("gemini: upstream returned HTTP %d: %s", status, msg))
		e.RetryAfter = translate.RetryAfter(header, time.Now())
		return e
	}
	return statusError(status, header, er.Error)
}

// statusError converts a google.rpc.Status. status is the HTTP status, or 0
// for an error event inside a 200 stream (the status then comes from the
// error itself).
func statusError(status int, header http.Header, st *wire.Status) *openai.APIError {
	if status < 400 {
		status = st.Code
		if status < 400 || status > 599 {
			status = httpStatus(st.Status)
		}
	}
	msg := st.Message
	if msg == "" {
		msg = http.StatusText(status)
	}
	e := openai.NewError(status, openai.ErrorTypeForStatus(status), strings.ToLower(st.Status), "", msg)
	e.RetryAfter = translate.RetryAfter(header, time.Now())
	for _, d := range st.Details {
		var probe struct {
			Type       string `json:"@type"`
			RetryDelay string `json:"retryDelay"`
			Reason     string `json:"reason"`
		}
		if json.Unmarshal(d, &probe) != nil {
			continue
		}
		switch {
		case probe.Type == wire.RetryInfoType && e.RetryAfter == 0:
			if d, err := time.ParseDuration(probe.RetryDelay); err == nil && d > 0 {
				e.RetryAfter = d
			}
		case strings.HasSuffix(probe.Type, "google.rpc.ErrorInfo") && probe.Reason == "API_KEY_INVALID":
			e.Retryable = true
		}
	}
	return e
}

// httpStatus maps a canonical google.rpc.Code name to its HTTP status.
func httpStatus(code string) int {
	switch code {
	case "INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE":
		return http.StatusBadRequest
	case "UNAUTHENTICATED":
		return http.StatusUnauthorized
	case "PERMISSION_DENIED":
		return http.StatusForbidden
	case "NOT_FOUND":
		return http.StatusNotFound
	case "ABORTED", "ALREADY_EXISTS":
		return http.StatusConflict
	case "RESOURCE_EXHAUSTED":
		return http.StatusTooManyRequests
	case "UNIMPLEMENTED":
		return http.StatusNotImplemented
	case "UNAVAILABLE":
		return http.StatusServiceUnavailable
	case "DEADLINE_EXCEEDED":
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}
