package openai

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/schema/openai"
)

// Error codes the parser sets, following the codes OpenAI itself returns
// for the same mistakes so client error handling keeps working.
const (
	CodeInvalidJSON      = "invalid_json"
	CodeInvalidType      = "invalid_type"
	CodeMissingParameter = "missing_required_parameter"
	CodeInvalidValue     = "invalid_value"
	CodeEmptyArray       = "empty_array"
	CodeBelowMin         = "integer_below_min_value"
	CodeAboveMax         = "integer_above_max_value"
	CodeDecimalBelowMin  = "decimal_below_min_value"
	CodeDecimalAboveMax  = "decimal_above_max_value"
	CodeArrayTooLong     = "array_above_max_length"
)

// Limits OpenAI documents for Chat Completions parameters, enforced at the
// gateway so a request that OpenAI would refuse is refused the same way
// whatever provider the route picks.
const (
	MaxChoices          = 128
	MaxStopSequences    = 4
	MaxTopLogprobs      = 20
	MaxFunctionNameLen  = 64
	MaxEmbeddingInputs  = 2048
	maxChoiceIndexInRun = 1024 // stream sanity bound, well above MaxChoices
)

// ParseChatRequest parses and validates a POST /v1/chat/completions body.
// It is the front door of the data plane, so every kind of bad input ends
// as a 400 invalid_request_error naming the offending parameter the way
// OpenAI does ("messages[2].role"), never as a panic or a 5xx.
//
// The happy path is a single encoding/json decode; only when decoding fails
// does a slower diagnostic pass walk the body to name the field at fault.
// Normalisations (so that what is accepted re-marshals to the same value):
// a JSON null tool parameters or json_schema.schema becomes absent, an
// empty stop array becomes absent. The request keeps the body in Native
// unless a normalisation changed what it says, so an OpenAI-dialect
// upstream can get the client's own bytes, fields Tollgate does not model
// included (see Translator.ChatBody); other translators use the struct.
func ParseChatRequest(body []byte) (*openai.ChatRequest, *openai.APIError) {
	if err := expectObject(body); err != nil {
		return nil, err
	}
	req := new(openai.ChatRequest)
	if err := json.Unmarshal(body, req); err != nil {
		return nil, decodeError(body, err, reflect.TypeFor[openai.ChatRequest]())
	}
	req.Native = &openai.Native{Dialect: openai.DialectOpenAI, Body: body} // validateChat clears it when it normalises a field
	if err := validateChat(body, req); err != nil {
		return nil, err
	}
	return req, nil
}

// ParseEmbeddingRequest parses and validates a POST /v1/embeddings body:
// model is required and input must be a non-empty string, a non-empty
// array of non-empty strings, or a non-empty array of token ids or of
// non-empty token-id arrays, at most MaxEmbeddingInputs entries.
func ParseEmbeddingRequest(body []byte) (*openai.EmbeddingRequest, *openai.APIError) {
	if err := expectObject(body); err != nil {
		return nil, err
	}
	req := new(openai.EmbeddingRequest)
	if err := json.Unmarshal(body, req); err != nil {
		return nil, decodeError(body, err, reflect.TypeFor[openai.EmbeddingRequest]())
	}
	if req.Model == "" {
		return nil, invalid(CodeMissingParameter, "model", "you must provide a model parameter")
	}
	if err := validateEmbeddingInput(req.Input); err != nil {
		return nil, err
	}
	switch req.EncodingFormat {
	case "", "float", "base64":
	default:
		return nil, invalid(CodeInvalidValue, "encoding_format",
			"invalid value for 'encoding_format': %s. supported values are: 'float' and 'base64'", quote(req.EncodingFormat))
	}
	if req.Dimensions != nil && *req.Dimensions < 1 {
		return nil, belowMin("dimensions", *req.Dimensions, 1)
	}
	return req, nil
}

