// Package bedrock translates between Tollgate's canonical form (OpenAI Chat
// Completions) and the Amazon Bedrock Runtime Converse / ConverseStream API.
//
// Requests go to POST {BaseURL}/model/{modelId}/converse (or
// /converse-stream), signed with AWS Signature V4 for service "bedrock"
// (package sigv4), or sent with "Authorization: Bearer" when the provider
// holds a Bedrock API key instead of AWS credentials. Streams are AWS
// event-streams (package eventstream).
//
// Mapping choices that are not one-to-one:
//
//   - system and developer messages become the top-level system blocks, in
//     order, wherever they appear in the conversation.
//   - text that is empty or only whitespace is dropped from system, user and
//     assistant content (Converse rejects blank text blocks; a turn left
//     empty is dropped too); tool results keep it, Converse accepts it there.
//   - consecutive messages of the same role are merged into one turn (Converse
//     requires alternation); consecutive tool messages become one user turn of
//     toolResult blocks. A tool message whose content is a JSON object is sent
//     as a {"json": ...} result, anything else as {"text": ...}. The optional
//     toolResult status is never sent: OpenAI has no equivalent and only some
//     Bedrock models accept the member.
//   - assistant reasoning_content is sent back as a reasoningContent block only
//     with its reasoning_signature (models that check reasoning, Claude,
//     reject unsigned reasoning; the others do not need it back).
//   - tool_choice: "auto" sends no toolChoice (it is the default, and models
//     without toolChoice support reject the member), "required" is {"any":{}},
//     a named function is {"tool":{"name":...}}. Converse has no "none": the
//     tools are omitted instead, unless the conversation already contains tool
//     calls, in which case Bedrock requires toolConfig and the tools are kept
//     (the model may then still call one). When the history has tool calls
//     and the request declares no tools, tools with those names and an open
//     object schema are declared for the same reason. parallel_tool_calls has
//     no Converse equivalent and is ignored.
//   - JSON mode: response_format json_object / json_schema are served by the
//     synthetic tool anthropic.JSONToolName (input schema = the requested
//     schema), forced with toolChoice; its input is returned as the message
//     content and finish_reason "stop".
//   - reasoning_effort: for Anthropic Claude models (model ID containing
//     "claude") it becomes additionalModelRequestFields.thinking with the
//     budget of anthropic.ThinkingBudget; temperature and top_p are then not
//     sent (Claude rejects them with thinking), and thinking is not enabled
//     while tool use is forced (Claude rejects that combination), nor when
//     the conversation continues a tool loop or an assistant prefill whose
//     assistant turn lacks signed reasoning (Claude requires it then). Without a
//     client max_tokens, maxTokens is raised to budget + the default so the
//     answer keeps room. Other models ignore reasoning_effort.
//   - temperature above 1 is clamped to 1 (Converse models accept 0..1).
//   - file parts (file_data, as a data: URL or bare base64) become document
//     blocks (pdf, csv, doc(x), xls(x), html, txt, md) named after their
//     filename, reduced to the characters Converse allows.
//   - cache_control (Anthropic prompt caching, on a part or a tool) becomes
//     a cachePoint element right after the system text, content block,
//     tool result or tool it closes, with its ttl; a marked system part
//     ends a system block there (the text between breakpoints is one
//     block, as without them). At most MaxCachePoints are sent, the last
//     ones, as for Anthropic. Models without prompt caching reject cache
//     points: that is for the client to know, as with Anthropic.
//   - n > 1, logprobs, audio and file_id parts are rejected with 400; seed,
//     penalties, user and metadata have no Converse equivalent and are dropped.
package bedrock

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/routetable"
	wire "tollgate.dev/tollgate/dataplane/schema/bedrock"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/sigv4"
	"tollgate.dev/tollgate/dataplane/translate"
	"tollgate.dev/tollgate/dataplane/translate/anthropic"
	"tollgate.dev/tollgate/dataplane/translate/media"
)

// SigningService is the SigV4 service name of the Bedrock Runtime API.
const SigningService = "bedrock"

// DefaultMaxTokens is the maxTokens sent when neither the request, the model
// entry nor the provider gives one, so every target behaves the same
// whatever each model's own default is.
const DefaultMaxTokens = 4096

