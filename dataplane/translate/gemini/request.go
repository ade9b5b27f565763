// Package gemini translates between Tollgate's canonical form (OpenAI Chat
// Completions) and Google's Generative Language API (v1beta generateContent,
// streamGenerateContent with alt=sse, batchEmbedContents).
//
// Mapping choices that are not one-to-one:
//
//   - system and developer messages become systemInstruction parts, in
//     order; user/assistant become contents with roles user/model.
//   - OpenAI tool messages become functionResponse parts; Gemini matches
//     them by function name, which is looked up from the assistant
//     tool_call with the same id (the latest one, so per-response ids that
//     repeat across turns still resolve). Consecutive tool messages form one
//     user turn, as Gemini expects for parallel calls, with the responses in
//     the order of the calls of the preceding assistant message (clients may
//     send results in completion order; Gemini pairs them by position). A response that is
//     not a JSON object is wrapped as {"content": value}.
//   - Gemini function calls carry no ids: ids are generated as
//     call_<response id>_<n>, numbered in order of appearance across the
//     response, so the same answer gets the same ids streamed or not.
//   - Thought signatures (Gemini 3 requires them back on function calls):
//     a function call's signature is carried in its tool call id (see
//     withSignature for the form and the bound on id length), which every
//     OpenAI client echoes back, so it returns losslessly on the exact call
//     part it came with. The first signature of each candidate is also
//     returned as reasoning_signature; sent back, it goes on the first
//     function call when that call's id carries none, on the text part
//     when the calls carry their own, or on the last part of a message
//     without calls. A first function call left without any signature gets
//     Google's documented "skip_thought_signature_validator" sentinel, so
//     agent loops keep working on Gemini 3 even with ids made elsewhere.
//   - tool schemas and json_schema response formats are converted to
//     Gemini's Schema subset by ConvertSchema (see there for what is
//     dropped).
//   - reasoning_effort maps to thinkingConfig (see ThinkingBudget) with
//     includeThoughts, and thought parts come back as reasoning_content.
//   - parallel_tool_calls, logprobs, user and metadata have no Gemini
//     equivalent and are not sent.
package gemini

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"

	json "github.com/go-json-experiment/json/v1"
	wire "tollgate.dev/tollgate/dataplane/schema/gemini"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	"tollgate.dev/tollgate/dataplane/translate/media"
)

// SkipSignatureValidator is the thought signature Google documents for
// function calls that did not come from the model's own response (or whose
// signature was lost); Gemini 3 accepts it instead of a real signature.
const SkipSignatureValidator = "skip_thought_signature_validator"

// Translator is the Gemini translator. It is stateless and safe for
// concurrent use.
type Translator struct{}

// New returns the Gemini translator.
func New() translate.Translator { return Translator{} }

var (
	_ translate.Translator = Translator{}
	_ translate.Embedder   = Translator{}
)

// modelPath returns the URL path segment for model, accepting both
// "gemini-2.5-flash" and "models/gemini-2.5-flash".
func modelPath(model string) string {
	return url.PathEscape(strings.TrimPrefix(model, "models/"))
}

// newRequest builds a POST with the provider's static headers first and the
// credential last, so a configured header can never replace it. The key is
// sent in x-goog-api-key, never in the URL, so it cannot leak through
// logged URLs or error messages.
func newRequest(ctx context.Context, t translate.Target, path string, body any) (*http.Request, error) {
	if t.Provider == nil {
		return nil, fmt.Errorf("gemini: target has no provider")
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("gemini: encode request: %w", err)
	}
	u := strings.TrimRight(t.Provider.BaseURL, "/") + path
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("gemini: build request for provider %s: invalid base URL", t.Provider.ID)
	}
	for k, v := range t.Provider.Headers {
		hr.Header.Set(k, v)
	}
	if t.Provider.APIKey != "" {
		hr.Header.Set("x-goog-api-key", t.Provider.APIKey)
	}
	hr.Header.Set("Content-Type", "application/json")
	return hr, nil
}

// ChatRequest builds POST {BaseURL}/v1beta/models/{model}:generateContent,
// or :streamGenerateContent?alt=sse for streaming requests (Gemini always
// reports usage in its last stream event, so nothing has to be asked for).
func (Translator) ChatRequest(ctx context.Context, req *openai.ChatRequest, t translate.Target) (*http.Request, error) {
	body, err := BuildRequest(ctx, req, t.Media)
	if err != nil {
		return nil, err
	}
	path := "/v1beta/models/" + modelPath(t.Model)
	if req.Stream {
		path += ":streamGenerateContent?alt=sse"
	} else {
		path += ":generateContent"
	}
	hr, err := newRequest(ctx, t, path, body)
	if err != nil {
		return nil, err
	}
	if req.Stream {
		hr.Header.Set("Accept", "text/event-stream")
	} else {
		hr.Header.Set("Accept", "application/json")
	}
	return hr, nil
}