func validateEmbeddingInput(raw json.RawMessage) *openai.APIError {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return invalid(CodeMissingParameter, "input", "missing required parameter: 'input'")
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return invalid(CodeInvalidType, "input", "invalid type for 'input': expected a string or an array")
		}
		if s == "" {
			return invalid(CodeInvalidValue, "input", "invalid 'input': empty string. expected a non-empty string")
		}
		return nil
	case '[':
	default:
		return invalid(CodeInvalidType, "input",
			"invalid type for 'input': expected a string, an array of strings, an array of integers or an array of integer arrays")
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return invalid(CodeInvalidType, "input", "invalid type for 'input': expected an array")
	}
	if len(items) == 0 {
		return invalid(CodeEmptyArray, "input", "invalid 'input': empty array. expected an array with minimum length 1, but got an empty array instead")
	}
	if len(items) > MaxEmbeddingInputs {
		return invalid(CodeArrayTooLong, "input", "invalid 'input': array too long. expected an array with maximum length %d, but got an array with length %d instead",
			MaxEmbeddingInputs, len(items))
	}
	// All entries must be of one kind, decided by the first.
	first := items[0]
	for i, it := range items {
		param := fmt.Sprintf("input[%d]", i)
		switch {
		case first[0] == '"':
			var s string
			if it[0] != '"' || json.Unmarshal(it, &s) != nil {
				return invalid(CodeInvalidType, param, "invalid type for '%s': expected a string like the other inputs", param)
			}
			if s == "" {
				return invalid(CodeInvalidValue, param, "invalid '%s': empty string. expected a non-empty string", param)
			}
		case first[0] == '[':
			var ids []int64
			if it[0] != '[' || json.Unmarshal(it, &ids) != nil {
				return invalid(CodeInvalidType, param, "invalid type for '%s': expected an array of integer token ids", param)
			}
			if len(ids) == 0 {
				return invalid(CodeEmptyArray, param, "invalid '%s': empty array. expected an array with minimum length 1", param)
			}
		default:
			var id int64
			if json.Unmarshal(it, &id) != nil {
				return invalid(CodeInvalidType, param, "invalid type for '%s': expected an integer token id", param)
			}
		}
	}
	return nil
}

// expectObject rejects bodies that are not a JSON object before decoding,
// so "null", "[]" or "42" get a clear message instead of "missing model".
func expectObject(body []byte) *openai.APIError {
	b := bytes.TrimLeft(body, " \t\r\n")
	if len(b) == 0 {
		return invalid(CodeInvalidJSON, "", "the request body is empty; expected a JSON object")
	}
	if b[0] != '{' {
		if !json.Valid(body) {
			return syntaxError(body)
		}
		return invalid(CodeInvalidType, "", "the request body must be a JSON object")
	}
	return nil
}

func syntaxError(body []byte) *openai.APIError {
	var v any
	err := json.Unmarshal(body, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return invalid(CodeInvalidJSON, "", "could not parse the JSON body of the request: %s (at byte offset %d)", se.Error(), se.Offset)
	}
	return invalid(CodeInvalidJSON, "", "could not parse the JSON body of the request: %v", err)
}

// decodeError turns a failed fast-path decode into a precise 400. Syntax
// errors report their byte offset; type errors are located by re-decoding
// the body piece by piece to get a full path with array indices, which
// encoding/json's own errors lack.
func decodeError(body []byte, err error, root reflect.Type) *openai.APIError {
	if !json.Valid(body) {
		return syntaxError(body)
	}
	path, ferr := locate(body, root, "")
	if ferr == nil {
		// Cannot happen for a body that failed to decode as a whole; keep
		// the original error rather than guessing.
		path, ferr = "", err
	}
	var te *json.UnmarshalTypeError
	if errors.As(ferr, &te) {
		if path == "" {
			return invalid(CodeInvalidType, "", "the request body must be a JSON object")
		}
		if strings.HasPrefix(te.Value, "number ") {
			return invalid(CodeInvalidValue, path, "invalid value for '%s': %s does not fit %s", path, te.Value, describeType(te.Type))
		}
		return invalid(CodeInvalidType, path, "invalid type for '%s': expected %s, but got %s instead", path, describeType(te.Type), article(te.Value))
	}
	if path == "" {
		return invalid(CodeInvalidValue, "", "invalid request body: %s", ferr.Error())
	}
	return invalid(CodeInvalidValue, path, "invalid value for '%s': %s", path, ferr.Error())
}