// Content types of the two operations' answers.
const (
	contentTypeJSON        = "application/json"
	contentTypeEventStream = "application/vnd.amazon.eventstream"
)

// Translator is the Bedrock Converse translator. It is safe for concurrent
// use; it holds only the signer's derived-key cache.
type Translator struct {
	// Now is the signing clock; nil means time.Now. Tests pin it.
	Now    func() time.Time
	signer sigv4.Signer
}

var _ translate.Translator = (*Translator)(nil)

// New returns the Bedrock translator.
func New() translate.Translator { return &Translator{} }

func badRequest(param, format string, args ...any) *openai.APIError {
	return openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, "", param, fmt.Sprintf(format, args...))
}

// ChatRequest implements translate.Translator.
func (tr *Translator) ChatRequest(ctx context.Context, req *openai.ChatRequest, t translate.Target) (*http.Request, error) {
	p := t.Provider
	if p == nil {
		return nil, errors.New("bedrock: target has no provider")
	}
	req = translate.WithoutCarriedState(req) // toolUseId is at most 64 characters
	if t.Model == "" {
		return nil, errors.New("bedrock: target has no model")
	}
	body, err := BuildConverse(ctx, req, t)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("bedrock: encode request: %w", err)
	}
	u, region, err := endpoint(p, t.Model, req.Stream)
	if err != nil {
		return nil, err
	}
	accept := contentTypeJSON
	if req.Stream {
		accept = contentTypeEventStream
	}
	return tr.signedJSONRequest(ctx, p, u, region, b, accept)
}

// signedJSONRequest builds a POST of the JSON body to u, accepting accept,
// with the provider's static headers, then authorizes it last (so a configured header can
// neither replace the credential nor escape the signature): Bearer with the
// provider's API key, else SigV4 with its AWS credentials in region. Errors
// name the provider, never a credential.
func (tr *Translator) signedJSONRequest(ctx context.Context, p *routetable.Provider, u, region string, body []byte, accept string) (*http.Request, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("bedrock: provider %s has an invalid base URL", p.ID)
	}
	for k, v := range p.Headers {
		hr.Header.Set(k, v)
	}
	hr.Header.Set("Content-Type", contentTypeJSON)
	hr.Header.Set("Accept", accept)
	if p.APIKey != "" {
		hr.Header.Set("Authorization", "Bearer "+p.APIKey)
		return hr, nil
	}
	if region == "" {
		return nil, fmt.Errorf("bedrock: provider %s has no region and its base URL does not name one", p.ID)
	}
	now := time.Now()
	if tr.Now != nil {
		now = tr.Now()
	}
	creds := sigv4.Credentials{AccessKeyID: p.AWSAccessKeyID, SecretAccessKey: p.AWSSecretAccessKey, SessionToken: p.AWSSessionToken}
	if err := tr.signer.Sign(hr, sigv4.PayloadHash(body), creds, region, SigningService, now); err != nil {
		return nil, fmt.Errorf("bedrock: provider %s: %w", p.ID, err)
	}
	return hr, nil
}

// endpoint returns the operation URL and the signing region: the provider's
// Region, else the one in a standard bedrock-runtime host name.
func endpoint(p *routetable.Provider, model string, stream bool) (string, string, error) {
	base := p.BaseURL
	if base == "" && p.Region != "" {
		base = "https://bedrock-runtime." + p.Region + ".amazonaws.com"
	}
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", "", fmt.Errorf("bedrock: provider %s has an invalid base URL", p.ID)
	}
	op := "/converse"
	if stream {
		op = "/converse-stream"
	}
	prefix := u.EscapedPath()
	u.RawPath = prefix + "/model/" + sigv4.EscapePathSegment(model) + op
	u.Path = u.Path + "/model/" + model + op
	region := p.Region
	if region == "" {
		region = regionFromHost(u.Hostname())
	}
	return u.String(), region, nil
}

// regionFromHost reads the region of bedrock-runtime[-fips].{region}.amazonaws.com[.cn].
func regionFromHost(host string) string {
	labels := strings.Split(host, ".")
	if len(labels) >= 4 && strings.HasPrefix(labels[0], "bedrock-runtime") && labels[2] == "amazonaws" {
		return labels[1]
	}
	return ""
}

