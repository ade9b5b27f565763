// Package openai translates the canonical request (which is OpenAI's own
// Chat Completions schema) to the OpenAI-family backends: OpenAI, Azure
// OpenAI, and any OpenAI-compatible server (vLLM, LM Studio, llama.cpp,
// Ollama's /v1). It also parses and validates inbound /v1/chat/completions
// and /v1/embeddings bodies (ParseChatRequest, ParseEmbeddingRequest).
//
// Because the wire format is the canonical one, translation here is mostly
// about what must not leak: Tollgate-only fields (reasoning_signature),
// fields a backend rejects (reasoning_content for OpenAI, max_tokens for
// OpenAI reasoning models, cache_control on parts and tools, which is
// Anthropic prompt caching carried in the canonical form), and on the way
// back, provider quirks (Azure's filter-annotation chunks, repeated roles,
// missing finish reasons, usage attached to content chunks) are normalised
// to the ChunkReader contract.
package openai

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// Flavor is the OpenAI-family dialect a Translator speaks.
type Flavor uint8

// Flavors.
const (
	// FlavorOpenAI is api.openai.com.
	FlavorOpenAI Flavor = iota
	// FlavorAzure is Azure OpenAI (deployment in the path, api-key header).
	FlavorAzure
	// FlavorCompatible is any server implementing OpenAI's API (vLLM, LM
	// Studio, llama.cpp server, Ollama /v1, TGI).
	FlavorCompatible
)

func (f Flavor) String() string {
	switch f {
	case FlavorAzure:
		return "azure openai"
	case FlavorCompatible:
		return "openai-compatible"
	default:
		return "openai"
	}
}

// DefaultAzureAPIVersion is the api-version used when a provider sets none:
// the GA version that supports tools, json_schema, stream_options and
// max_completion_tokens.
const DefaultAzureAPIVersion = "2024-10-21"

// Translator is the OpenAI-family translator. It is stateless and safe for
// concurrent use; one value per flavor serves every provider of that type.
//
// URL convention (all flavors but Azure): Provider.BaseURL is the API
// root. Requests go to {BaseURL}/v1/chat/completions and
// {BaseURL}/v1/embeddings, unless BaseURL already ends in "/v1", in which
// case "/v1" is not added again. So "https://api.openai.com",
// "https://api.openai.com/v1", "http://vllm:8000" and
// "http://lmstudio:1234/v1" all work as users expect.
//
// Azure: {BaseURL}/openai/deployments/{target model}/chat/completions
// ?api-version={Provider.APIVersion or DefaultAzureAPIVersion}, where the
// target model is the deployment name; the body has no model field.
type Translator struct {
	flavor Flavor
}

// NewOpenAI returns the translator for api.openai.com: Bearer auth, and
// max_tokens sent as max_completion_tokens because OpenAI's reasoning
// models (o-series, gpt-5) reject max_tokens while every current model
// accepts max_completion_tokens.
func NewOpenAI() *Translator { return &Translator{flavor: FlavorOpenAI} }

// NewAzure returns the translator for Azure OpenAI: api-key header and
// deployment-scoped URLs; Azure's prompt_filter_results chunks are dropped
// from streams.
func NewAzure() *Translator { return &Translator{flavor: FlavorAzure} }

// NewCompatible returns the translator for OpenAI-compatible servers. It
// sends Authorization only when the provider has an API key (local vLLM or
// LM Studio often have none), keeps max_tokens as given (not every server
// knows max_completion_tokens), and keeps reasoning_content in assistant
// history, which reasoning-model chat templates served by vLLM or
// DeepSeek-style APIs use for interleaved thinking in tool loops.
func NewCompatible() *Translator { return &Translator{flavor: FlavorCompatible} }

// Flavor reports the dialect, for logs and metrics.
func (t *Translator) Flavor() Flavor { return t.flavor }

var (
	_ translate.Translator = (*Translator)(nil)
	_ translate.Embedder   = (*Translator)(nil)
)

// ErrNoProvider is returned when a Target carries no provider.
var ErrNoProvider = errors.New("target has no provider")

