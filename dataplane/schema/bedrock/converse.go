// Package bedrock holds the wire types of the Amazon Bedrock Runtime
// Converse and ConverseStream operations (REST-JSON protocol), as documented
// in the Bedrock API reference. Only the members the gateway reads or writes
// are declared; unknown members in responses are ignored.
//
// Converse unions (ContentBlock, ToolChoice, deltas...) are objects with
// exactly one member set; they are modelled as structs of optional fields.
package bedrock

import json "github.com/go-json-experiment/json/v1"

// ConverseRequest is the body of POST /model/{modelId}/converse and
// /converse-stream. The model ID travels in the path, not the body.
type ConverseRequest struct {
	Messages                     []Message        `json:"messages"`
	System                       []SystemContent  `json:"system,omitempty"`
	InferenceConfig              *InferenceConfig `json:"inferenceConfig,omitempty"`
	ToolConfig                   *ToolConfig      `json:"toolConfig,omitempty"`
	AdditionalModelRequestFields json.RawMessage  `json:"additionalModelRequestFields,omitempty"`
}

// Conversation roles.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one conversation turn; roles must alternate, starting with user.
type Message struct {
	Role    string         `json:"role"`
	Content []ContentBlock `json:"content"`
}

// SystemContent is a union: one block of the system prompt, or a cache
// point after the blocks before it.
type SystemContent struct {
	Text       string           `json:"text,omitempty"`
	CachePoint *CachePointBlock `json:"cachePoint,omitempty"`
}

// CachePointBlock is a prompt-caching checkpoint: the prompt up to it (in
// the order toolConfig, system, messages) is cached. Its own element of
// the system, a message's content or toolConfig.tools, after what it
// closes.
type CachePointBlock struct {
	Type string `json:"type"`          // always CachePointDefault
	TTL  string `json:"ttl,omitempty"` // "5m" (default) or "1h", for the models that take it
}

// CachePointDefault is the only CachePointBlock type.
const CachePointDefault = "default"

// ContentBlock is a union: exactly one member is set. Text is a pointer so an
// empty text block can be told apart from a non-text block when decoding.
type ContentBlock struct {
	Text             *string           `json:"text,omitempty"`
	Image            *ImageBlock       `json:"image,omitempty"`
	Document         *DocumentBlock    `json:"document,omitempty"`
	ToolUse          *ToolUseBlock     `json:"toolUse,omitempty"`
	ToolResult       *ToolResultBlock  `json:"toolResult,omitempty"`
	ReasoningContent *ReasoningContent `json:"reasoningContent,omitempty"`
	CachePoint       *CachePointBlock  `json:"cachePoint,omitempty"`
}

// TextBlock returns a text content block.
func TextBlock(s string) ContentBlock { return ContentBlock{Text: &s} }

// Image formats accepted by ImageBlock.Format.
const (
	ImagePNG  = "png"
	ImageJPEG = "jpeg"
	ImageGIF  = "gif"
	ImageWebP = "webp"
)

// ImageBlock is an inline image.
type ImageBlock struct {
	Format string      `json:"format"`
	Source ImageSource `json:"source"`
}

// ImageSource carries the image bytes. Bytes is the base64 text of the
// blob, as the REST-JSON protocol encodes blobs; keeping it a string lets
// data: URLs pass through without a decode/encode round trip.
type ImageSource struct {
	Bytes string `json:"bytes"`
}

// DocumentBlock is an inline document (PDF, text, ...).
type DocumentBlock struct {
	Format string         `json:"format"`
	Name   string         `json:"name"`
	Source DocumentSource `json:"source"`
}

// DocumentSource carries the document bytes as base64 text.
type DocumentSource struct {
	Bytes string `json:"bytes"`
}

// ToolUseBlock is a model's request to call a tool.
type ToolUseBlock struct {
	ToolUseID string `json:"toolUseId"`
	Name      string `json:"name"`
	// Input is the call's arguments, a JSON object.
	Input json.RawMessage `json:"input"`
}

// Tool result statuses. Only some models (Anthropic Claude) accept the
// status member at all.
const (
	ToolResultSuccess = "success"
	ToolResultError   = "error"
)