// badRequest builds the 400 error for a request Gemini cannot serve.
func badRequest(param, format string, args ...any) *openai.APIError {
	return openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, "", param, fmt.Sprintf(format, args...))
}

// BuildRequest maps a canonical request to a GenerateContentRequest. It is
// pure except for fetching http(s) images through fetcher (nil means only
// data: URLs are accepted); every error is an *openai.APIError with status
// 400.
func BuildRequest(ctx context.Context, req *openai.ChatRequest, fetcher translate.MediaFetcher) (*wire.GenerateContentRequest, error) {
	out := &wire.GenerateContentRequest{}
	if err := convertMessages(ctx, req.Messages, fetcher, out); err != nil {
		return nil, err
	}
	if err := convertTools(req, out); err != nil {
		return nil, err
	}
	gc, err := generationConfig(req)
	if err != nil {
		return nil, err
	}
	out.GenerationConfig = gc
	return out, nil
}

// convertMessages fills SystemInstruction and Contents.
func convertMessages(ctx context.Context, msgs []openai.Message, fetcher translate.MediaFetcher, out *wire.GenerateContentRequest) error {
	out.Contents = make([]wire.Content, 0, len(msgs))
	callNames := make(map[string]string)
	var callOrder map[string]int // tool_call_id -> position in the last assistant turn
	var turnOrder []int          // call position of each part of the open tool turn
	toolTurn := -1               // index in out.Contents of the open function-response turn
	for i := range msgs {
		m := &msgs[i]
		param := fmt.Sprintf("messages[%d]", i)
		if m.Role == openai.RoleAssistant {
			// Only a new model turn closes the function-response turn: a
			// user (or hoisted system) message sent between results must
			// not split it, because Gemini requires as many responses as
			// calls in the turn that follows the calls.
			toolTurn = -1
		}
		switch m.Role {
		case openai.RoleSystem, openai.RoleDeveloper:
			parts, err := textParts(m.Content, param)
			if err != nil {
				return err
			}
			if len(parts) == 0 {
				continue
			}
			if out.SystemInstruction == nil {
				out.SystemInstruction = &wire.Content{}
			}
			out.SystemInstruction.Parts = append(out.SystemInstruction.Parts, parts...)
		case openai.RoleUser:
			parts, err := userParts(ctx, m.Content, fetcher, param)
			if err != nil {
				return err
			}
			if len(parts) == 0 {
				continue
			}
			out.Contents = append(out.Contents, wire.Content{Role: wire.RoleUser, Parts: parts})
		case openai.RoleAssistant:
			parts, err := assistantParts(m, param, callNames)
			if err != nil {
				return err
			}
			callOrder = make(map[string]int, len(m.ToolCalls))
			for j, tc := range m.ToolCalls {
				callOrder[tc.ID] = j
			}
			if len(parts) == 0 {
				continue
			}
			out.Contents = append(out.Contents, wire.Content{Role: wire.RoleModel, Parts: parts})
		case openai.RoleTool:
			name, ok := callNames[m.ToolCallID]
			if !ok {
				name = m.Name
			}
			if name == "" {
				return badRequest(param+".tool_call_id", "%s: tool_call_id %q does not match any earlier assistant tool call", param, m.ToolCallID)
			}
			part := wire.Part{FunctionResponse: &wire.FunctionResponse{Name: name, Response: functionResponse(m.Content.PlainText())}}
			pos, ok := callOrder[m.ToolCallID]
			if !ok {
				pos = len(callOrder) // unmatched results keep their order, last
			}
			if toolTurn < 0 {
				out.Contents = append(out.Contents, wire.Content{Role: wire.RoleUser})
				toolTurn, turnOrder = len(out.Contents)-1, turnOrder[:0]
			}
			// Gemini pairs parallel responses with the calls in order, so
			// results the client sent in another order are put in call
			// order (stable for equal positions).
			ps := out.Contents[toolTurn].Parts
			at := len(ps)
			for at > 0 && turnOrder[at-1] > pos {
				at--
			}
			out.Contents[toolTurn].Parts = append(ps[:at], append([]wire.Part{part}, ps[at:]...)...)
			turnOrder = append(turnOrder[:at], append([]int{pos}, turnOrder[at:]...)...)
		default:
			return badRequest(param+".role", "%s: role %q is not supported", param, m.Role)
		}
	}
	return nil
}

