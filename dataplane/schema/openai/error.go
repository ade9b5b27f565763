package openai

import (
	"net/http"
	"time"

	json "github.com/go-json-experiment/json/v1"
)

// ErrorBody is OpenAI's error envelope: {"error": {...}}.
type ErrorBody struct {
	Error *APIError `json:"error"`
}

// APIError is an OpenAI-shaped error plus the HTTP status (and Retry-After)
// it must be sent with. It implements error so translators can return it.
type APIError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`

	// Status is the HTTP status to answer with.
	Status int `json:"-"`
	// RetryAfter, when non-zero, is sent as the Retry-After header.
	RetryAfter time.Duration `json:"-"`
	// Retryable marks errors that justify trying another target
	// (5xx, 429, overloaded), as opposed to client errors.
	Retryable bool `json:"-"`
}

// Error types used by OpenAI.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypePermission     = "permission_error"
	TypeNotFound       = "not_found_error"
	TypeRateLimit      = "rate_limit_error"
	TypeServer         = "server_error"
	TypeInsufficient   = "insufficient_quota"
)

func (e *APIError) Error() string { return e.Message }

// NewError builds an APIError; code and param may be empty.
func NewError(status int, typ, code, param, message string) *APIError {
	e := &APIError{Message: message, Type: typ, Status: status}
	if code != "" {
		e.Code = &code
	}
	if param != "" {
		e.Param = &param
	}
	e.Retryable = status == http.StatusTooManyRequests || status >= 500
	return e
}

// ErrorTypeForStatus returns the OpenAI error type conventionally used with an HTTP status.
func ErrorTypeForStatus(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return TypeAuthentication
	case status == http.StatusForbidden:
		return TypePermission
	case status == http.StatusNotFound:
		return TypeNotFound
	case status == http.StatusTooManyRequests:
		return TypeRateLimit
	case status >= 500:
		return TypeServer
	default:
		return TypeInvalidRequest
	}
}

// MarshalBody returns the JSON envelope {"error": e}.
func (e *APIError) MarshalBody() []byte {
	b, _ := json.Marshal(ErrorBody{Error: e})
	return b
}