// ChatRequest builds the upstream POST for req. Provider.Headers are set
// first, so they can add headers (OpenAI-Organization, OpenAI-Project,
// routing headers of a self-hosted proxy) but never replace the
// credential or the content type. Streaming requests always ask for
// usage (stream_options.include_usage): metering needs it even when the
// client did not ask, and the proxy strips the usage chunk then.
func (t *Translator) ChatRequest(ctx context.Context, req *openai.ChatRequest, tg translate.Target) (*http.Request, error) {
	if tg.Provider == nil {
		return nil, fmt.Errorf("%s: %w", t.flavor, ErrNoProvider)
	}
	req = translate.WithoutCarriedState(req) // OpenAI refuses tool call ids over 40 characters
	if t.flavor == FlavorAzure && tg.Model == "" {
		return nil, fmt.Errorf("%s: provider %s: target has no deployment name", t.flavor, tg.Provider.ID)
	}
	body, err := t.ChatBody(req, tg.Model)
	if err != nil {
		return nil, err
	}
	u := t.endpoint(tg.Provider, tg.Model, "chat/completions")
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		// The URL is built from configuration; never echo it (it may hold
		// credentials in userinfo or query).
		return nil, fmt.Errorf("%s: provider %s: invalid base URL", t.flavor, tg.Provider.ID)
	}
	t.setHeaders(hr, tg.Provider)
	if req.Stream {
		hr.Header.Set("Accept", "text/event-stream")
	} else {
		hr.Header.Set("Accept", "application/json")
	}
	return hr, nil
}

// EmbeddingRequest builds the upstream POST for an embeddings request,
// with the same URL and header conventions as ChatRequest.
func (t *Translator) EmbeddingRequest(ctx context.Context, req *openai.EmbeddingRequest, tg translate.Target) (*http.Request, error) {
	if tg.Provider == nil {
		return nil, fmt.Errorf("%s: %w", t.flavor, ErrNoProvider)
	}
	if t.flavor == FlavorAzure && tg.Model == "" {
		return nil, fmt.Errorf("%s: provider %s: target has no deployment name", t.flavor, tg.Provider.ID)
	}
	out := *req
	out.Model = tg.Model
	var body []byte
	var err error
	if t.flavor == FlavorAzure {
		body, err = json.Marshal(struct {
			*openai.EmbeddingRequest
			Model string `json:"model,omitempty"`
		}{EmbeddingRequest: &out})
	} else {
		body, err = json.Marshal(&out)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: encode embeddings request: %w", t.flavor, err)
	}
	u := t.endpoint(tg.Provider, tg.Model, "embeddings")
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: provider %s: invalid base URL", t.flavor, tg.Provider.ID)
	}
	t.setHeaders(hr, tg.Provider)
	hr.Header.Set("Accept", "application/json")
	return hr, nil
}

func (t *Translator) endpoint(p *routetable.Provider, model, op string) string {
	base := strings.TrimRight(p.BaseURL, "/")
	if t.flavor == FlavorAzure {
		v := p.APIVersion
		if v == "" {
			v = DefaultAzureAPIVersion
		}
		return base + "/openai/deployments/" + url.PathEscape(model) + "/" + op + "?api-version=" + url.QueryEscape(v)
	}
	if strings.HasSuffix(base, "/v1") {
		return base + "/" + op
	}
	return base + "/v1/" + op
}

func (t *Translator) setHeaders(hr *http.Request, p *routetable.Provider) {
	for k, v := range p.Headers {
		hr.Header.Set(k, v)
	}
	switch t.flavor {
	case FlavorAzure:
		hr.Header.Del("Authorization")
		hr.Header.Set("api-key", p.APIKey)
	case FlavorCompatible:
		if p.APIKey != "" {
			hr.Header.Set("Authorization", "Bearer "+p.APIKey)
		}
	default:
		hr.Header.Set("Authorization", "Bearer "+p.APIKey)
	}
	hr.Header.Set("Content-Type", "application/json")
}

// azureChatBody shadows ChatRequest.Model with an omitempty field: Azure
// names the deployment in the URL and the body carries no model.
type azureChatBody struct {
	*openai.ChatRequest
	Model string `json:"model,omitempty"`
}