// textParts returns the text of a system message as parts; non-text parts
// are a client error because systemInstruction only holds text.
func textParts(c openai.Content, param string) ([]wire.Part, error) {
	switch c.Kind {
	case openai.ContentString:
		if c.Text == "" {
			return nil, nil
		}
		return []wire.Part{{Text: c.Text}}, nil
	case openai.ContentParts:
		parts := make([]wire.Part, 0, len(c.Parts))
		for j, p := range c.Parts {
			if p.Type != openai.PartText {
				return nil, badRequest(fmt.Sprintf("%s.content[%d]", param, j), "%s: system messages may only contain text", param)
			}
			if p.Text != "" {
				parts = append(parts, wire.Part{Text: p.Text})
			}
		}
		return parts, nil
	}
	return nil, nil
}

// userParts converts a user message's content: text, images, audio and
// inline files.
func userParts(ctx context.Context, c openai.Content, fetcher translate.MediaFetcher, param string) ([]wire.Part, error) {
	if c.Kind != openai.ContentParts {
		if c.Text == "" {
			return nil, nil
		}
		return []wire.Part{{Text: c.Text}}, nil
	}
	parts := make([]wire.Part, 0, len(c.Parts))
	for j := range c.Parts {
		p := &c.Parts[j]
		pp := fmt.Sprintf("%s.content[%d]", param, j)
		switch p.Type {
		case openai.PartText:
			if p.Text != "" {
				parts = append(parts, wire.Part{Text: p.Text})
			}
		case openai.PartImageURL:
			if p.ImageURL == nil {
				return nil, badRequest(pp, "%s: image_url part has no image_url", pp)
			}
			blob, err := InlineImage(ctx, p.ImageURL.URL, fetcher, pp)
			if err != nil {
				return nil, err
			}
			parts = append(parts, wire.Part{InlineData: blob})
		case openai.PartInputAudio:
			if p.InputAudio == nil || p.InputAudio.Data == "" {
				return nil, badRequest(pp, "%s: input_audio part has no data", pp)
			}
			mt, ok := audioMimeTypes[p.InputAudio.Format]
			if !ok {
				return nil, badRequest(pp, "%s: audio format %q is not supported (use wav or mp3)", pp, p.InputAudio.Format)
			}
			parts = append(parts, wire.Part{InlineData: &wire.Blob{MimeType: mt, Data: p.InputAudio.Data}})
		case openai.PartFile:
			if p.File == nil || p.File.FileData == "" {
				return nil, badRequest(pp, "%s: only inline files (file_data as a data: URL) can be sent to Gemini", pp)
			}
			d, ok, err := media.ParseDataURL(p.File.FileData)
			if !ok || err != nil {
				return nil, badRequest(pp, "%s: file_data must be a base64 data: URL", pp)
			}
			parts = append(parts, wire.Part{InlineData: &wire.Blob{MimeType: d.MediaType, Data: d.Base64}})
		default:
			return nil, badRequest(pp, "%s: content part type %q is not supported", pp, p.Type)
		}
	}
	return parts, nil
}

var audioMimeTypes = map[string]string{"wav": "audio/wav", "mp3": "audio/mp3"}

// InlineImage turns an image_url into inline bytes: data: URLs are decoded,
// http(s) URLs are loaded through fetcher. Gemini cannot load arbitrary URLs
// itself, so without a fetcher an http(s) image is a client error.
func InlineImage(ctx context.Context, rawURL string, fetcher translate.MediaFetcher, param string) (*wire.Blob, error) {
	if d, ok, err := media.ParseDataURL(rawURL); ok {
		if err != nil {
			return nil, badRequest(param, "%s: %v", param, err)
		}
		return &wire.Blob{MimeType: d.MediaType, Data: d.Base64}, nil
	}
	if !strings.HasPrefix(rawURL, "http://") && !strings.HasPrefix(rawURL, "https://") {
		return nil, badRequest(param, "%s: image URL must be an http(s) or data: URL", param)
	}
	if fetcher == nil {
		return nil, badRequest(param, "%s: Gemini needs image bytes inline and this gateway does not fetch image URLs; send the image as a base64 data: URL", param)
	}
	mt, data, err := fetcher.Fetch(ctx, rawURL)
	if err != nil {
		return nil, badRequest(param, "%s: could not load image: %v", param, err)
	}
	return &wire.Blob{MimeType: mt, Data: base64Encode(data)}, nil
}

