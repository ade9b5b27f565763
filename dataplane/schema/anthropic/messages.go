// Package anthropic holds the Anthropic Messages API wire types
// (POST /v1/messages, its responses, stream events and errors). It has no
// logic beyond JSON shape: translation lives in translate/anthropic, so the
// same types serve the outbound translator (OpenAI -> Anthropic provider)
// and the inbound endpoint (Anthropic-native clients -> any provider).
package anthropic

import (
	"bytes"
	"errors"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"
)

// DefaultVersion is the anthropic-version header sent when the provider does
// not pin one; it is the only stable Messages API version.
const DefaultVersion = "2023-06-01"

// MessagesRequest is a POST /v1/messages body.
type MessagesRequest struct {
	Model         string      `json:"model"`
	Messages      []Message   `json:"messages"`
	System        *Content    `json:"system,omitempty"`
	MaxTokens     *int        `json:"max_tokens,omitempty"`
	Metadata      *Metadata   `json:"metadata,omitempty"`
	StopSequences []string    `json:"stop_sequences,omitempty"`
	Stream        bool        `json:"stream,omitempty"`
	Temperature   *float64    `json:"temperature,omitempty"`
	TopP          *float64    `json:"top_p,omitempty"`
	TopK          *int        `json:"top_k,omitempty"`
	Tools         []Tool      `json:"tools,omitempty"`
	ToolChoice    *ToolChoice `json:"tool_choice,omitempty"`
	Thinking      *Thinking   `json:"thinking,omitempty"`
}

// Roles a Messages API message may have.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one conversation turn.
type Message struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
}

// Content is a message's (or a system prompt's, or a tool result's)
// content: a plain string or an array of content blocks. Anthropic accepts
// both forms everywhere, so one type models all three places.
type Content struct {
	// Text is the content when it was given as a string.
	Text string
	// Blocks is the content when it was given as an array.
	Blocks []ContentBlock
	// IsString tells which form was used, so it is written back the same way.
	IsString bool
}

// TextContent returns a string Content.
func TextContent(s string) Content { return Content{Text: s, IsString: true} }

// BlocksContent returns an array Content.
func BlocksContent(blocks ...ContentBlock) Content { return Content{Blocks: blocks} }

// ErrContentType is returned for content that is neither a string nor an array.
var ErrContentType = errors.New("content must be a string or an array of content blocks")

// MarshalJSON writes a string or an array.
func (c Content) MarshalJSON() ([]byte, error) {
	if c.IsString {
		return json.Marshal(c.Text)
	}
	if c.Blocks == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(c.Blocks)
}

// UnmarshalJSON accepts a string or an array of blocks.
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		*c = Content{IsString: true}
		return json.Unmarshal(b, &c.Text)
	case len(b) > 0 && b[0] == '[':
		*c = Content{}
		return json.Unmarshal(b, &c.Blocks)
	default:
		return ErrContentType
	}
}

// Content block types.
const (
	BlockText             = "text"
	BlockImage            = "image"
	BlockDocument         = "document"
	BlockToolUse          = "tool_use"
	BlockToolResult       = "tool_result"
	BlockThinking         = "thinking"
	BlockRedactedThinking = "redacted_thinking"
)

// ContentBlock is one element of an array content. It is a flat union: the
// fields that apply depend on Type (text: Text; image/document: Source;
// tool_use: ID, Name, Input; tool_result: ToolUseID, Content, IsError;
// thinking: Thinking, Signature; redacted_thinking: Data).
type ContentBlock struct {
	Type string `json:"type"`

	Text string `json:"text,omitempty"`

	Source *Source `json:"source,omitempty"`

	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`

	ToolUseID string   `json:"tool_use_id,omitempty"`
	Content   *Content `json:"content,omitempty"`
	IsError   bool     `json:"is_error,omitempty"`

	Thinking  string `json:"thinking,omitempty"`
	Signature string `json:"signature,omitempty"`
	Data      string `json:"data,omitempty"`

	// CacheControl is a prompt-caching breakpoint, kept verbatim: the
	// inbound parser copies it to the canonical part, from which the
	// Anthropic and Bedrock translators write it again (docs/dialects.md).
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// UnmarshalJSONFrom decodes a block strictly when its type is one the
// gateway maps; a block of another type (a server tool's result, a search
// result, a type added later) whose fields do not fit keeps only its type,
// so the request can still go to Anthropic as the client wrote it (see
// ChatRequest.NativeOnly) instead of failing here.
func (b *ContentBlock) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	val, err := dec.ReadValue()
	if err != nil {
		return err
	}
	type plain ContentBlock
	var p plain
	err = json.Unmarshal(val, &p)
	if err == nil {
		*b = ContentBlock(p)
		return nil
	}
	var t struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(val, &t) != nil || mappedBlock(t.Type) {
		return err
	}
	*b = ContentBlock{Type: t.Type}
	return nil
}

func mappedBlock(typ string) bool {
	switch typ {
	case BlockText, BlockImage, BlockDocument, BlockToolUse, BlockToolResult, BlockThinking, BlockRedactedThinking, "":
		return true
	}
	return false
}

// Source types of image and document blocks.
const (
	SourceBase64 = "base64"
	SourceURL    = "url"
)

// Source is where an image's or document's bytes come from.
type Source struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

// Metadata is the request metadata object.
type Metadata struct {
	UserID string `json:"user_id,omitempty"`
}

// Tool is a tool definition. Client tools have no Type (or "custom");
// Anthropic-hosted server tools carry a versioned type such as
// "web_search_20250305".
type Tool struct {
	Type         string          `json:"type,omitempty"`
	Name         string          `json:"name"`
	Description  string          `json:"description,omitempty"`
	InputSchema  json.RawMessage `json:"input_schema,omitempty"`
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// Tool choice types.
const (
	ToolChoiceAuto = "auto"
	ToolChoiceAny  = "any"
	ToolChoiceTool = "tool"
	ToolChoiceNone = "none"
)

// ToolChoice is the tool_choice object.
type ToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse *bool  `json:"disable_parallel_tool_use,omitempty"`
}

// Thinking types.
const (
	ThinkingEnabled  = "enabled"
	ThinkingDisabled = "disabled"
	ThinkingAdaptive = "adaptive"
)

// Thinking is the extended-thinking configuration.
type Thinking struct {
	Type         string `json:"type"`
	BudgetTokens int    `json:"budget_tokens,omitempty"`
}

// MessageResponse is a non-streaming /v1/messages answer, and the message
// object inside a message_start stream event.
type MessageResponse struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"` // "message"
	Role         string         `json:"role"`
	Model        string         `json:"model"`
	Content      []ContentBlock `json:"content"`
	StopReason   *string        `json:"stop_reason"`
	StopSequence *string        `json:"stop_sequence"`
	Usage        Usage          `json:"usage"`
}