// BuildConverse maps a canonical request to a Converse body. It is the pure
// part of ChatRequest (apart from fetching http image URLs through
// t.Media), exported so the mapping can be inspected and tested on its own.
func BuildConverse(ctx context.Context, req *openai.ChatRequest, t translate.Target) (*wire.ConverseRequest, error) {
	if req.N != nil && *req.N > 1 {
		return nil, badRequest("n", "n > 1 is not supported by Bedrock")
	}
	if req.Logprobs != nil && *req.Logprobs {
		return nil, badRequest("logprobs", "logprobs are not supported by Bedrock")
	}
	out := &wire.ConverseRequest{}
	historyTools, err := convertMessages(ctx, req, t, out)
	if err != nil {
		return nil, err
	}
	if len(out.Messages) == 0 {
		return nil, badRequest("messages", "messages must contain at least one non-empty user or assistant message")
	}
	forced, err := convertTools(req, historyTools, out)
	if err != nil {
		return nil, err
	}
	limitCachePoints(out)

	cfg := &wire.InferenceConfig{}
	clientMax := req.MaxOutputTokens()
	if (req.MaxCompletionTokens != nil || req.MaxTokens != nil) && clientMax < 1 {
		param := "max_tokens"
		if req.MaxCompletionTokens != nil {
			param = "max_completion_tokens"
		}
		return nil, badRequest(param, "%s must be at least 1", param)
	}
	maxTokens := clientMax
	if maxTokens == 0 {
		maxTokens = defaultMaxTokens(t.Provider, t.Model)
	}
	thinking := 0
	if req.ReasoningEffort != "" && !forced && isClaude(t.Model) && reasoningTailSigned(out.Messages) {
		if clientMax == 0 {
			maxTokens += anthropic.ThinkingBudget(req.ReasoningEffort, math.MaxInt32)
		}
		thinking = anthropic.ThinkingBudget(req.ReasoningEffort, maxTokens)
	}
	cfg.MaxTokens = &maxTokens
	if thinking > 0 {
		out.AdditionalModelRequestFields = json.RawMessage(fmt.Sprintf(`{"thinking":{"type":"enabled","budget_tokens":%d}}`, thinking))
	} else {
		if req.Temperature != nil {
			temp := min(*req.Temperature, 1)
			cfg.Temperature = &temp
		}
		cfg.TopP = req.TopP
	}
	for _, s := range req.Stop {
		if s != "" {
			cfg.StopSequences = append(cfg.StopSequences, s)
		}
	}
	out.InferenceConfig = cfg
	return out, nil
}

func defaultMaxTokens(p *routetable.Provider, model string) int {
	if p != nil {
		if m, ok := p.Model(model); ok && m.MaxOutputTokens > 0 {
			return m.MaxOutputTokens
		}
		if p.DefaultMaxTokens > 0 {
			return p.DefaultMaxTokens
		}
	}
	return DefaultMaxTokens
}

// reasoningTailSigned reports whether Claude can think on this
// conversation. With thinking on, Claude requires the final assistant turn,
// when the conversation ends inside a tool loop (the last user turn holds
// tool results) or with an assistant prefill, to start with its signed
// reasoning; OpenAI clients do not send reasoning back, so thinking is
// left off for such requests rather than failing them.
func reasoningTailSigned(msgs []wire.Message) bool {
	n := len(msgs)
	if n == 0 {
		return true
	}
	var final *wire.Message
	switch last := &msgs[n-1]; {
	case last.Role == wire.RoleAssistant:
		final = last
	case n >= 2 && msgs[n-2].Role == wire.RoleAssistant && slices.ContainsFunc(last.Content, func(b wire.ContentBlock) bool { return b.ToolResult != nil }):
		final = &msgs[n-2]
	default:
		return true
	}
	return len(final.Content) > 0 && final.Content[0].ReasoningContent != nil
}

// isClaude reports whether a model ID, inference profile ID or ARN names an
// Anthropic Claude model, the only family whose thinking parameters are
// known here.
func isClaude(model string) bool {
	return strings.Contains(strings.ToLower(model), "claude")
}