// assistantParts converts an assistant message: text, then function calls;
// the thought signature goes on the first call (or the last part).
func assistantParts(m *openai.Message, param string, callNames map[string]string) ([]wire.Part, error) {
	parts := make([]wire.Part, 0, 1+len(m.ToolCalls))
	if text := assistantText(m); text != "" {
		parts = append(parts, wire.Part{Text: text})
	}
	firstCall := -1
	embedded := false
	for j := range m.ToolCalls {
		tc := &m.ToolCalls[j]
		pp := fmt.Sprintf("%s.tool_calls[%d]", param, j)
		if tc.Function.Name == "" {
			return nil, badRequest(pp+".function.name", "%s: tool call has no function name", pp)
		}
		args, err := callArgs(tc.Function.Arguments, pp)
		if err != nil {
			return nil, err
		}
		if tc.ID != "" {
			callNames[tc.ID] = tc.Function.Name
		}
		if firstCall < 0 {
			firstCall = len(parts)
		}
		_, callSig := splitSignature(tc.ID)
		embedded = embedded || callSig != ""
		parts = append(parts, wire.Part{FunctionCall: &wire.FunctionCall{Name: tc.Function.Name, Args: args}, ThoughtSignature: callSig})
	}
	sig := m.ReasoningSignature
	switch {
	case firstCall >= 0 && parts[firstCall].ThoughtSignature == "":
		// The first call of each step must be signed. Without the
		// signature in its id, reasoning_signature (the first signature
		// of the response) is the best guess, then Google's sentinel.
		if sig == "" || embedded {
			sig = SkipSignatureValidator
		}
		parts[firstCall].ThoughtSignature = sig
	case firstCall >= 0:
		// The calls carry their own signatures; a different
		// reasoning_signature came from the text part before them.
		if sig != "" && firstCall > 0 && !signedWith(parts, sig) {
			parts[0].ThoughtSignature = sig
		}
	case sig != "" && len(parts) > 0:
		parts[len(parts)-1].ThoughtSignature = sig
	}
	return parts, nil
}

// signedWith reports whether a part already carries sig.
func signedWith(parts []wire.Part, sig string) bool {
	for i := range parts {
		if parts[i].ThoughtSignature == sig {
			return true
		}
	}
	return false
}

// assistantText is the assistant's answer text; a refusal is text to Gemini.
func assistantText(m *openai.Message) string {
	if m.Content.Kind == openai.ContentParts {
		var b strings.Builder
		for _, p := range m.Content.Parts {
			switch p.Type {
			case openai.PartText:
				b.WriteString(p.Text)
			case openai.PartRefusal:
				b.WriteString(p.Refusal)
			}
		}
		return b.String()
	}
	if m.Content.Text == "" {
		return m.Refusal
	}
	return m.Content.Text
}

// callArgs validates an assistant tool call's arguments: Gemini's args is a
// JSON object (an empty string means no arguments).
func callArgs(s, param string) (json.RawMessage, error) {
	b := bytes.TrimSpace([]byte(s))
	if len(b) == 0 {
		return json.RawMessage("{}"), nil
	}
	if b[0] != '{' || !json.Valid(b) {
		return nil, badRequest(param+".function.arguments", "%s: function arguments must be a JSON object", param)
	}
	return b, nil
}

// functionResponse makes a tool result a JSON object, as Gemini requires:
// an object is sent as is, any other JSON value or plain text is wrapped as
// {"content": value}.
func functionResponse(text string) json.RawMessage {
	b := bytes.TrimSpace([]byte(text))
	if len(b) > 0 && b[0] == '{' && json.Valid(b) {
		return b
	}
	var v json.RawMessage
	if len(b) > 0 && json.Valid(b) {
		v = b
	} else {
		v, _ = json.Marshal(text)
	}
	out := make([]byte, 0, len(v)+12)
	out = append(out, `{"content":`...)
	out = append(out, v...)
	return append(out, '}')
}

