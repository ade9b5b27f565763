// Package gemini holds the wire types of Google's Generative Language API
// (v1beta: models.generateContent, models.streamGenerateContent and
// models.batchEmbedContents). Only the fields Tollgate reads or writes are
// declared; field names follow the API's JSON (lowerCamel) spelling.
package gemini

import json "github.com/go-json-experiment/json/v1"

// Roles of a Content. Gemini has no system or tool role: system text goes
// to GenerateContentRequest.SystemInstruction and function responses are
// "user" content.
const (
	RoleUser  = "user"
	RoleModel = "model"
)

// GenerateContentRequest is the body of :generateContent and
// :streamGenerateContent.
type GenerateContentRequest struct {
	Contents          []Content         `json:"contents"`
	SystemInstruction *Content          `json:"systemInstruction,omitempty"`
	Tools             []Tool            `json:"tools,omitempty"`
	ToolConfig        *ToolConfig       `json:"toolConfig,omitempty"`
	GenerationConfig  *GenerationConfig `json:"generationConfig,omitempty"`
}

// Content is one turn (or the system instruction): a role and its parts.
type Content struct {
	Role  string `json:"role,omitempty"`
	Parts []Part `json:"parts"`
}

// Part is one element of a Content; exactly one of Text, InlineData,
// FunctionCall, FunctionResponse or FileData is set.
type Part struct {
	Text             string            `json:"text,omitempty"`
	InlineData       *Blob             `json:"inlineData,omitempty"`
	FunctionCall     *FunctionCall     `json:"functionCall,omitempty"`
	FunctionResponse *FunctionResponse `json:"functionResponse,omitempty"`
	FileData         *FileData         `json:"fileData,omitempty"`
	// Thought marks a thought-summary part (reasoning), never answer text.
	Thought bool `json:"thought,omitempty"`
	// ThoughtSignature is an opaque signature over the model's reasoning;
	// Gemini 3 requires it back on the first function call of each step.
	ThoughtSignature string `json:"thoughtSignature,omitempty"`
}

// Blob is inline media: a MIME type and base64 bytes.
type Blob struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"`
}

// FileData references media by URI (Files API or Cloud Storage).
type FileData struct {
	MimeType string `json:"mimeType,omitempty"`
	FileURI  string `json:"fileUri"`
}

// FunctionCall is a model's request to call a function. Args is a JSON
// object. ID is set by some API versions only.
type FunctionCall struct {
	ID   string          `json:"id,omitempty"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

// FunctionResponse is the result of a function call sent back to the
// model. Response must be a JSON object.
type FunctionResponse struct {
	ID       string          `json:"id,omitempty"`
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response"`
}

// Tool is a set of function declarations.
type Tool struct {
	FunctionDeclarations []FunctionDeclaration `json:"functionDeclarations,omitempty"`
}

// FunctionDeclaration declares a callable function; Parameters is a
// Gemini Schema (an OpenAPI 3.0 subset), not full JSON Schema.
type FunctionDeclaration struct {
	Name        string  `json:"name"`
	Description string  `json:"description,omitempty"`
	Parameters  *Schema `json:"parameters,omitempty"`
}

// Schema is Gemini's supported subset of the OpenAPI 3.0 schema object.
type Schema struct {
	Type             string             `json:"type,omitempty"`
	Format           string             `json:"format,omitempty"`
	Title            string             `json:"title,omitempty"`
	Description      string             `json:"description,omitempty"`
	Nullable         bool               `json:"nullable,omitempty"`
	Enum             []string           `json:"enum,omitempty"`
	Items            *Schema            `json:"items,omitempty"`
	MinItems         *int64             `json:"minItems,omitempty"`
	MaxItems         *int64             `json:"maxItems,omitempty"`
	Properties       map[string]*Schema `json:"properties,omitempty"`
	PropertyOrdering []string           `json:"propertyOrdering,omitempty"`
	Required         []string           `json:"required,omitempty"`
	MinProperties    *int64             `json:"minProperties,omitempty"`
	MaxProperties    *int64             `json:"maxProperties,omitempty"`
	MinLength        *int64             `json:"minLength,omitempty"`
	MaxLength        *int64             `json:"maxLength,omitempty"`
	Pattern          string             `json:"pattern,omitempty"`
	Minimum          *float64           `json:"minimum,omitempty"`
	Maximum          *float64           `json:"maximum,omitempty"`
	AnyOf            []*Schema          `json:"anyOf,omitempty"`
	Default          json.RawMessage    `json:"default,omitempty"`
	Example          json.RawMessage    `json:"example,omitempty"`
}

// Schema types (the API's Type enum).
const (
	TypeString  = "STRING"
	TypeNumber  = "NUMBER"
	TypeInteger = "INTEGER"
	TypeBoolean = "BOOLEAN"
	TypeArray   = "ARRAY"
	TypeObject  = "OBJECT"
)

// ToolConfig configures how the model may use the declared tools.
type ToolConfig struct {
	FunctionCallingConfig *FunctionCallingConfig `json:"functionCallingConfig,omitempty"`
}

// FunctionCallingConfig is the function-calling mode; AllowedFunctionNames
// is only valid with mode ANY.
type FunctionCallingConfig struct {
	Mode                 string   `json:"mode"`
	AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
}

// Function calling modes.
const (
	ModeAuto = "AUTO"
	ModeAny  = "ANY"
	ModeNone = "NONE"
)

