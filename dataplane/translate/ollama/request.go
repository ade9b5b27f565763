// Package ollama translates the canonical (OpenAI) form to Ollama's native
// /api/chat and /api/embed, and Ollama's answers (JSON bodies and NDJSON
// streams) back.
//
// The native API is used rather than Ollama's /v1 compatibility layer
// because only the native one exposes thinking control (think), structured
// output by JSON schema on every version, and exact done reasons.
package ollama

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	"tollgate.dev/tollgate/dataplane/translate/media"
)

// Translator is the Ollama translator; stateless and safe for concurrent use.
//
// URL convention: Provider.BaseURL is Ollama's root ("http://ollama:11434");
// requests go to {BaseURL}/api/chat and {BaseURL}/api/embed ("/api" is not
// doubled when BaseURL already ends in it). No credential is needed; an
// Authorization: Bearer header is sent only when Provider.APIKey is set
// (Ollama behind an authenticating proxy, or ollama.com).
type Translator struct{}

// New returns the Ollama translator.
func New() translate.Translator { return Translator{} }

var (
	_ translate.Translator = Translator{}
	_ translate.Embedder   = Translator{}
)

// ChatRequest builds POST {BaseURL}/api/chat.
func (Translator) ChatRequest(ctx context.Context, req *openai.ChatRequest, t translate.Target) (*http.Request, error) {
	if t.Provider == nil {
		return nil, fmt.Errorf("ollama: target has no provider")
	}
	body, err := BuildRequest(ctx, req, t.Model, t.Media)
	if err != nil {
		return nil, err
	}
	hr, err := newRequest(ctx, t.Provider, "chat", body)
	if err != nil {
		return nil, err
	}
	if req.Stream {
		hr.Header.Set("Accept", "application/x-ndjson")
	} else {
		hr.Header.Set("Accept", "application/json")
	}
	return hr, nil
}

func newRequest(ctx context.Context, p *routetable.Provider, op string, v any) (*http.Request, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("ollama: encode request: %w", err)
	}
	base := strings.TrimRight(p.BaseURL, "/")
	if !strings.HasSuffix(base, "/api") {
		base += "/api"
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/"+op, bytes.NewReader(b))
	if err != nil {
		// Never echo the URL: it comes from configuration and may hold userinfo.
		return nil, fmt.Errorf("ollama: provider %s: invalid base URL", p.ID)
	}
	for k, v := range p.Headers {
		hr.Header.Set(k, v)
	}
	if p.APIKey != "" {
		hr.Header.Set("Authorization", "Bearer "+p.APIKey)
	}
	hr.Header.Set("Content-Type", "application/json")
	return hr, nil
}