var (
	contentType     = reflect.TypeFor[openai.Content]()
	partsType       = reflect.TypeFor[[]openai.ContentPart]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// locate returns the path of the first value in raw that does not decode
// into t, and the decoding error for it; ("", nil) when raw decodes.
func locate(raw []byte, t reflect.Type, path string) (string, error) {
	err := json.Unmarshal(raw, reflect.New(t).Interface())
	if err == nil {
		return "", nil
	}
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	switch {
	case t == contentType:
		if len(trimmed) > 0 && trimmed[0] == '[' {
			if p, e := locate(raw, partsType, path); e != nil {
				return p, e
			}
		}
		return path, err
	case t == rawMessageType || reflect.PointerTo(t).Implements(unmarshalerType):
		return path, err
	case t.Kind() == reflect.Pointer:
		return locate(raw, t.Elem(), path)
	case t.Kind() == reflect.Struct:
		var fields map[string]json.RawMessage
		if json.Unmarshal(raw, &fields) != nil {
			return path, err
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name := jsonName(f)
			if name == "" {
				continue
			}
			v, ok := lookupFold(fields, name)
			if !ok {
				continue
			}
			if p, e := locate(v, f.Type, joinField(path, name)); e != nil {
				return p, e
			}
		}
		return path, err
	case t.Kind() == reflect.Slice:
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return path, err
		}
		for i, v := range items {
			if p, e := locate(v, t.Elem(), path+"["+strconv.Itoa(i)+"]"); e != nil {
				return p, e
			}
		}
		return path, err
	case t.Kind() == reflect.Map:
		var items map[string]json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return path, err
		}
		for k, v := range items {
			if p, e := locate(v, t.Elem(), joinField(path, k)); e != nil {
				return p, e
			}
		}
		return path, err
	}
	return path, err
}

func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return ""
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name
}

// lookupFold finds a key the way encoding/json matches fields: exactly, or
// else case-insensitively.
func lookupFold(m map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

func joinField(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func describeType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

func article(jsonKind string) string {
	switch jsonKind {
	case "array", "object":
		return "an " + jsonKind
	case "bool":
		return "a boolean"
	default:
		return "a " + jsonKind
	}
}

// invalid builds a 400 invalid_request_error.
func invalid(code, param, format string, args ...any) *openai.APIError {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	return openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, code, param, msg)
}

func missing(param string) *openai.APIError {
	return invalid(CodeMissingParameter, param, "missing required parameter: '%s'", param)
}

func belowMin(param string, got, minimum int) *openai.APIError {
	return invalid(CodeBelowMin, param, "invalid '%s': integer below minimum value. expected a value >= %d, but got %d instead", param, minimum, got)
}

func outOfRange(param string, got, lo, hi float64) *openai.APIError {
	if got < lo {
		return invalid(CodeDecimalBelowMin, param, "invalid '%s': decimal below minimum value. expected a value >= %s, but got %s instead",
			param, fmtFloat(lo), fmtFloat(got))
	}
	return invalid(CodeDecimalAboveMax, param, "invalid '%s': decimal above maximum value. expected a value <= %s, but got %s instead",
		param, fmtFloat(hi), fmtFloat(got))
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// quote renders a client-supplied value in a message, bounded so a huge
// value cannot blow up the error body.
func quote(s string) string {
	const maxLen = 64
	if len(s) > maxLen {
		cut := maxLen
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return "'" + s + "'"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
