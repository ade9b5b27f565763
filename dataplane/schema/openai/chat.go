// Package openai holds the OpenAI Chat Completions wire types. They are also
// Tollgate's canonical form: every inbound API is parsed into a ChatRequest,
// every provider translator maps ChatRequest to its native request and its
// native responses back to ChatResponse / ChatChunk (hub and spoke, N+M
// converters instead of N×M).
package openai

import (
	"bytes"
	"errors"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"
)

// ChatRequest is a POST /v1/chat/completions body.
type ChatRequest struct {
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`

	Stream        bool           `json:"stream,omitempty"`
	StreamOptions *StreamOptions `json:"stream_options,omitempty"`

	MaxTokens           *int     `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int     `json:"max_completion_tokens,omitempty"`
	Temperature         *float64 `json:"temperature,omitempty"`
	TopP                *float64 `json:"top_p,omitempty"`
	N                   *int     `json:"n,omitempty"`
	Stop                Stop     `json:"stop,omitempty"`
	PresencePenalty     *float64 `json:"presence_penalty,omitempty"`
	FrequencyPenalty    *float64 `json:"frequency_penalty,omitempty"`
	Seed                *int64   `json:"seed,omitempty"`
	User                string   `json:"user,omitempty"`

	Tools             []Tool      `json:"tools,omitempty"`
	ToolChoice        *ToolChoice `json:"tool_choice,omitempty"`
	ParallelToolCalls *bool       `json:"parallel_tool_calls,omitempty"`

	ResponseFormat  *ResponseFormat `json:"response_format,omitempty"`
	ReasoningEffort string          `json:"reasoning_effort,omitempty"`

	Logprobs    *bool `json:"logprobs,omitempty"`
	TopLogprobs *int  `json:"top_logprobs,omitempty"`

	Metadata map[string]string `json:"metadata,omitempty"`

	// Native is the client's own request, while the struct still says all
	// it says: a translator whose provider speaks the client's dialect may
	// send it (edited where it must) instead of encoding the struct, which
	// keeps what the struct does not model. Whoever changes the struct after
	// parsing, or must not let unmodelled fields leave (a data policy scans
	// only the struct), sets it to nil.
	Native *Native `json:"-"`
	// NativeOnly names what the client sent that has no canonical form (an
	// Anthropic server tool, a block type the struct lacks): it is left out
	// of the struct, and only a provider of the client's dialect that is
	// sent the client's own body (Native) can serve the request.
	NativeOnly string `json:"-"`
}

// Native is a client's request in its own API dialect.
type Native struct {
	Dialect Dialect
	// Body is the client's JSON body.
	Body []byte
	// Beta is the client's anthropic-beta header (Anthropic dialect): the
	// features it turned on, which the provider must be told about too.
	Beta string
}

// Dialect is an API shape clients and providers speak.
type Dialect uint8

// Dialects.
const (
	DialectOpenAI    Dialect = iota + 1 // Chat Completions
	DialectAnthropic                    // Messages
)

// NativeBody returns the client's own body when it is in dialect d and
// still matches the struct, else nil.
func (r *ChatRequest) NativeBody(d Dialect) []byte {
	if r.Native == nil || r.Native.Dialect != d {
		return nil
	}
	return r.Native.Body
}

// StreamOptions is the stream_options object.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// MaxOutputTokens returns max_completion_tokens, else max_tokens, else 0.
func (r *ChatRequest) MaxOutputTokens() int {
	if r.MaxCompletionTokens != nil {
		return *r.MaxCompletionTokens
	}
	if r.MaxTokens != nil {
		return *r.MaxTokens
	}
	return 0
}

// WantsUsageChunk reports whether a streaming client asked for a final usage chunk.
func (r *ChatRequest) WantsUsageChunk() bool {
	return r.StreamOptions != nil && r.StreamOptions.IncludeUsage
}

// Roles.
const (
	RoleSystem    = "system"
	RoleDeveloper = "developer"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
	RoleFunction  = "function" // deprecated; rejected by validation
)