// BuildRequest maps a canonical request to an /api/chat body for model:
//
//   - system and developer messages become role "system"; content parts
//     are joined into one string, images go to images as bare base64
//     (data: URLs decoded, http(s) URLs loaded through fetcher);
//   - assistant tool calls are sent with arguments as JSON objects and
//     reasoning_content as thinking; tool results as role "tool" with the
//     called function's name in tool_name;
//   - temperature, top_p, stop, seed, presence/frequency penalties go to
//     options, max_completion_tokens (or max_tokens) to num_predict;
//   - response_format json_object is format "json", json_schema sends the
//     schema as format;
//   - tool_choice "none" sends no tools, a forced function sends only that
//     tool (Ollama cannot force a call; "required" is sent as "auto");
//   - reasoning_effort sets think: "none" turns thinking off, other levels
//     are passed as think levels (gpt-oss) which other thinking models
//     treat as on;
//   - stream is always explicit (Ollama streams when it is absent).
//
// n > 1, audio and file parts have no Ollama equivalent and are a 400.
func BuildRequest(ctx context.Context, req *openai.ChatRequest, model string, fetcher translate.MediaFetcher) (*ChatRequest, error) {
	if req.N != nil && *req.N > 1 {
		return nil, badRequest("n", "Ollama returns one choice; n must be 1")
	}
	out := &ChatRequest{Model: model, Stream: req.Stream, Messages: make([]Message, 0, len(req.Messages))}
	callNames := map[string]string{}
	for i := range req.Messages {
		m, err := convertMessage(ctx, &req.Messages[i], fmt.Sprintf("messages[%d]", i), fetcher, callNames)
		if err != nil {
			return nil, err
		}
		out.Messages = append(out.Messages, m)
	}
	if err := convertTools(req, out); err != nil {
		return nil, err
	}
	opts := Options{
		Temperature: req.Temperature, TopP: req.TopP, Stop: req.Stop, Seed: req.Seed,
		PresencePenalty: req.PresencePenalty, FrequencyPenalty: req.FrequencyPenalty,
	}
	if n := req.MaxOutputTokens(); n > 0 {
		opts.NumPredict = &n
	}
	if opts.Temperature != nil || opts.TopP != nil || opts.NumPredict != nil || len(opts.Stop) > 0 || opts.Seed != nil ||
		opts.PresencePenalty != nil || opts.FrequencyPenalty != nil {
		out.Options = &opts
	}
	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case openai.FormatJSONObject:
			out.Format = json.RawMessage(`"json"`)
		case openai.FormatJSONSchema:
			if rf.JSONSchema == nil || len(rf.JSONSchema.Schema) == 0 {
				out.Format = json.RawMessage(`"json"`)
			} else {
				out.Format = rf.JSONSchema.Schema
			}
		}
	}
	switch req.ReasoningEffort {
	case "":
	case "none":
		out.Think = json.RawMessage(`false`)
	case "minimal", "low":
		out.Think = json.RawMessage(`"low"`)
	case "medium":
		out.Think = json.RawMessage(`"medium"`)
	default:
		out.Think = json.RawMessage(`"high"`)
	}
	return out, nil
}

func convertMessage(ctx context.Context, m *openai.Message, param string, fetcher translate.MediaFetcher, callNames map[string]string) (Message, error) {
	switch m.Role {
	case openai.RoleSystem, openai.RoleDeveloper:
		return Message{Role: "system", Content: m.Content.PlainText()}, nil
	case openai.RoleUser:
		return userMessage(ctx, m, param, fetcher)
	case openai.RoleTool:
		return Message{Role: "tool", Content: m.Content.PlainText(), ToolName: callNames[m.ToolCallID]}, nil
	case openai.RoleAssistant:
		out := Message{Role: "assistant", Content: m.Content.PlainText(), Thinking: m.ReasoningContent}
		if out.Content == "" && m.Refusal != "" {
			out.Content = m.Refusal
		}
		for j := range m.ToolCalls {
			tc := &m.ToolCalls[j]
			pp := fmt.Sprintf("%s.tool_calls[%d].function.arguments", param, j)
			args, err := argumentsObject(tc.Function.Arguments, pp)
			if err != nil {
				return Message{}, err
			}
			callNames[tc.ID] = tc.Function.Name
			out.ToolCalls = append(out.ToolCalls, ToolCall{Function: ToolCallFunction{Name: tc.Function.Name, Arguments: args}})
		}
		return out, nil
	}
	return Message{}, badRequest(param+".role", "%s.role: role %q is not supported", param, m.Role)
}

// argumentsObject turns OpenAI's arguments string into the JSON object
// Ollama wants; an empty string is {}.
func argumentsObject(s, param string) (json.RawMessage, error) {
	b := bytes.TrimSpace([]byte(s))
	if len(b) == 0 {
		return json.RawMessage(`{}`), nil
	}
	if b[0] != '{' || !json.Valid(b) {
		return nil, badRequest(param, "%s: Ollama needs tool call arguments to be a JSON object", param)
	}
	return b, nil
}