// turns accumulates messages, merging consecutive same-role turns.
type turns struct{ msgs []wire.Message }

func (ts *turns) add(role string, blocks ...wire.ContentBlock) {
	if len(blocks) == 0 {
		return
	}
	if n := len(ts.msgs); n > 0 && ts.msgs[n-1].Role == role {
		ts.msgs[n-1].Content = append(ts.msgs[n-1].Content, blocks...)
		return
	}
	ts.msgs = append(ts.msgs, wire.Message{Role: role, Content: blocks})
}

// convertMessages fills out.System and out.Messages. It returns the names of
// the tools the history calls, in first-call order.
func convertMessages(ctx context.Context, req *openai.ChatRequest, t translate.Target, out *wire.ConverseRequest) ([]string, error) {
	var ts turns
	var docs docNames
	var historyTools []string
	seen := map[string]bool{}
	for i, m := range req.Messages {
		param := fmt.Sprintf("messages[%d]", i)
		switch m.Role {
		case openai.RoleSystem, openai.RoleDeveloper:
			var err error
			if out.System, err = appendSystem(out.System, m.Content, param); err != nil {
				return nil, err
			}
		case openai.RoleUser:
			blocks, err := userBlocks(ctx, m.Content, t, &docs, param)
			if err != nil {
				return nil, err
			}
			ts.add(wire.RoleUser, blocks...)
		case openai.RoleAssistant:
			blocks, err := assistantBlocks(&m, param)
			if err != nil {
				return nil, err
			}
			for _, tc := range m.ToolCalls {
				if !seen[tc.Function.Name] {
					seen[tc.Function.Name] = true
					historyTools = append(historyTools, tc.Function.Name)
				}
			}
			ts.add(wire.RoleAssistant, blocks...)
		case openai.RoleTool:
			b, err := toolResult(ctx, &m, t, param)
			if err != nil {
				return nil, err
			}
			// Converse has no cache point inside a tool result: the last
			// marked part's point follows the whole result.
			var cc json.RawMessage
			for _, p := range m.Content.Parts {
				if p.CacheControl != nil {
					cc = p.CacheControl
				}
			}
			ts.add(wire.RoleUser, withCachePoint([]wire.ContentBlock{b}, cc)...)
		default:
			return nil, badRequest(param+".role", "role %q is not supported", m.Role)
		}
	}
	out.Messages = ts.msgs
	return historyTools, nil
}

// blank reports text Converse rejects as a content block: empty or only
// whitespace ("text content blocks must contain non-whitespace text").
// Such blocks are dropped; tool results are exempt, Converse accepts them.
func blank(s string) bool { return strings.TrimSpace(s) == "" }

// appendSystem appends a system or developer message to the system blocks:
// its text as one block, split after each part with a cache breakpoint,
// which is followed by its cache point.
func appendSystem(sys []wire.SystemContent, c openai.Content, param string) ([]wire.SystemContent, error) {
	if c.Kind != openai.ContentParts {
		if !blank(c.Text) {
			sys = append(sys, wire.SystemContent{Text: c.Text})
		}
		return sys, nil
	}
	var b strings.Builder
	for j, p := range c.Parts {
		if p.Type != openai.PartText {
			return nil, badRequest(fmt.Sprintf("%s.content[%d].type", param, j), "content part type %q is not allowed here", p.Type)
		}
		b.WriteString(p.Text)
		if cp := cachePoint(p.CacheControl); cp != nil || j == len(c.Parts)-1 {
			if !blank(b.String()) {
				sys = append(sys, wire.SystemContent{Text: b.String()})
			}
			b.Reset()
			if cp != nil && len(sys) > 0 {
				sys = append(sys, wire.SystemContent{CachePoint: cp})
			}
		}
	}
	return sys, nil
}

// cachePoint maps a canonical cache_control to a Converse cache point, nil
// when there is none (or one ParseCacheControl refuses, which the parsers
// already keep out of the canonical form).
func cachePoint(raw json.RawMessage) *wire.CachePointBlock {
	if raw == nil {
		return nil
	}
	cc, err := anthropic.ParseCacheControl(raw)
	if err != nil {
		return nil
	}
	return &wire.CachePointBlock{Type: wire.CachePointDefault, TTL: cc.TTL}
}

