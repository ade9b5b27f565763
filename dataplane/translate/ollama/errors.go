package ollama

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// MaxErrorSnippet bounds how much of a non-JSON error body is quoted back.
const MaxErrorSnippet = translate.MaxErrorSnippet

// Error maps a non-2xx /api/chat or /api/embed answer. Ollama's error body
// is {"error":"text"} (an OpenAI-style {"error":{"message":...}} from a
// proxy in front of it is understood too); the status is kept, a model
// that is not pulled is a 404 with code "model_not_found", and 429/5xx
// keep Retry-After. Other bodies (a proxy's HTML page) become "upstream
// returned 502 Bad Gateway: <text>", shortened.
func (Translator) Error(status int, header http.Header, body []byte) *openai.APIError {
	out := status
	if out < 400 || out > 599 {
		out = http.StatusBadGateway
	}
	msg, ok := errorMessage(body)
	if !ok {
		msg = fmt.Sprintf("upstream returned %d %s", status, http.StatusText(status))
		if s := snippet(body); s != "" {
			msg += ": " + s
		}
	}
	code := ""
	if out == http.StatusNotFound && strings.Contains(msg, "not found") {
		code = "model_not_found"
	}
	e := openai.NewError(out, openai.ErrorTypeForStatus(out), code, "", redact(msg))
	if e.Retryable && header != nil {
		e.RetryAfter = translate.RetryAfter(header, time.Now())
	}
	return e
}

// errorMessage reads {"error":"text"} or {"error":{"message":"text"}}.
func errorMessage(body []byte) (string, bool) {
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &env) != nil || !hasValue(env.Error) {
		return "", false
	}
	m := messageOf(env.Error)
	return m, m != ""
}

func messageOf(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	var s string
	if len(raw) > 0 && raw[0] == '"' {
		_ = json.Unmarshal(raw, &s)
		return s
	}
	var obj struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(raw, &obj)
	return obj.Message
}

// streamError maps an error reported inside a 2xx answer (an NDJSON line
// {"error":"..."} when the runner fails mid-generation). There is no
// status: it is a retryable 502.
func streamError(raw json.RawMessage) *openai.APIError {
	msg := messageOf(raw)
	if msg == "" {
		msg = "upstream reported an error"
	}
	return openai.NewError(http.StatusBadGateway, openai.TypeServer, "upstream_error", "", "ollama: "+redact(msg))
}

var (
	secretRE = regexp.MustCompile(`(?i)(bearer\s+)[A-Za-z0-9._~+/=*-]{6,}`)
)

// snippet renders a non-JSON body as one short line (translate.ErrorSnippet).
func snippet(body []byte) string { return translate.ErrorSnippet(body, nil) }

// redact masks a bearer token a proxy in front of Ollama might echo.
func redact(s string) string {
	if !secretRE.MatchString(s) {
		return s
	}
	return secretRE.ReplaceAllString(s, "${1}[redacted]")
}

func sprintf(format string, args ...any) string {
	if len(args) == 0 {
		return format
	}
	return fmt.Sprintf(format, args...)
}
