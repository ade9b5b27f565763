package openai

import (
	"bytes"
	"fmt"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate/anthropic"
)

// validateChat checks a decoded request against the rules OpenAI enforces,
// in a fixed order so the first problem reported is deterministic. body is
// the original bytes, consulted only on rare paths where presence of a key
// matters and the decoded struct cannot tell ("text": "" versus no text).
func validateChat(body []byte, req *openai.ChatRequest) *openai.APIError {
	if req.Model == "" {
		return invalid(CodeMissingParameter, "model", "you must provide a model parameter")
	}
	if req.Messages == nil {
		return missing("messages")
	}
	if len(req.Messages) == 0 {
		return invalid(CodeEmptyArray, "messages", "invalid 'messages': empty array. expected an array with minimum length 1, but got an empty array instead")
	}
	if err := validateMessages(body, req.Messages); err != nil {
		return err
	}
	if err := validateTools(req); err != nil {
		return err
	}
	if err := validateSampling(req); err != nil {
		return err
	}
	if err := validateResponseFormat(req); err != nil {
		return err
	}
	if req.StreamOptions != nil && !req.Stream {
		return invalid(CodeInvalidValue, "stream_options", "the 'stream_options' parameter is only allowed when 'stream' is enabled")
	}
	if len(req.Stop) == 0 && req.Stop != nil {
		req.Stop, req.Native = nil, nil
	}
	return nil
}

func validateMessages(body []byte, msgs []openai.Message) *openai.APIError {
	var callIDs map[string]struct{}
	for i := range msgs {
		m := &msgs[i]
		p := func() string { return fmt.Sprintf("messages[%d]", i) }
		switch m.Role {
		case openai.RoleSystem, openai.RoleDeveloper, openai.RoleUser, openai.RoleAssistant, openai.RoleTool:
		case "":
			return missing(p() + ".role")
		case openai.RoleFunction:
			return invalid(CodeInvalidValue, p()+".role",
				"invalid value for '%s.role': the 'function' role is deprecated and not supported; send the result as a 'tool' message with tool_call_id", p())
		default:
			return invalid(CodeInvalidValue, p()+".role",
				"invalid value for '%s.role': %s. supported values are: 'system', 'developer', 'user', 'assistant' and 'tool'", p(), quote(m.Role))
		}
		if len(m.ToolCalls) > 0 && m.Role != openai.RoleAssistant {
			return invalid(CodeInvalidValue, p()+".tool_calls", "invalid parameter: '%s.tool_calls' is only allowed on messages with role 'assistant'", p())
		}
		if err := validateContent(body, i, m); err != nil {
			return err
		}
		switch m.Role {
		case openai.RoleAssistant:
			for j := range m.ToolCalls {
				tc := &m.ToolCalls[j]
				tp := func() string { return fmt.Sprintf("messages[%d].tool_calls[%d]", i, j) }
				if tc.ID == "" {
					return missing(tp() + ".id")
				}
				if tc.Type != "" && tc.Type != "function" {
					return invalid(CodeInvalidValue, tp()+".type", "invalid value for '%s.type': %s. supported values are: 'function'", tp(), quote(tc.Type))
				}
				if tc.Function.Name == "" {
					return missing(tp() + ".function.name")
				}
				if callIDs == nil {
					callIDs = make(map[string]struct{}, 4)
				}
				callIDs[tc.ID] = struct{}{}
			}
		case openai.RoleTool:
			if m.ToolCallID == "" {
				return missing(p() + ".tool_call_id")
			}
			if _, ok := callIDs[m.ToolCallID]; !ok {
				return invalid(CodeInvalidValue, p()+".tool_call_id",
					"invalid parameter: '%s.tool_call_id' %s does not match the id of any tool call in an earlier assistant message", p(), quote(m.ToolCallID))
			}
		}
	}
	return nil
}

// allowedParts lists the content part types each role may send, as in
// OpenAI's message schemas.
func allowedParts(role string) (types []string, desc string) {
	switch role {
	case openai.RoleUser:
		return []string{openai.PartText, openai.PartImageURL, openai.PartInputAudio, openai.PartFile}, "'text', 'image_url', 'input_audio' and 'file'"
	case openai.RoleAssistant:
		return []string{openai.PartText, openai.PartRefusal}, "'text' and 'refusal'"
	default:
		return []string{openai.PartText}, "'text'"
	}
}