// withCachePoint appends the cache point of a part's cache_control after
// blocks, when there is one and blocks has something for it to close.
func withCachePoint(blocks []wire.ContentBlock, raw json.RawMessage) []wire.ContentBlock {
	if cp := cachePoint(raw); cp != nil && len(blocks) > 0 {
		return append(blocks, wire.ContentBlock{CachePoint: cp})
	}
	return blocks
}

// MaxCachePoints is how many cache points Bedrock takes in one request
// (Claude's limit of four breakpoints).
const MaxCachePoints = anthropic.MaxCacheBreakpoints

// limitCachePoints keeps the last MaxCachePoints cache points in prompt
// order (toolConfig, system, messages) and removes the earlier ones, for
// the reason anthropic's limitCacheBreakpoints gives: a later point caches
// all an earlier one does and more.
func limitCachePoints(out *wire.ConverseRequest) {
	n := 0
	if out.ToolConfig != nil {
		n += countFunc(out.ToolConfig.Tools, func(t wire.Tool) bool { return t.CachePoint != nil })
	}
	n += countFunc(out.System, func(s wire.SystemContent) bool { return s.CachePoint != nil })
	for _, m := range out.Messages {
		n += countFunc(m.Content, func(b wire.ContentBlock) bool { return b.CachePoint != nil })
	}
	drop := n - MaxCachePoints
	dropping := func(isPoint bool) bool {
		if isPoint && drop > 0 {
			drop--
			return true
		}
		return false
	}
	if drop <= 0 {
		return
	}
	if out.ToolConfig != nil {
		out.ToolConfig.Tools = slices.DeleteFunc(out.ToolConfig.Tools, func(t wire.Tool) bool { return dropping(t.CachePoint != nil) })
	}
	out.System = slices.DeleteFunc(out.System, func(s wire.SystemContent) bool { return dropping(s.CachePoint != nil) })
	for i := range out.Messages {
		out.Messages[i].Content = slices.DeleteFunc(out.Messages[i].Content, func(b wire.ContentBlock) bool { return dropping(b.CachePoint != nil) })
	}
}

func countFunc[T any](s []T, f func(T) bool) int {
	n := 0
	for _, v := range s {
		if f(v) {
			n++
		}
	}
	return n
}

func userBlocks(ctx context.Context, c openai.Content, t translate.Target, docs *docNames, param string) ([]wire.ContentBlock, error) {
	if c.Kind != openai.ContentParts {
		if blank(c.Text) {
			return nil, nil
		}
		return []wire.ContentBlock{wire.TextBlock(c.Text)}, nil
	}
	blocks := make([]wire.ContentBlock, 0, len(c.Parts))
	for j, p := range c.Parts {
		pp := fmt.Sprintf("%s.content[%d]", param, j)
		switch p.Type {
		case openai.PartText:
			if !blank(p.Text) {
				blocks = append(blocks, wire.TextBlock(p.Text))
			}
		case openai.PartImageURL:
			img, err := imageBlock(ctx, p.ImageURL, t, pp+".image_url")
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, wire.ContentBlock{Image: img})
		case openai.PartFile:
			doc, err := documentBlock(p.File, docs, pp+".file")
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, wire.ContentBlock{Document: doc})
		default:
			return nil, badRequest(pp+".type", "content part type %q is not supported by the Bedrock backend", p.Type)
		}
		blocks = withCachePoint(blocks, p.CacheControl)
	}
	return blocks, nil
}

// documentFormats maps media types to Converse document formats.
var documentFormats = map[string]string{
	"application/pdf":    "pdf",
	"text/csv":           "csv",
	"application/msword": "doc",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
	"application/vnd.ms-excel": "xls",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
	"text/html":     "html",
	"text/plain":    "txt",
	"text/markdown": "md",
}

// documentExtensions maps filename extensions to Converse document formats,
// for file_data given as bare base64.
var documentExtensions = map[string]string{
	".pdf": "pdf", ".csv": "csv", ".doc": "doc", ".docx": "docx", ".xls": "xls", ".xlsx": "xlsx",
	".html": "html", ".htm": "html", ".txt": "txt", ".md": "md",
}