// ChatBody returns the upstream JSON body for req sent to model. It never
// mutates req (the proxy reuses it for fallback attempts): fields that
// change are set on a shallow copy and messages are copied only when one
// of them must change. Rules, by flavor:
//
//   - all: model replaced by the target model (omitted for Azure);
//     stream_options is {"include_usage":true} on streams and absent
//     otherwise; reasoning_signature (Tollgate-only) is dropped, and so
//     are empty text parts (they would go out without their text), and
//     cache_control on parts and tools (Anthropic prompt caching: OpenAI
//     rejects the unknown field, and caches prompt prefixes by itself);
//   - OpenAI: max_tokens moves to max_completion_tokens (unless that is
//     set); reasoning_content is dropped from history (OpenAI rejects it);
//   - Azure: reasoning_content and metadata are dropped; developer
//     messages are sent as system messages, which Azure accepts on every
//     api-version (and converts for o-series models itself);
//   - Compatible: metadata is dropped (not part of what these servers
//     implement) and developer becomes system (chat templates of open
//     models know system, not developer); reasoning_content is kept.
//
// A request that still holds the client's OpenAI-dialect bytes (Native) is sent as those
// bytes with the same rules applied member by member (passthroughBody), so
// fields Tollgate does not model reach the upstream too.
func (t *Translator) ChatBody(req *openai.ChatRequest, model string) ([]byte, error) {
	msgs := t.historyFor(req.Messages)
	if req.NativeBody(openai.DialectOpenAI) != nil {
		if b, ok := t.passthroughBody(req, msgs, model); ok {
			return b, nil
		}
	}
	out := *req
	out.Native = nil
	out.Model = model
	if req.Stream {
		out.StreamOptions = &includeUsage
	} else {
		out.StreamOptions = nil
	}
	if t.flavor == FlavorOpenAI && out.MaxTokens != nil {
		if out.MaxCompletionTokens == nil {
			out.MaxCompletionTokens = out.MaxTokens
		}
		out.MaxTokens = nil
	}
	if t.flavor != FlavorOpenAI {
		out.Metadata = nil
	}
	out.Messages = msgs
	out.Tools = toolsWithoutCacheControl(req.Tools)
	var b []byte
	var err error
	if t.flavor == FlavorAzure {
		b, err = json.Marshal(azureChatBody{ChatRequest: &out})
	} else {
		b, err = json.Marshal(&out)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: encode request: %w", t.flavor, err)
	}
	return b, nil
}

var includeUsage = openai.StreamOptions{IncludeUsage: true}

// historyFor returns msgs, or a copy with the per-flavor message rewrites
// applied when any message needs one.
func (t *Translator) historyFor(msgs []openai.Message) []openai.Message {
	dropReasoning := t.flavor != FlavorCompatible
	mapDeveloper := t.flavor != FlavorOpenAI
	needs := func(m *openai.Message) bool {
		return m.ReasoningSignature != "" ||
			(dropReasoning && m.ReasoningContent != "") ||
			(mapDeveloper && m.Role == openai.RoleDeveloper) ||
			hasEmptyText(m.Content) || hasCacheControl(m.Content)
	}
	first := -1
	for i := range msgs {
		if needs(&msgs[i]) {
			first = i
			break
		}
	}
	if first < 0 {
		return msgs
	}
	out := make([]openai.Message, len(msgs))
	copy(out, msgs)
	for i := first; i < len(out); i++ {
		m := &out[i]
		m.ReasoningSignature = ""
		if dropReasoning {
			m.ReasoningContent = ""
		}
		if mapDeveloper && m.Role == openai.RoleDeveloper {
			m.Role = openai.RoleSystem
		}
		if hasEmptyText(m.Content) || hasCacheControl(m.Content) {
			m.Content = upstreamParts(m.Content)
		}
	}
	return out
}

// hasCacheControl reports a part with a cache_control marker.
func hasCacheControl(c openai.Content) bool {
	for i := range c.Parts {
		if c.Parts[i].CacheControl != nil {
			return true
		}
	}
	return false
}

// toolsWithoutCacheControl returns tools, or a copy without cache_control
// when any tool has one.
func toolsWithoutCacheControl(tools []openai.Tool) []openai.Tool {
	if !slices.ContainsFunc(tools, func(t openai.Tool) bool { return t.CacheControl != nil }) {
		return tools
	}
	out := slices.Clone(tools)
	for i := range out {
		out[i].CacheControl = nil
	}
	return out
}

// hasEmptyText reports a text part with empty text. Such a part is valid
// but would be sent as {"type":"text"} (the schema omits empty text),
// which upstream rejects; it contributes nothing, so it is dropped.
func hasEmptyText(c openai.Content) bool {
	for i := range c.Parts {
		if c.Parts[i].Type == openai.PartText && c.Parts[i].Text == "" {
			return true
		}
	}
	return false
}

// upstreamParts returns c without empty text parts and without
// cache_control markers; a content left with no part becomes the empty
// string.
func upstreamParts(c openai.Content) openai.Content {
	parts := make([]openai.ContentPart, 0, len(c.Parts))
	for _, p := range c.Parts {
		if p.Type != openai.PartText || p.Text != "" {
			p.CacheControl = nil
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return openai.TextContent("")
	}
	return openai.PartsContent(parts...)
}