// Message is one chat message.
type Message struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
	Name    string  `json:"name,omitempty"`
	// ToolCalls are an assistant's function calls.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID links a tool message to the call it answers.
	ToolCallID string `json:"tool_call_id,omitempty"`
	// ReasoningContent carries thinking/reasoning text, never mixed into Content.
	ReasoningContent string `json:"reasoning_content,omitempty"`
	// ReasoningSignature is an opaque provider signature over the reasoning
	// (Anthropic thinking blocks) so multi-turn thinking round-trips.
	ReasoningSignature string `json:"reasoning_signature,omitempty"`
	Refusal            string `json:"refusal,omitempty"`
}

// Content is a message's content: null, a string, or an array of parts.
type Content struct {
	Text  string
	Parts []ContentPart
	// Kind tells which form was used so it can be written back the same way.
	Kind ContentKind
}

// ContentKind is the JSON form of a Content.
type ContentKind uint8

// Content forms.
const (
	ContentNull ContentKind = iota
	ContentString
	ContentParts
)

// TextContent returns a string Content.
func TextContent(s string) Content { return Content{Text: s, Kind: ContentString} }

// PartsContent returns an array Content.
func PartsContent(parts ...ContentPart) Content { return Content{Parts: parts, Kind: ContentParts} }

// IsEmpty reports whether there is no text and no parts.
func (c Content) IsEmpty() bool {
	return c.Kind == ContentNull || (c.Kind == ContentString && c.Text == "") || (c.Kind == ContentParts && len(c.Parts) == 0)
}

// PlainText concatenates the text of a string content or of all text parts.
func (c Content) PlainText() string {
	if c.Kind != ContentParts {
		return c.Text
	}
	if len(c.Parts) == 1 {
		return c.Parts[0].Text
	}
	var b bytes.Buffer
	for _, p := range c.Parts {
		if p.Type == PartText {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// MarshalJSON writes null, a string or an array. It exists for encoders
// other than json v2 (encoding/json); it runs MarshalJSONTo, which json v2
// prefers, so the two cannot disagree.
func (c Content) MarshalJSON() ([]byte, error) { return json.Marshal(c) }

// MarshalJSONTo is MarshalJSON for the json v2 encoder, which prefers it:
// the value goes straight into the encoder's buffer, escaped once, instead
// of being built in a slice of its own and then validated and copied. The
// encoder's options (v1 HTML escaping) apply as for any other string.
func (c Content) MarshalJSONTo(enc *jsontext.Encoder) error {
	switch c.Kind {
	case ContentString:
		return enc.WriteToken(jsontext.String(c.Text))
	case ContentParts:
		if c.Parts == nil {
			return enc.WriteValue(jsontext.Value("[]"))
		}
		return jsonv2.MarshalEncode(enc, c.Parts)
	default:
		return enc.WriteToken(jsontext.Null)
	}
}

// UnmarshalJSONFrom is UnmarshalJSON for the json v2 decoder: it reads the
// value from the decoder's stream instead of having it copied out and
// re-scanned, so a prompt's text is read once.
func (c *Content) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	switch dec.PeekKind() {
	case 'n':
		if _, err := dec.ReadToken(); err != nil {
			return err
		}
		*c = Content{}
	case '"':
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		*c = Content{Text: tok.String(), Kind: ContentString}
	case '[':
		var parts []ContentPart
		if err := jsonv2.UnmarshalDecode(dec, &parts); err != nil {
			return err
		}
		*c = Content{Parts: parts, Kind: ContentParts}
	default:
		if _, err := dec.ReadValue(); err != nil {
			return err
		}
		return ErrContentType
	}
	return nil
}

// ErrContentType is returned for content that is neither null, a string nor an array.
var ErrContentType = errors.New("content must be a string, an array of content parts, or null")

// UnmarshalJSON accepts null, a string or an array of parts; like
// MarshalJSON it runs the json v2 method, UnmarshalJSONFrom.
func (c *Content) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, c) }

// Content part types.
const (
	PartText       = "text"
	PartImageURL   = "image_url"
	PartInputAudio = "input_audio"
	PartFile       = "file"
	PartRefusal    = "refusal"
)