// docNames hands out the document names of one request: Converse requires
// a name (letters, digits, single spaces, hyphens, parentheses and square
// brackets, at most 200 characters), and distinct documents must not share
// one.
type docNames struct {
	n    int
	used map[string]bool
}

func (d *docNames) name(filename string) string {
	d.n++
	base := strings.TrimSuffix(filename, path.Ext(filename))
	var b strings.Builder
	space := true // no leading space
	for _, r := range base {
		switch {
		case r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-()[]", r)):
			b.WriteRune(r)
			space = false
		case !space:
			b.WriteByte(' ')
			space = true
		}
	}
	name := strings.TrimSpace(b.String())
	if len(name) > 180 {
		name = strings.TrimSpace(name[:180])
	}
	if name == "" {
		name = fmt.Sprintf("document-%d", d.n)
	}
	if d.used == nil {
		d.used = map[string]bool{}
	}
	for i := 2; d.used[name]; i++ {
		name = strings.TrimSuffix(name, fmt.Sprintf(" (%d)", i-1)) + fmt.Sprintf(" (%d)", i)
	}
	d.used[name] = true
	return name
}

// documentBlock inlines a file part. file_data is a data: URL, or bare
// base64 as OpenAI sends it, whose type then comes from the filename's
// extension (PDF when it has none).
func documentBlock(f *openai.File, docs *docNames, param string) (*wire.DocumentBlock, error) {
	if f == nil || f.FileData == "" {
		return nil, badRequest(param, "file parts must carry file_data (file_id is not supported by the Bedrock backend)")
	}
	d, ok, err := media.ParseDataURL(f.FileData)
	format := ""
	if !ok {
		// Bare base64: the extension names the format, PDF by default,
		// as OpenAI only takes PDFs there.
		format = "pdf"
		if ext := strings.ToLower(path.Ext(f.Filename)); ext != "" {
			if ef, known := documentExtensions[ext]; known {
				format = ef
			}
		}
		d, ok, err = media.ParseDataURL("data:application/octet-stream;base64," + f.FileData)
	}
	if err != nil || !ok || d.Base64 == "" {
		return nil, badRequest(param+".file_data", "invalid file_data")
	}
	if format == "" {
		if format, ok = documentFormats[strings.ToLower(d.MediaType)]; !ok {
			return nil, badRequest(param+".file_data", "file type %q is not supported (pdf, csv, doc, docx, xls, xlsx, html, txt and md are)", d.MediaType)
		}
	}
	return &wire.DocumentBlock{Format: format, Name: docs.name(f.Filename), Source: wire.DocumentSource{Bytes: d.Base64}}, nil
}

// imageFormats maps media types to Converse image formats.
var imageFormats = map[string]string{
	"image/png":  wire.ImagePNG,
	"image/jpeg": wire.ImageJPEG,
	"image/jpg":  wire.ImageJPEG,
	"image/gif":  wire.ImageGIF,
	"image/webp": wire.ImageWebP,
}

// imageBlock inlines an image: data: URLs directly, http(s) URLs through
// t.Media.
func imageBlock(ctx context.Context, iu *openai.ImageURL, t translate.Target, param string) (*wire.ImageBlock, error) {
	if iu == nil || iu.URL == "" {
		return nil, badRequest(param, "image_url.url is required")
	}
	var mediaType, b64 string
	if d, ok, err := media.ParseDataURL(iu.URL); ok {
		if err != nil {
			return nil, badRequest(param, "%v", err)
		}
		mediaType, b64 = d.MediaType, d.Base64
	} else {
		if t.Media == nil {
			return nil, badRequest(param, "image URLs must be data: URLs for this provider")
		}
		mt, data, err := t.Media.Fetch(ctx, iu.URL)
		if err != nil {
			return nil, badRequest(param, "cannot load image: %v", err)
		}
		mediaType, b64 = mt, base64.StdEncoding.EncodeToString(data)
	}
	format, ok := imageFormats[strings.ToLower(mediaType)]
	if !ok {
		return nil, badRequest(param, "image type %q is not supported (png, jpeg, gif and webp are)", mediaType)
	}
	return &wire.ImageBlock{Format: format, Source: wire.ImageSource{Bytes: b64}}, nil
}