func validateContent(body []byte, i int, m *openai.Message) *openai.APIError {
	p := func() string { return fmt.Sprintf("messages[%d].content", i) }
	c := &m.Content
	if c.Kind == openai.ContentNull {
		if m.Role == openai.RoleAssistant && (len(m.ToolCalls) > 0 || m.Refusal != "") {
			return nil
		}
		if m.Role == openai.RoleAssistant {
			return invalid(CodeMissingParameter, p(), "missing required parameter: '%s' (an assistant message needs content, tool_calls or refusal)", p())
		}
		return missing(p())
	}
	if c.Kind != openai.ContentParts {
		return nil
	}
	if len(c.Parts) == 0 && !(m.Role == openai.RoleAssistant && len(m.ToolCalls) > 0) {
		return invalid(CodeEmptyArray, p(), "invalid '%s': empty array. expected an array with minimum length 1, but got an empty array instead", p())
	}
	allowed, desc := allowedParts(m.Role)
	for j := range c.Parts {
		part := &c.Parts[j]
		pp := func() string { return fmt.Sprintf("messages[%d].content[%d]", i, j) }
		if part.Type == "" {
			return missing(pp() + ".type")
		}
		ok := false
		for _, a := range allowed {
			ok = ok || part.Type == a
		}
		if !ok {
			return invalid(CodeInvalidValue, pp()+".type", "invalid value for '%s.type': %s. supported values for role '%s' are: %s",
				pp(), quote(part.Type), m.Role, desc)
		}
		if err := validateCacheControl(part.CacheControl, pp); err != nil {
			return err
		}
		switch part.Type {
		case openai.PartText:
			if part.Text == "" && !partHasKey(body, i, j, "text") {
				return missing(pp() + ".text")
			}
		case openai.PartRefusal:
			if part.Refusal == "" && !partHasKey(body, i, j, "refusal") {
				return missing(pp() + ".refusal")
			}
		case openai.PartImageURL:
			if part.ImageURL == nil {
				return missing(pp() + ".image_url")
			}
			if part.ImageURL.URL == "" {
				return missing(pp() + ".image_url.url")
			}
			switch part.ImageURL.Detail {
			case "", "auto", "low", "high":
			default:
				return invalid(CodeInvalidValue, pp()+".image_url.detail", "invalid value for '%s.image_url.detail': %s. supported values are: 'auto', 'low' and 'high'",
					pp(), quote(part.ImageURL.Detail))
			}
		case openai.PartInputAudio:
			if part.InputAudio == nil {
				return missing(pp() + ".input_audio")
			}
			if part.InputAudio.Data == "" {
				return missing(pp() + ".input_audio.data")
			}
			if part.InputAudio.Format == "" {
				return missing(pp() + ".input_audio.format")
			}
		case openai.PartFile:
			if part.File == nil {
				return missing(pp() + ".file")
			}
			if part.File.FileData == "" && part.File.FileID == "" {
				return invalid(CodeMissingParameter, pp()+".file", "missing required parameter: '%s.file' needs 'file_data' or 'file_id'", pp())
			}
		}
	}
	return nil
}