// ContentPart is one element of an array content.
type ContentPart struct {
	Type       string      `json:"type"`
	Text       string      `json:"text,omitempty"`
	ImageURL   *ImageURL   `json:"image_url,omitempty"`
	InputAudio *InputAudio `json:"input_audio,omitempty"`
	File       *File       `json:"file,omitempty"`
	Refusal    string      `json:"refusal,omitempty"`
	// CacheControl is an Anthropic prompt-caching breakpoint after this part
	// ({"type":"ephemeral"}, optionally with "ttl" "5m" or "1h"). It is not
	// OpenAI's: it is the convention OpenAI-format gateways (OpenRouter,
	// LiteLLM) use so clients can ask for Claude prompt caching, and the
	// place Anthropic clients' block markers are kept in the canonical form.
	// The Anthropic and Bedrock translators send it on; OpenAI-family
	// upstreams, which reject unknown part fields, never get it.
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// MarshalJSON keeps the payload field of text and refusal parts even when
// it is empty: {"type":"text","text":""} is valid, {"type":"text"} is not.
func (p ContentPart) MarshalJSON() ([]byte, error) {
	switch p.Type {
	case "text":
		return json.Marshal(struct {
			Type         string          `json:"type"`
			Text         string          `json:"text"`
			CacheControl json.RawMessage `json:"cache_control,omitempty"`
		}{p.Type, p.Text, p.CacheControl})
	case "refusal":
		return json.Marshal(struct {
			Type         string          `json:"type"`
			Refusal      string          `json:"refusal"`
			CacheControl json.RawMessage `json:"cache_control,omitempty"`
		}{p.Type, p.Refusal, p.CacheControl})
	}
	type plain ContentPart
	return json.Marshal(plain(p))
}

// ImageURL is an image by http(s) URL or data URL.
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

// InputAudio is base64 audio input.
type InputAudio struct {
	Data   string `json:"data"`
	Format string `json:"format"`
}

// File is an inline file part.
type File struct {
	FileData string `json:"file_data,omitempty"`
	FileID   string `json:"file_id,omitempty"`
	Filename string `json:"filename,omitempty"`
}

// Stop is the stop parameter: a string or an array of strings.
type Stop []string

// UnmarshalJSON accepts a string, an array of strings or null.
func (s *Stop) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*s = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = Stop{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("stop must be a string or an array of strings")
	}
	*s = many
	return nil
}

// Tool is a tool definition. Only "function" tools exist in Chat Completions.
type Tool struct {
	Type     string       `json:"type"`
	Function FunctionDecl `json:"function"`
	// CacheControl is an Anthropic prompt-caching breakpoint after this tool
	// definition, as on ContentPart. OpenAI-format gateways put it on the
	// tool, beside "function" (not inside it), and so does Anthropic's own
	// tool object; OpenAI-family upstreams never get it.
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// FunctionDecl declares a callable function.
type FunctionDecl struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// Tool choice modes.
const (
	ToolChoiceAuto     = "auto"
	ToolChoiceNone     = "none"
	ToolChoiceRequired = "required"
	ToolChoiceFunction = "function"
)

// ToolChoice is "auto" | "none" | "required" | {"type":"function","function":{"name":...}}.
type ToolChoice struct {
	// Mode is auto, none, required or function.
	Mode string
	// Function is the forced function name when Mode is "function".
	Function string
}

// MarshalJSON writes the string or object form.
func (t ToolChoice) MarshalJSON() ([]byte, error) {
	if t.Mode == ToolChoiceFunction {
		return json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": t.Function}})
	}
	return json.Marshal(t.Mode)
}

// UnmarshalJSON reads the string or object form.
func (t *ToolChoice) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch s {
		case ToolChoiceAuto, ToolChoiceNone, ToolChoiceRequired:
			*t = ToolChoice{Mode: s}
			return nil
		}
		return errors.New(`tool_choice must be "auto", "none", "required" or a function object`)
	}
	var obj struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return errors.New(`tool_choice must be "auto", "none", "required" or a function object`)
	}
	if obj.Type != "function" || obj.Function.Name == "" {
		return errors.New(`tool_choice object must be {"type":"function","function":{"name":...}}`)
	}
	*t = ToolChoice{Mode: ToolChoiceFunction, Function: obj.Function.Name}
	return nil
}

// ToolCall is an assistant's call of a function. In stream deltas Index is
// set and ID, Type and Name appear only in the first delta of each call.
type ToolCall struct {
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function FunctionCall `json:"function"`
}

// FunctionCall is a function name and its JSON-encoded arguments.
type FunctionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// Response formats.
const (
	FormatText       = "text"
	FormatJSONObject = "json_object"
	FormatJSONSchema = "json_schema"
)

// ResponseFormat is response_format.
type ResponseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *JSONSchema `json:"json_schema,omitempty"`
}