// assistantBlocks maps an assistant turn: signed reasoning first, then text,
// then tool calls, the order Converse models produce them in.
func assistantBlocks(m *openai.Message, param string) ([]wire.ContentBlock, error) {
	var blocks []wire.ContentBlock
	if m.ReasoningSignature != "" {
		blocks = append(blocks, wire.ContentBlock{ReasoningContent: &wire.ReasoningContent{
			ReasoningText: &wire.ReasoningText{Text: m.ReasoningContent, Signature: m.ReasoningSignature},
		}})
	}
	if m.Content.Kind == openai.ContentParts {
		for j, p := range m.Content.Parts {
			switch p.Type {
			case openai.PartText:
				if !blank(p.Text) {
					blocks = append(blocks, wire.TextBlock(p.Text))
				}
			case openai.PartRefusal:
				if !blank(p.Refusal) {
					blocks = append(blocks, wire.TextBlock(p.Refusal))
				}
			default:
				return nil, badRequest(fmt.Sprintf("%s.content[%d].type", param, j), "assistant content part type %q is not supported", p.Type)
			}
			blocks = withCachePoint(blocks, p.CacheControl)
		}
	} else if !blank(m.Content.Text) {
		blocks = append(blocks, wire.TextBlock(m.Content.Text))
	} else if !blank(m.Refusal) {
		blocks = append(blocks, wire.TextBlock(m.Refusal))
	}
	for j, tc := range m.ToolCalls {
		pp := fmt.Sprintf("%s.tool_calls[%d]", param, j)
		if tc.ID == "" || tc.Function.Name == "" {
			return nil, badRequest(pp, "tool calls need an id and a function name")
		}
		input, err := toolInput(tc.Function.Arguments)
		if err != nil {
			return nil, badRequest(pp+".function.arguments", "%v", err)
		}
		blocks = append(blocks, wire.ContentBlock{ToolUse: &wire.ToolUseBlock{ToolUseID: tc.ID, Name: tc.Function.Name, Input: input}})
	}
	return blocks, nil
}

// toolInput checks that arguments are a JSON object (empty means {}).
func toolInput(args string) (json.RawMessage, error) {
	s := bytes.TrimSpace([]byte(args))
	if len(s) == 0 {
		return json.RawMessage(`{}`), nil
	}
	if s[0] != '{' || !json.Valid(s) {
		return nil, errors.New("function arguments must be a JSON object")
	}
	return json.RawMessage(s), nil
}

func toolResult(ctx context.Context, m *openai.Message, t translate.Target, param string) (wire.ContentBlock, error) {
	if m.ToolCallID == "" {
		return wire.ContentBlock{}, badRequest(param+".tool_call_id", "tool messages need a tool_call_id")
	}
	res := &wire.ToolResultBlock{ToolUseID: m.ToolCallID}
	if m.Content.Kind == openai.ContentParts {
		for j, p := range m.Content.Parts {
			pp := fmt.Sprintf("%s.content[%d]", param, j)
			switch p.Type {
			case openai.PartText:
				text := p.Text
				res.Content = append(res.Content, wire.ToolResultContent{Text: &text})
			case openai.PartImageURL:
				img, err := imageBlock(ctx, p.ImageURL, t, pp+".image_url")
				if err != nil {
					return wire.ContentBlock{}, err
				}
				res.Content = append(res.Content, wire.ToolResultContent{Image: img})
			default:
				return wire.ContentBlock{}, badRequest(pp+".type", "tool content part type %q is not supported", p.Type)
			}
		}
	}
	if len(res.Content) == 0 {
		text := m.Content.Text
		if s := bytes.TrimSpace([]byte(text)); len(s) > 0 && s[0] == '{' && json.Valid(s) {
			res.Content = []wire.ToolResultContent{{JSON: json.RawMessage(s)}}
		} else {
			res.Content = []wire.ToolResultContent{{Text: &text}}
		}
	}
	return wire.ContentBlock{ToolResult: res}, nil
}

var objectSchema = json.RawMessage(`{"type":"object"}`)

func isNullJSON(b json.RawMessage) bool {
	s := bytes.TrimSpace(b)
	return len(s) == 0 || bytes.Equal(s, []byte("null"))
}