// ToolResultBlock answers one ToolUseBlock, in a user turn.
type ToolResultBlock struct {
	ToolUseID string              `json:"toolUseId"`
	Content   []ToolResultContent `json:"content"`
	Status    string              `json:"status,omitempty"`
}

// ToolResultContent is a union: text, JSON or image.
type ToolResultContent struct {
	Text  *string         `json:"text,omitempty"`
	JSON  json.RawMessage `json:"json,omitempty"`
	Image *ImageBlock     `json:"image,omitempty"`
}

// ReasoningContent is a union: visible reasoning text with its signature,
// or reasoning the provider redacted (opaque, base64).
type ReasoningContent struct {
	ReasoningText   *ReasoningText `json:"reasoningText,omitempty"`
	RedactedContent string         `json:"redactedContent,omitempty"`
}

// ReasoningText is visible reasoning; Signature must be sent back unchanged
// in later turns for models that verify it (Claude).
type ReasoningText struct {
	Text      string `json:"text"`
	Signature string `json:"signature,omitempty"`
}

// InferenceConfig holds the parameters every Converse model understands.
type InferenceConfig struct {
	MaxTokens     *int     `json:"maxTokens,omitempty"`
	Temperature   *float64 `json:"temperature,omitempty"`
	TopP          *float64 `json:"topP,omitempty"`
	StopSequences []string `json:"stopSequences,omitempty"`
}

// ToolConfig declares tools and how the model may use them.
type ToolConfig struct {
	Tools      []Tool      `json:"tools"`
	ToolChoice *ToolChoice `json:"toolChoice,omitempty"`
}

// Tool is a union: a tool's spec, or a cache point after the tools
// before it.
type Tool struct {
	ToolSpec   *ToolSpec        `json:"toolSpec,omitempty"`
	CachePoint *CachePointBlock `json:"cachePoint,omitempty"`
}

// ToolSpec declares one function tool.
type ToolSpec struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	InputSchema InputSchema `json:"inputSchema"`
}

// InputSchema wraps the JSON Schema of a tool's input.
type InputSchema struct {
	JSON json.RawMessage `json:"json"`
}

// ToolChoice is a union: auto, any (some tool must be called) or a named tool.
type ToolChoice struct {
	Auto *struct{}     `json:"auto,omitempty"`
	Any  *struct{}     `json:"any,omitempty"`
	Tool *SpecificTool `json:"tool,omitempty"`
}

// SpecificTool names the tool a ToolChoice forces.
type SpecificTool struct {
	Name string `json:"name"`
}

// Stop reasons of ConverseResponse and MessageStopEvent.
const (
	StopEndTurn                    = "end_turn"
	StopToolUse                    = "tool_use"
	StopMaxTokens                  = "max_tokens"
	StopSequence                   = "stop_sequence"
	StopGuardrailIntervened        = "guardrail_intervened"
	StopContentFiltered            = "content_filtered"
	StopMalformedModelOutput       = "malformed_model_output"
	StopMalformedToolUse           = "malformed_tool_use"
	StopModelContextWindowExceeded = "model_context_window_exceeded"
)

// ConverseResponse is the 200 body of Converse.
type ConverseResponse struct {
	Output     ConverseOutput `json:"output"`
	StopReason string         `json:"stopReason"`
	Usage      *TokenUsage    `json:"usage,omitempty"`
	Metrics    *Metrics       `json:"metrics,omitempty"`
}

// ConverseOutput is a union; only message exists today.
type ConverseOutput struct {
	Message *Message `json:"message,omitempty"`
}

// TokenUsage counts tokens. InputTokens excludes the cache reads and writes,
// which are reported separately.
type TokenUsage struct {
	InputTokens           int `json:"inputTokens"`
	OutputTokens          int `json:"outputTokens"`
	TotalTokens           int `json:"totalTokens"`
	CacheReadInputTokens  int `json:"cacheReadInputTokens,omitempty"`
	CacheWriteInputTokens int `json:"cacheWriteInputTokens,omitempty"`
}

// Metrics reports latency.
type Metrics struct {
	LatencyMs int64 `json:"latencyMs"`
}

// Stream event types (the :event-type header of each event-stream message).
const (
	EventMessageStart      = "messageStart"
	EventContentBlockStart = "contentBlockStart"
	EventContentBlockDelta = "contentBlockDelta"
	EventContentBlockStop  = "contentBlockStop"
	EventMessageStop       = "messageStop"
	EventMetadata          = "metadata"
)