// Stop reasons.
const (
	StopEndTurn       = "end_turn"
	StopMaxTokens     = "max_tokens"
	StopStopSequence  = "stop_sequence"
	StopToolUse       = "tool_use"
	StopPauseTurn     = "pause_turn"
	StopRefusal       = "refusal"
	StopContextWindow = "model_context_window_exceeded"
)

// Usage is token usage. Input tokens exclude cache reads and cache writes,
// which Anthropic reports separately.
type Usage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

// DeltaUsage is the usage of a message_delta event. Output tokens are
// cumulative; the input fields are present only on some API versions, so
// they are pointers to tell "absent" from zero.
type DeltaUsage struct {
	OutputTokens             int  `json:"output_tokens"`
	InputTokens              *int `json:"input_tokens,omitempty"`
	CacheCreationInputTokens *int `json:"cache_creation_input_tokens,omitempty"`
	CacheReadInputTokens     *int `json:"cache_read_input_tokens,omitempty"`
}

// Stream event types.
const (
	EventMessageStart      = "message_start"
	EventContentBlockStart = "content_block_start"
	EventContentBlockDelta = "content_block_delta"
	EventContentBlockStop  = "content_block_stop"
	EventMessageDelta      = "message_delta"
	EventMessageStop       = "message_stop"
	EventPing              = "ping"
	EventError             = "error"
)

// Delta types of content_block_delta events.
const (
	DeltaText      = "text_delta"
	DeltaInputJSON = "input_json_delta"
	DeltaThinking  = "thinking_delta"
	DeltaSignature = "signature_delta"
)

// StreamEvent is the data of any stream event, as a flat union keyed by Type.
type StreamEvent struct {
	Type string `json:"type"`
	// Message is set on message_start.
	Message *MessageResponse `json:"message,omitempty"`
	// Index is the content block index of content_block_* events.
	Index *int `json:"index,omitempty"`
	// ContentBlock is set on content_block_start.
	ContentBlock *ContentBlock `json:"content_block,omitempty"`
	// Delta is set on content_block_delta and message_delta.
	Delta *StreamDelta `json:"delta,omitempty"`
	// Usage is set on message_delta.
	Usage *DeltaUsage `json:"usage,omitempty"`
	// Error is set on error.
	Error *ErrorDetail `json:"error,omitempty"`
}

// StreamDelta is the delta of a content_block_delta (Type set) or a
// message_delta (StopReason set) event.
type StreamDelta struct {
	Type         string  `json:"type,omitempty"`
	Text         string  `json:"text,omitempty"`
	PartialJSON  string  `json:"partial_json,omitempty"`
	Thinking     string  `json:"thinking,omitempty"`
	Signature    string  `json:"signature,omitempty"`
	StopReason   *string `json:"stop_reason,omitempty"`
	StopSequence *string `json:"stop_sequence,omitempty"`
}

// Error types.
const (
	ErrInvalidRequest  = "invalid_request_error"
	ErrAuthentication  = "authentication_error"
	ErrBilling         = "billing_error"
	ErrPermission      = "permission_error"
	ErrNotFound        = "not_found_error"
	ErrRequestTooLarge = "request_too_large"
	ErrRateLimit       = "rate_limit_error"
	ErrAPI             = "api_error"
	ErrOverloaded      = "overloaded_error"
	ErrTimeout         = "timeout_error"
)

// StatusOverloaded is Anthropic's non-standard "overloaded" HTTP status.
const StatusOverloaded = 529

// ErrorResponse is the error envelope of non-2xx answers and the data of an
// error stream event.
type ErrorResponse struct {
	Type      string      `json:"type"` // "error"
	Error     ErrorDetail `json:"error"`
	RequestID string      `json:"request_id,omitempty"`
}

// ErrorDetail is the error object itself.
type ErrorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}