// partHasKey reports whether messages[i].content[j] in the raw body has the
// given key. It runs only when a text or refusal part decoded empty, to
// tell an explicit "" (valid) from a missing field (invalid).
func partHasKey(body []byte, i, j int, key string) bool {
	var probe struct {
		Messages []struct {
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if json.Unmarshal(body, &probe) != nil || i >= len(probe.Messages) {
		return false
	}
	var parts []map[string]json.RawMessage
	if json.Unmarshal(probe.Messages[i].Content, &parts) != nil || j >= len(parts) {
		return false
	}
	v, ok := lookupFold(parts[j], key)
	return ok && !bytes.Equal(bytes.TrimSpace(v), []byte("null"))
}

// validateCacheControl checks a part's or tool's cache_control (Anthropic
// prompt caching, see openai.ContentPart.CacheControl) when there is one:
// a marker Anthropic would reject is refused here, whatever provider the
// route picks, rather than by whichever Claude target it reaches.
func validateCacheControl(raw json.RawMessage, at func() string) *openai.APIError {
	if raw == nil {
		return nil
	}
	if _, err := anthropic.ParseCacheControl(raw); err != nil {
		return invalid(CodeInvalidValue, at()+".cache_control", "invalid value for '%s.cache_control': %v", at(), err)
	}
	return nil
}

func validName(name string) bool {
	if name == "" || len(name) > MaxFunctionNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validateTools(req *openai.ChatRequest) *openai.APIError {
	for i := range req.Tools {
		t := &req.Tools[i]
		p := func() string { return fmt.Sprintf("tools[%d]", i) }
		if t.Type == "" {
			return missing(p() + ".type")
		}
		if t.Type != "function" {
			return invalid(CodeInvalidValue, p()+".type", "invalid value for '%s.type': %s. supported values are: 'function'", p(), quote(t.Type))
		}
		if t.Function.Name == "" {
			return missing(p() + ".function.name")
		}
		if err := validateCacheControl(t.CacheControl, p); err != nil {
			return err
		}
		if !validName(t.Function.Name) {
			return invalid(CodeInvalidValue, p()+".function.name",
				"invalid '%s.function.name': %s. expected a string of at most %d characters matching the pattern '^[a-zA-Z0-9_-]+$'",
				p(), quote(t.Function.Name), MaxFunctionNameLen)
		}
		params := bytes.TrimSpace(t.Function.Parameters)
		switch {
		case len(params) == 0 || bytes.Equal(params, []byte("null")):
			if t.Function.Parameters != nil {
				t.Function.Parameters, req.Native = nil, nil
			}
		case params[0] != '{':
			return invalid(CodeInvalidType, p()+".function.parameters", "invalid type for '%s.function.parameters': expected an object (a JSON Schema)", p())
		}
	}
	tc := req.ToolChoice
	if tc == nil {
		return nil
	}
	switch tc.Mode {
	case openai.ToolChoiceRequired, openai.ToolChoiceFunction:
		if len(req.Tools) == 0 {
			return invalid(CodeInvalidValue, "tool_choice", "invalid value for 'tool_choice': 'tool_choice' %s is only allowed when 'tools' are specified", quote(tc.Mode))
		}
	}
	if tc.Mode == openai.ToolChoiceFunction {
		for i := range req.Tools {
			if req.Tools[i].Function.Name == tc.Function {
				return nil
			}
		}
		return invalid(CodeInvalidValue, "tool_choice", "invalid value for 'tool_choice': function %s is not among the declared tools", quote(tc.Function))
	}
	return nil
}

func validateSampling(req *openai.ChatRequest) *openai.APIError {
	if req.N != nil {
		if *req.N < 1 {
			return belowMin("n", *req.N, 1)
		}
		if *req.N > MaxChoices {
			return invalid(CodeAboveMax, "n", "invalid 'n': integer above maximum value. expected a value <= %d, but got %d instead", MaxChoices, *req.N)
		}
	}
	if v := req.Temperature; v != nil && (*v < 0 || *v > 2) {
		return outOfRange("temperature", *v, 0, 2)
	}
	if v := req.TopP; v != nil && (*v < 0 || *v > 1) {
		return outOfRange("top_p", *v, 0, 1)
	}
	if v := req.PresencePenalty; v != nil && (*v < -2 || *v > 2) {
		return outOfRange("presence_penalty", *v, -2, 2)
	}
	if v := req.FrequencyPenalty; v != nil && (*v < -2 || *v > 2) {
		return outOfRange("frequency_penalty", *v, -2, 2)
	}
	if v := req.MaxTokens; v != nil && *v < 1 {
		return belowMin("max_tokens", *v, 1)
	}
	if v := req.MaxCompletionTokens; v != nil && *v < 1 {
		return belowMin("max_completion_tokens", *v, 1)
	}
	if v := req.TopLogprobs; v != nil {
		if *v < 0 {
			return belowMin("top_logprobs", *v, 0)
		}
		if *v > MaxTopLogprobs {
			return invalid(CodeAboveMax, "top_logprobs", "invalid 'top_logprobs': integer above maximum value. expected a value <= %d, but got %d instead", MaxTopLogprobs, *v)
		}
	}
	if len(req.Stop) > MaxStopSequences {
		return invalid(CodeArrayTooLong, "stop", "invalid 'stop': array too long. expected an array with maximum length %d, but got an array with length %d instead",
			MaxStopSequences, len(req.Stop))
	}
	return nil
}

func validateResponseFormat(req *openai.ChatRequest) *openai.APIError {
	rf := req.ResponseFormat
	if rf == nil {
		return nil
	}
	switch rf.Type {
	case openai.FormatText, openai.FormatJSONObject:
		return nil
	case openai.FormatJSONSchema:
	case "":
		return missing("response_format.type")
	default:
		return invalid(CodeInvalidValue, "response_format.type",
			"invalid value for 'response_format.type': %s. supported values are: 'text', 'json_object' and 'json_schema'", quote(rf.Type))
	}
	js := rf.JSONSchema
	if js == nil {
		return missing("response_format.json_schema")
	}
	if js.Name == "" {
		return missing("response_format.json_schema.name")
	}
	if !validName(js.Name) {
		return invalid(CodeInvalidValue, "response_format.json_schema.name",
			"invalid 'response_format.json_schema.name': %s. expected a string of at most %d characters matching the pattern '^[a-zA-Z0-9_-]+$'",
			quote(js.Name), MaxFunctionNameLen)
	}
	schema := bytes.TrimSpace(js.Schema)
	switch {
	case len(schema) == 0 || bytes.Equal(schema, []byte("null")):
		if js.Schema != nil {
			js.Schema, req.Native = nil, nil
		}
	case schema[0] != '{':
		return invalid(CodeInvalidType, "response_format.json_schema.schema", "invalid type for 'response_format.json_schema.schema': expected an object (a JSON Schema)")
	}
	return nil
}