func userMessage(ctx context.Context, m *openai.Message, param string, fetcher translate.MediaFetcher) (Message, error) {
	out := Message{Role: "user"}
	if m.Content.Kind != openai.ContentParts {
		out.Content = m.Content.Text
		return out, nil
	}
	var text strings.Builder
	for j := range m.Content.Parts {
		p := &m.Content.Parts[j]
		pp := fmt.Sprintf("%s.content[%d]", param, j)
		switch p.Type {
		case openai.PartText:
			text.WriteString(p.Text)
		case openai.PartImageURL:
			if p.ImageURL == nil {
				return Message{}, badRequest(pp+".image_url", "%s: image_url is missing", pp)
			}
			img, err := inlineImage(ctx, p.ImageURL.URL, fetcher, pp+".image_url.url")
			if err != nil {
				return Message{}, err
			}
			out.Images = append(out.Images, img)
		default:
			return Message{}, badRequest(pp+".type", "%s: content parts of type %q are not supported by Ollama", pp, p.Type)
		}
	}
	out.Content = text.String()
	return out, nil
}

// inlineImage returns an image as bare base64: Ollama cannot load URLs.
func inlineImage(ctx context.Context, rawURL string, fetcher translate.MediaFetcher, param string) (string, error) {
	if d, ok, err := media.ParseDataURL(rawURL); ok {
		if err != nil {
			return "", badRequest(param, "%s: %v", param, err)
		}
		return d.Base64, nil
	}
	if !strings.HasPrefix(rawURL, "http://") && !strings.HasPrefix(rawURL, "https://") {
		return "", badRequest(param, "%s: image URL must be an http(s) or data: URL", param)
	}
	if fetcher == nil {
		return "", badRequest(param, "%s: Ollama needs image bytes inline and this gateway does not fetch image URLs; send the image as a base64 data: URL", param)
	}
	_, data, err := fetcher.Fetch(ctx, rawURL)
	if err != nil {
		return "", badRequest(param, "%s: could not load image: %v", param, err)
	}
	return base64.StdEncoding.EncodeToString(data), nil
}

var emptyParameters = json.RawMessage(`{"type":"object","properties":{}}`)

func convertTools(req *openai.ChatRequest, out *ChatRequest) error {
	if len(req.Tools) == 0 || (req.ToolChoice != nil && req.ToolChoice.Mode == openai.ToolChoiceNone) {
		return nil
	}
	forced := ""
	if req.ToolChoice != nil && req.ToolChoice.Mode == openai.ToolChoiceFunction {
		forced = req.ToolChoice.Function
	}
	for i := range req.Tools {
		f := &req.Tools[i].Function
		if forced != "" && f.Name != forced {
			continue
		}
		params := f.Parameters
		if len(params) == 0 {
			params = emptyParameters
		}
		out.Tools = append(out.Tools, Tool{Type: "function", Function: ToolFunction{Name: f.Name, Description: f.Description, Parameters: params}})
	}
	if forced != "" && len(out.Tools) == 0 {
		return badRequest("tool_choice", "tool_choice names function %q, which is not among the tools", forced)
	}
	return nil
}

// EmbeddingRequest builds POST {BaseURL}/api/embed. Token-id inputs cannot
// be sent to Ollama and are a client error.
func (Translator) EmbeddingRequest(ctx context.Context, req *openai.EmbeddingRequest, t translate.Target) (*http.Request, error) {
	if t.Provider == nil {
		return nil, fmt.Errorf("ollama: target has no provider")
	}
	inputs, ok := req.Inputs()
	if !ok || len(inputs) == 0 {
		return nil, badRequest("input", "input must be a string or a non-empty array of strings for Ollama embedding models")
	}
	hr, err := newRequest(ctx, t.Provider, "embed", &EmbedRequest{Model: t.Model, Input: inputs, Dimensions: req.Dimensions})
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Accept", "application/json")
	return hr, nil
}