// GenerationConfig holds sampling and output options.
type GenerationConfig struct {
	StopSequences    []string        `json:"stopSequences,omitempty"`
	ResponseMimeType string          `json:"responseMimeType,omitempty"`
	ResponseSchema   *Schema         `json:"responseSchema,omitempty"`
	CandidateCount   *int            `json:"candidateCount,omitempty"`
	MaxOutputTokens  *int            `json:"maxOutputTokens,omitempty"`
	Temperature      *float64        `json:"temperature,omitempty"`
	TopP             *float64        `json:"topP,omitempty"`
	Seed             *int64          `json:"seed,omitempty"`
	PresencePenalty  *float64        `json:"presencePenalty,omitempty"`
	FrequencyPenalty *float64        `json:"frequencyPenalty,omitempty"`
	ResponseLogprobs *bool           `json:"responseLogprobs,omitempty"`
	Logprobs         *int            `json:"logprobs,omitempty"`
	ThinkingConfig   *ThinkingConfig `json:"thinkingConfig,omitempty"`
}

// ThinkingConfig controls thinking models: a token budget (0 disables
// thinking, -1 lets the model decide) and whether thought summaries are
// returned as thought parts.
type ThinkingConfig struct {
	IncludeThoughts bool `json:"includeThoughts,omitempty"`
	ThinkingBudget  *int `json:"thinkingBudget,omitempty"`
}

// GenerateContentResponse is a whole answer, or one SSE event of a stream.
// Error is only ever set on an error event inside a stream.
type GenerateContentResponse struct {
	Candidates     []Candidate     `json:"candidates,omitempty"`
	PromptFeedback *PromptFeedback `json:"promptFeedback,omitempty"`
	UsageMetadata  *UsageMetadata  `json:"usageMetadata,omitempty"`
	ModelVersion   string          `json:"modelVersion,omitempty"`
	ResponseID     string          `json:"responseId,omitempty"`
	Error          *Status         `json:"error,omitempty"`
}

// Candidate is one generated answer. Content is absent when the candidate
// was blocked before producing anything.
type Candidate struct {
	Content       *Content `json:"content,omitempty"`
	FinishReason  string   `json:"finishReason,omitempty"`
	FinishMessage string   `json:"finishMessage,omitempty"`
	Index         int      `json:"index,omitempty"`
}

// Finish reasons (the API's FinishReason enum).
const (
	FinishStop                  = "STOP"
	FinishMaxTokens             = "MAX_TOKENS"
	FinishSafety                = "SAFETY"
	FinishRecitation            = "RECITATION"
	FinishLanguage              = "LANGUAGE"
	FinishOther                 = "OTHER"
	FinishBlocklist             = "BLOCKLIST"
	FinishProhibitedContent     = "PROHIBITED_CONTENT"
	FinishSPII                  = "SPII"
	FinishMalformedFunctionCall = "MALFORMED_FUNCTION_CALL"
	FinishImageSafety           = "IMAGE_SAFETY"
)

// PromptFeedback reports why a prompt was blocked (BlockReason set, no
// candidates).
type PromptFeedback struct {
	BlockReason string `json:"blockReason,omitempty"`
}

// UsageMetadata is token usage. CandidatesTokenCount excludes thoughts;
// PromptTokenCount includes cached content.
type UsageMetadata struct {
	PromptTokenCount        int `json:"promptTokenCount,omitempty"`
	CandidatesTokenCount    int `json:"candidatesTokenCount,omitempty"`
	CachedContentTokenCount int `json:"cachedContentTokenCount,omitempty"`
	ThoughtsTokenCount      int `json:"thoughtsTokenCount,omitempty"`
	ToolUsePromptTokenCount int `json:"toolUsePromptTokenCount,omitempty"`
	TotalTokenCount         int `json:"totalTokenCount,omitempty"`
}

// ErrorResponse is Google's error envelope.
type ErrorResponse struct {
	Error *Status `json:"error"`
}

// Status is a google.rpc.Status as JSON: HTTP code, message, canonical
// status name (RESOURCE_EXHAUSTED, ...) and typed details.
type Status struct {
	Code    int               `json:"code"`
	Message string            `json:"message"`
	Status  string            `json:"status"`
	Details []json.RawMessage `json:"details,omitempty"`
}

// RetryInfo is the google.rpc.RetryInfo detail; RetryDelay is a protobuf
// Duration in JSON form ("37s", "1.5s").
type RetryInfo struct {
	Type       string `json:"@type"`
	RetryDelay string `json:"retryDelay"`
}

// RetryInfoType is the @type of a RetryInfo detail.
const RetryInfoType = "type.googleapis.com/google.rpc.RetryInfo"

// BatchEmbedContentsRequest is the body of :batchEmbedContents.
type BatchEmbedContentsRequest struct {
	Requests []EmbedContentRequest `json:"requests"`
}

// EmbedContentRequest embeds one content. Model is "models/{model}" and
// must equal the model in the URL.
type EmbedContentRequest struct {
	Model                string  `json:"model"`
	Content              Content `json:"content"`
	OutputDimensionality *int    `json:"outputDimensionality,omitempty"`
}

// BatchEmbedContentsResponse holds one embedding per request, in order.
type BatchEmbedContentsResponse struct {
	Embeddings []ContentEmbedding `json:"embeddings"`
}

// ContentEmbedding is one vector.
type ContentEmbedding struct {
	Values []float64 `json:"values"`
}
