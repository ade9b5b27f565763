package openai

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// MaxErrorSnippet bounds how much of a non-JSON error body is quoted back.
const MaxErrorSnippet = translate.MaxErrorSnippet

// now is the clock used to turn an HTTP-date Retry-After into a duration.
var now = time.Now

// upstreamError is the union of the error shapes OpenAI-family servers
// send: OpenAI's {"error":{message,type,param,code}} (Azure sends type
// null and string codes such as "content_filter" or "429"; vLLM sends a
// numeric code), the same object without the envelope (older vLLM:
// {"object":"error","message":...}), {"error":"text"} (LM Studio, llama.cpp
// proxies) and Azure API Management's {"statusCode":401,"message":...}.
type upstreamError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Param   json.RawMessage `json:"param"`
	Code    json.RawMessage `json:"code"`
}

type upstreamErrorEnvelope struct {
	Error json.RawMessage `json:"error"`
	upstreamError
}

// Error maps a non-2xx answer to an OpenAI error with the same status and
// message. JSON error bodies keep type, param and code (codes that are
// numbers become their decimal text); a missing type is derived from the
// status. Other bodies (an HTML page from a load balancer) become
// "upstream returned 502 Bad Gateway: <text>", the text stripped of tags,
// collapsed and cut at MaxErrorSnippet bytes. Messages never carry
// credentials: bearer tokens and key-looking strings are masked. 429 and
// 5xx are Retryable; Retry-After (seconds or HTTP date) and Azure's and
// OpenAI's retry-after-ms (preferred: more precise) are kept.
func (t *Translator) Error(status int, header http.Header, body []byte) *openai.APIError {
	return mapError(status, header, body)
}

func mapError(status int, header http.Header, body []byte) *openai.APIError {
	out := status
	if out < 400 || out > 599 {
		out = http.StatusBadGateway
	}
	ue, ok := parseUpstreamError(body)
	var e *openai.APIError
	if ok {
		typ := ue.Type
		if typ == "" {
			typ = openai.ErrorTypeForStatus(out)
		}
		e = openai.NewError(out, typ, rawText(ue.Code), rawText(ue.Param), redact(ue.Message))
	} else {
		msg := fmt.Sprintf("upstream returned %d %s", status, http.StatusText(status))
		if s := snippet(body); s != "" {
			msg += ": " + s
		}
		e = openai.NewError(out, openai.ErrorTypeForStatus(out), "", "", msg)
	}
	if header != nil && e.Retryable {
		e.RetryAfter = retryAfter(header)
	}
	return e
}

// parseUpstreamError recognises the JSON error shapes; ok is false when
// none carries a message.
func parseUpstreamError(body []byte) (upstreamError, bool) {
	var env upstreamErrorEnvelope
	if json.Unmarshal(body, &env) != nil {
		return upstreamError{}, false
	}
	inner := bytes.TrimSpace(env.Error)
	if len(inner) > 0 {
		switch inner[0] {
		case '{':
			var ue upstreamError
			if json.Unmarshal(inner, &ue) == nil && ue.Message != "" {
				return ue, true
			}
		case '"':
			var s string
			if json.Unmarshal(inner, &s) == nil && s != "" {
				return upstreamError{Message: s}, true
			}
		}
	}
	if env.Message != "" {
		return env.upstreamError, true
	}
	return upstreamError{}, false
}

// errorFromEvent maps an error sent inside a 2xx stream. There is no HTTP
// status, so it is derived from a numeric code (vLLM) or the error type;
// anything else is a 502 the proxy may retry before the first chunk.
func errorFromEvent(ue upstreamError) *openai.APIError {
	status := http.StatusBadGateway
	if n, err := strconv.Atoi(rawText(ue.Code)); err == nil && n >= 400 && n <= 599 {
		status = n
	} else {
		switch ue.Type {
		case openai.TypeInvalidRequest:
			status = http.StatusBadRequest
		case openai.TypeRateLimit:
			status = http.StatusTooManyRequests
		case openai.TypeAuthentication:
			status = http.StatusUnauthorized
		case openai.TypePermission:
			status = http.StatusForbidden
		case openai.TypeNotFound:
			status = http.StatusNotFound
		}
	}
	typ := ue.Type
	if typ == "" {
		typ = openai.ErrorTypeForStatus(status)
	}
	msg := redact(ue.Message)
	if msg == "" {
		msg = "upstream reported an error mid-stream"
	}
	return openai.NewError(status, typ, rawText(ue.Code), rawText(ue.Param), msg)
}

// rawText returns a JSON string's value or a number's text; "" for null,
// objects and arrays.
func rawText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return string(raw)
	}
	return ""
}

// retryAfter reads retry-after-ms (milliseconds, may be fractional), else
// Retry-After (translate.RetryAfter); 0 when absent or unusable.
func retryAfter(h http.Header) time.Duration {
	if v := strings.TrimSpace(h.Get("retry-after-ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && ms < 1e10 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	return translate.RetryAfter(h, now())
}

var (
	secretRE = regexp.MustCompile(`(?i)(bearer\s+|api[-_]?key["']?\s*[:=]\s*["']?|x-api-key["']?\s*[:=]\s*["']?)[A-Za-z0-9._~+/=*-]{6,}|\b(sk|pk|rk)-[A-Za-z0-9_*-]{6,}|\bAIza[0-9A-Za-z_-]{20,}`)
)

// snippet renders a non-JSON body as one short line (translate.ErrorSnippet).
func snippet(body []byte) string { return translate.ErrorSnippet(body, redact) }

// redact masks credentials an upstream might echo (a proxy page quoting
// the Authorization header, a message quoting the key).
func redact(s string) string {
	if !secretRE.MatchString(s) {
		return s
	}
	return secretRE.ReplaceAllStringFunc(s, func(m string) string {
		if loc := secretRE.FindStringSubmatchIndex(m); loc != nil && loc[2] >= 0 {
			return m[:loc[3]] + "[redacted]"
		}
		return "[redacted]"
	})
}