// MessageStartEvent opens the assistant message.
type MessageStartEvent struct {
	Role string `json:"role"`
}

// ContentBlockStartEvent opens a block that needs a header (tool use);
// text and reasoning blocks start with their first delta instead.
type ContentBlockStartEvent struct {
	ContentBlockIndex int               `json:"contentBlockIndex"`
	Start             ContentBlockStart `json:"start"`
}

// ContentBlockStart is a union; only toolUse matters for chat.
type ContentBlockStart struct {
	ToolUse *ToolUseBlockStart `json:"toolUse,omitempty"`
}

// ToolUseBlockStart names the tool call a block carries.
type ToolUseBlockStart struct {
	ToolUseID string `json:"toolUseId"`
	Name      string `json:"name"`
}

// ContentBlockDeltaEvent carries a fragment of a block.
type ContentBlockDeltaEvent struct {
	ContentBlockIndex int               `json:"contentBlockIndex"`
	Delta             ContentBlockDelta `json:"delta"`
}

// ContentBlockDelta is a union of text, tool input and reasoning fragments.
type ContentBlockDelta struct {
	Text             *string                `json:"text,omitempty"`
	ToolUse          *ToolUseBlockDelta     `json:"toolUse,omitempty"`
	ReasoningContent *ReasoningContentDelta `json:"reasoningContent,omitempty"`
}

// ToolUseBlockDelta is a fragment of the tool input's JSON text.
type ToolUseBlockDelta struct {
	Input string `json:"input"`
}

// ReasoningContentDelta is a union of reasoning text, its signature, or
// redacted reasoning.
type ReasoningContentDelta struct {
	Text            *string `json:"text,omitempty"`
	Signature       *string `json:"signature,omitempty"`
	RedactedContent string  `json:"redactedContent,omitempty"`
}

// ContentBlockStopEvent closes a block.
type ContentBlockStopEvent struct {
	ContentBlockIndex int `json:"contentBlockIndex"`
}

// MessageStopEvent ends the message with its stop reason.
type MessageStopEvent struct {
	StopReason                    string          `json:"stopReason"`
	AdditionalModelResponseFields json.RawMessage `json:"additionalModelResponseFields,omitempty"`
}

// MetadataEvent is the last event: usage and metrics.
type MetadataEvent struct {
	Usage   *TokenUsage `json:"usage,omitempty"`
	Metrics *Metrics    `json:"metrics,omitempty"`
}

// Exception types: the x-amzn-errortype header of an HTTP error (possibly
// followed by ":" and a namespace URL) and the :exception-type header of a
// stream exception (with a lower-case first letter there).
const (
	ValidationException         = "ValidationException"
	AccessDeniedException       = "AccessDeniedException"
	ResourceNotFoundException   = "ResourceNotFoundException"
	ThrottlingException         = "ThrottlingException"
	ServiceQuotaExceeded        = "ServiceQuotaExceededException"
	ServiceUnavailableException = "ServiceUnavailableException"
	ModelTimeoutException       = "ModelTimeoutException"
	ModelNotReadyException      = "ModelNotReadyException"
	ModelErrorException         = "ModelErrorException"
	ModelStreamErrorException   = "ModelStreamErrorException"
	InternalServerException     = "InternalServerException"
	UnrecognizedClientException = "UnrecognizedClientException"
	ExpiredTokenException       = "ExpiredTokenException"
	InvalidSignatureException   = "InvalidSignatureException"
	ConflictException           = "ConflictException"
)

// ErrorBody is the JSON body of an error or a stream exception. AWS uses
// "message", older front ends "Message".
type ErrorBody struct {
	Message      string `json:"message"`
	MessageUpper string `json:"Message"`
	// Type is set by some front ends instead of the x-amzn-errortype header.
	Type string `json:"__type"`
	// OriginalStatusCode and OriginalMessage come with ModelStreamErrorException.
	OriginalStatusCode int    `json:"originalStatusCode"`
	OriginalMessage    string `json:"originalMessage"`
}

// Text returns whichever message member is set.
func (e *ErrorBody) Text() string {
	if e.Message != "" {
		return e.Message
	}
	return e.MessageUpper
}