// convertTools maps tools and tool_choice.
func convertTools(req *openai.ChatRequest, out *wire.GenerateContentRequest) error {
	if len(req.Tools) == 0 {
		return nil
	}
	decls := make([]wire.FunctionDeclaration, 0, len(req.Tools))
	for i := range req.Tools {
		t := &req.Tools[i]
		param := fmt.Sprintf("tools[%d]", i)
		if t.Type != "" && t.Type != "function" {
			return badRequest(param+".type", "%s: tool type %q is not supported", param, t.Type)
		}
		if t.Function.Name == "" {
			return badRequest(param+".function.name", "%s: function has no name", param)
		}
		d := wire.FunctionDeclaration{Name: t.Function.Name, Description: t.Function.Description}
		if len(t.Function.Parameters) > 0 {
			s, err := ConvertSchema(t.Function.Parameters)
			if err != nil {
				return badRequest(param+".function.parameters", "%s: %v", param, err)
			}
			// Gemini rejects an OBJECT schema without properties in a
			// declaration; a function without parameters omits the field.
			if s != nil && !(s.Type == wire.TypeObject && len(s.Properties) == 0) {
				d.Parameters = s
			}
		}
		decls = append(decls, d)
	}
	out.Tools = []wire.Tool{{FunctionDeclarations: decls}}
	if req.ToolChoice == nil {
		return nil
	}
	fc := &wire.FunctionCallingConfig{}
	switch req.ToolChoice.Mode {
	case openai.ToolChoiceAuto:
		fc.Mode = wire.ModeAuto
	case openai.ToolChoiceNone:
		fc.Mode = wire.ModeNone
	case openai.ToolChoiceRequired:
		fc.Mode = wire.ModeAny
	case openai.ToolChoiceFunction:
		found := false
		for _, d := range decls {
			found = found || d.Name == req.ToolChoice.Function
		}
		if !found {
			return badRequest("tool_choice", "tool_choice names function %q, which is not in tools", req.ToolChoice.Function)
		}
		fc.Mode = wire.ModeAny
		fc.AllowedFunctionNames = []string{req.ToolChoice.Function}
	default:
		return badRequest("tool_choice", "tool_choice %q is not supported", req.ToolChoice.Mode)
	}
	out.ToolConfig = &wire.ToolConfig{FunctionCallingConfig: fc}
	return nil
}

// generationConfig maps sampling, length, format and thinking options; it
// returns nil when nothing is set, so Gemini's defaults apply.
func generationConfig(req *openai.ChatRequest) (*wire.GenerationConfig, error) {
	gc := wire.GenerationConfig{
		Temperature:      req.Temperature,
		TopP:             req.TopP,
		Seed:             req.Seed,
		PresencePenalty:  req.PresencePenalty,
		FrequencyPenalty: req.FrequencyPenalty,
		CandidateCount:   req.N,
	}
	if len(req.Stop) > 0 {
		gc.StopSequences = append([]string(nil), req.Stop...)
	}
	if n := req.MaxOutputTokens(); n > 0 {
		gc.MaxOutputTokens = &n
	}
	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case openai.FormatText, "":
		case openai.FormatJSONObject:
			gc.ResponseMimeType = "application/json"
		case openai.FormatJSONSchema:
			gc.ResponseMimeType = "application/json"
			if rf.JSONSchema == nil {
				return nil, badRequest("response_format.json_schema", "response_format json_schema needs a json_schema object")
			}
			if len(rf.JSONSchema.Schema) > 0 {
				s, err := ConvertSchema(rf.JSONSchema.Schema)
				if err != nil {
					return nil, badRequest("response_format.json_schema.schema", "response_format: %v", err)
				}
				gc.ResponseSchema = s
			}
		default:
			return nil, badRequest("response_format.type", "response_format type %q is not supported", rf.Type)
		}
	}
	if req.ReasoningEffort != "" {
		budget, ok := ThinkingBudget(req.ReasoningEffort)
		if !ok {
			return nil, badRequest("reasoning_effort", "reasoning_effort %q is not supported", req.ReasoningEffort)
		}
		gc.ThinkingConfig = &wire.ThinkingConfig{ThinkingBudget: &budget, IncludeThoughts: budget != 0}
	}
	if reflect.ValueOf(gc).IsZero() {
		return nil, nil
	}
	return &gc, nil
}

// ThinkingBudget maps an OpenAI reasoning_effort to a Gemini thinkingBudget.
// It follows Google's own OpenAI-compatibility mapping (low 1024, medium
// 8192, high 24576, none 0 = thinking off) and adds minimal 512 (the
// smallest budget every 2.5 model accepts) and xhigh 24576 (the largest
// budget 2.5 Flash accepts; Google's mapping stops at high).
func ThinkingBudget(effort string) (budget int, ok bool) {
	switch effort {
	case "none":
		return 0, true
	case "minimal":
		return 512, true
	case "low":
		return 1024, true
	case "medium":
		return 8192, true
	case "high", "xhigh":
		return 24576, true
	}
	return 0, false
}

func base64Encode(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
