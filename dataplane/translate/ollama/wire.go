package ollama

import json "github.com/go-json-experiment/json/v1"

// Ollama's native API wire types (/api/chat, /api/embed). They live here,
// not in schema/, because nothing but this translator speaks them.

// ChatRequest is a POST /api/chat body.
type ChatRequest struct {
	Model    string          `json:"model"`
	Messages []Message       `json:"messages"`
	Tools    []Tool          `json:"tools,omitempty"`
	Format   json.RawMessage `json:"format,omitempty"`
	Options  *Options        `json:"options,omitempty"`
	// Stream is always sent: Ollama streams when it is absent.
	Stream bool `json:"stream"`
	// Think is true/false, or "low" | "medium" | "high" for models with
	// levels (gpt-oss); absent leaves the model's default.
	Think json.RawMessage `json:"think,omitempty"`
}

// Message is one chat message. Images are raw base64, no data: prefix.
type Message struct {
	Role      string     `json:"role"`
	Content   string     `json:"content"`
	Thinking  string     `json:"thinking,omitempty"`
	Images    []string   `json:"images,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolName names the function a role "tool" message answers.
	ToolName string `json:"tool_name,omitempty"`
}

// ToolCall is a function call. Ollama (before 0.12) gives calls no id;
// newer versions may send one, which is kept.
type ToolCall struct {
	ID       string           `json:"id,omitempty"`
	Function ToolCallFunction `json:"function"`
}

// ToolCallFunction carries arguments as a JSON object, not a string.
type ToolCallFunction struct {
	Index     *int            `json:"index,omitempty"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

// Tool is a tool definition (same shape as OpenAI's).
type Tool struct {
	Type     string       `json:"type"`
	Function ToolFunction `json:"function"`
}

// ToolFunction declares a function.
type ToolFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters"`
}

// Options are the model parameters Tollgate maps from OpenAI's.
type Options struct {
	Temperature      *float64 `json:"temperature,omitempty"`
	TopP             *float64 `json:"top_p,omitempty"`
	NumPredict       *int     `json:"num_predict,omitempty"`
	Stop             []string `json:"stop,omitempty"`
	Seed             *int64   `json:"seed,omitempty"`
	PresencePenalty  *float64 `json:"presence_penalty,omitempty"`
	FrequencyPenalty *float64 `json:"frequency_penalty,omitempty"`
}

// ChatResponse is a non-streaming answer and also one NDJSON stream line.
type ChatResponse struct {
	Model           string          `json:"model"`
	CreatedAt       string          `json:"created_at"`
	Message         ResponseMessage `json:"message"`
	Done            bool            `json:"done"`
	DoneReason      string          `json:"done_reason"`
	PromptEvalCount int             `json:"prompt_eval_count"`
	EvalCount       int             `json:"eval_count"`
	// Error is set on error bodies and in-stream error lines.
	Error json.RawMessage `json:"error"`
}

// ResponseMessage is the assistant message (or its increment when streaming).
type ResponseMessage struct {
	Role      string     `json:"role"`
	Content   string     `json:"content"`
	Thinking  string     `json:"thinking"`
	ToolCalls []ToolCall `json:"tool_calls"`
}

// EmbedRequest is a POST /api/embed body.
type EmbedRequest struct {
	Model      string   `json:"model"`
	Input      []string `json:"input"`
	Dimensions *int     `json:"dimensions,omitempty"`
}

// EmbedResponse is the /api/embed answer.
type EmbedResponse struct {
	Model           string            `json:"model"`
	Embeddings      []json.RawMessage `json:"embeddings"`
	PromptEvalCount int               `json:"prompt_eval_count"`
	Error           json.RawMessage   `json:"error"`
}