// convertTools maps tools, tool_choice and JSON mode (see the package doc).
// It reports whether tool use is forced, which Claude does not allow
// together with thinking.
func convertTools(req *openai.ChatRequest, historyTools []string, out *wire.ConverseRequest) (forced bool, err error) {
	var tools []wire.Tool
	for i, t := range req.Tools {
		param := fmt.Sprintf("tools[%d]", i)
		if t.Type != "function" {
			return false, badRequest(param+".type", "tool type %q is not supported", t.Type)
		}
		if t.Function.Name == "" {
			return false, badRequest(param+".function.name", "tool must have a function name")
		}
		if t.Function.Name == anthropic.JSONToolName {
			return false, badRequest(param+".function.name", "tool name %q is reserved by the gateway", anthropic.JSONToolName)
		}
		schema := t.Function.Parameters
		if isNullJSON(schema) {
			schema = objectSchema
		}
		desc := t.Function.Description
		if blank(desc) {
			desc = "" // Converse rejects an empty description; omit it
		}
		tools = append(tools, wire.Tool{ToolSpec: &wire.ToolSpec{Name: t.Function.Name, Description: desc, InputSchema: wire.InputSchema{JSON: schema}}})
		if cp := cachePoint(t.CacheControl); cp != nil {
			tools = append(tools, wire.Tool{CachePoint: cp})
		}
	}

	mode := openai.ToolChoiceAuto
	if req.ToolChoice != nil {
		mode = req.ToolChoice.Mode
	}
	var choice *wire.ToolChoice
	switch mode {
	case openai.ToolChoiceNone:
		if len(historyTools) == 0 {
			tools = nil
		}
	case openai.ToolChoiceRequired:
		if len(tools) > 0 {
			choice = &wire.ToolChoice{Any: &struct{}{}}
		}
	case openai.ToolChoiceFunction:
		found := false
		for _, t := range req.Tools {
			found = found || t.Function.Name == req.ToolChoice.Function
		}
		if !found {
			return false, badRequest("tool_choice", "tool_choice names function %q, which is not in tools", req.ToolChoice.Function)
		}
		choice = &wire.ToolChoice{Tool: &wire.SpecificTool{Name: req.ToolChoice.Function}}
	}

	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case openai.FormatText, "":
		case openai.FormatJSONObject, openai.FormatJSONSchema:
			spec := &wire.ToolSpec{Name: anthropic.JSONToolName, InputSchema: wire.InputSchema{JSON: objectSchema},
				Description: "Give your final response by calling this tool: its input is the complete response, as a JSON object."}
			if rf.Type == openai.FormatJSONSchema {
				if rf.JSONSchema == nil {
					return false, badRequest("response_format.json_schema", "response_format json_schema requires a json_schema object")
				}
				if !isNullJSON(rf.JSONSchema.Schema) {
					spec.InputSchema.JSON = rf.JSONSchema.Schema
				}
				if rf.JSONSchema.Description != "" {
					spec.Description += " " + rf.JSONSchema.Description
				}
			}
			clientTools := len(tools) > 0 && mode != openai.ToolChoiceNone
			tools = append(tools, wire.Tool{ToolSpec: spec})
			switch {
			case choice != nil:
				// required stays "any": a client tool or the answer.
			case clientTools:
				// The model may still call a client tool but must end
				// with the JSON answer: "any" allows exactly those.
				choice = &wire.ToolChoice{Any: &struct{}{}}
			default:
				choice = &wire.ToolChoice{Tool: &wire.SpecificTool{Name: anthropic.JSONToolName}}
			}
		default:
			return false, badRequest("response_format.type", "response_format type %q is not supported", rf.Type)
		}
	}

	if len(tools) == 0 && len(historyTools) > 0 {
		for _, name := range historyTools {
			tools = append(tools, wire.Tool{ToolSpec: &wire.ToolSpec{Name: name, InputSchema: wire.InputSchema{JSON: objectSchema}}})
		}
	}
	if len(tools) == 0 {
		return false, nil
	}
	out.ToolConfig = &wire.ToolConfig{Tools: tools, ToolChoice: choice}
	return choice != nil, nil
}