// JSONSchema is response_format.json_schema.
type JSONSchema struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ChatResponse is a non-streaming chat.completion.
type ChatResponse struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"` // "chat.completion"
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	Choices           []Choice `json:"choices"`
	Usage             *Usage   `json:"usage,omitempty"`
	SystemFingerprint string   `json:"system_fingerprint,omitempty"`
	ServiceTier       string   `json:"service_tier,omitempty"`
}

// Choice is one completion choice.
type Choice struct {
	Index        int             `json:"index"`
	Message      Message         `json:"message"`
	FinishReason string          `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
}

// Finish reasons.
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
)

// Usage is token usage. Cache-write tokens are not part of OpenAI's schema;
// Tollgate reports them in prompt_tokens_details.cache_write_tokens so
// Anthropic/Bedrock cache writes are visible and priced.
type Usage struct {
	PromptTokens            int                      `json:"prompt_tokens"`
	CompletionTokens        int                      `json:"completion_tokens"`
	TotalTokens             int                      `json:"total_tokens"`
	PromptTokensDetails     *PromptTokensDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *CompletionTokensDetails `json:"completion_tokens_details,omitempty"`
}

// PromptTokensDetails breaks prompt tokens down. PromptTokens includes
// cached and cache-write tokens (OpenAI semantics).
type PromptTokensDetails struct {
	CachedTokens     int `json:"cached_tokens"`
	CacheWriteTokens int `json:"cache_write_tokens,omitempty"`
	AudioTokens      int `json:"audio_tokens,omitempty"`
}

// CompletionTokensDetails breaks completion tokens down. CompletionTokens
// includes reasoning tokens (OpenAI semantics).
type CompletionTokensDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
	AudioTokens     int `json:"audio_tokens,omitempty"`
}

// CachedTokens returns prompt_tokens_details.cached_tokens or 0.
func (u *Usage) CachedTokens() int {
	if u == nil || u.PromptTokensDetails == nil {
		return 0
	}
	return u.PromptTokensDetails.CachedTokens
}

// CacheWriteTokens returns prompt_tokens_details.cache_write_tokens or 0.
func (u *Usage) CacheWriteTokens() int {
	if u == nil || u.PromptTokensDetails == nil {
		return 0
	}
	return u.PromptTokensDetails.CacheWriteTokens
}

// ReasoningTokens returns completion_tokens_details.reasoning_tokens or 0.
func (u *Usage) ReasoningTokens() int {
	if u == nil || u.CompletionTokensDetails == nil {
		return 0
	}
	return u.CompletionTokensDetails.ReasoningTokens
}

// ChatChunk is one chat.completion.chunk of a stream.
type ChatChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"` // "chat.completion.chunk"
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	Choices           []ChunkChoice `json:"choices"`
	Usage             *Usage        `json:"usage,omitempty"`
	SystemFingerprint string        `json:"system_fingerprint,omitempty"`
}

// ForClient readies c for a client that did or did not ask for usage
// (stream_options.include_usage): Tollgate always asks upstream, for
// metering, so without the client's asking usage is removed, and false is
// returned for the usage-only chunk, which is not sent at all.
func (c *ChatChunk) ForClient(includeUsage bool) bool {
	if includeUsage {
		return true
	}
	if len(c.Choices) == 0 && c.Usage != nil {
		return false
	}
	c.Usage = nil
	return true
}

// ChunkChoice is one choice's delta in a chunk.
type ChunkChoice struct {
	Index        int             `json:"index"`
	Delta        Delta           `json:"delta"`
	FinishReason *string         `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
}

// Delta is the incremental message of a chunk.
type Delta struct {
	Role             string     `json:"role,omitempty"`
	Content          *string    `json:"content,omitempty"`
	ReasoningContent *string    `json:"reasoning_content,omitempty"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
	Refusal          *string    `json:"refusal,omitempty"`
	// ReasoningSignature carries a fragment of the provider's signature over
	// the reasoning (Anthropic signature_delta) so a streaming client can
	// send the thinking back in the next turn, as Message.ReasoningSignature.
	ReasoningSignature *string `json:"reasoning_signature,omitempty"`
}

// Object names.
const (
	ObjectChatCompletion      = "chat.completion"
	ObjectChatCompletionChunk = "chat.completion.chunk"
)
