// Package routetable is the contract between the control plane and the data
// plane: plain, immutable structs compiled from the custom resources and pushed
// to every data-plane replica. It deliberately imports nothing from Kubernetes
// so the data plane can be built, tested and run (file mode) without a cluster.
//
// A Table is never mutated after Finalize; the data plane swaps whole tables
// atomically, so in-flight requests finish on the table they started with.
package routetable

import (
	"time"
)

// ProviderType names the wire protocol a provider speaks.
type ProviderType string

// The provider types the data plane can translate to.
const (
	ProviderOpenAI           ProviderType = "OpenAI"
	ProviderAzureOpenAI      ProviderType = "AzureOpenAI"
	ProviderAnthropic        ProviderType = "Anthropic"
	ProviderGemini           ProviderType = "Gemini"
	ProviderBedrock          ProviderType = "Bedrock"
	ProviderOllama           ProviderType = "Ollama"
	ProviderOpenAICompatible ProviderType = "OpenAICompatible"
)

// Locality says where a provider runs; sovereignty policies use it.
type Locality string

// Localities. InCluster and OnPrem are "sovereign": data sent there stays
// inside the organisation.
const (
	LocalityInCluster Locality = "InCluster"
	LocalityOnPrem    Locality = "OnPrem"
	LocalityExternal  Locality = "External"
)

// Sovereign reports whether data sent to a provider of this locality stays
// inside the organisation.
func (l Locality) Sovereign() bool { return l == LocalityInCluster || l == LocalityOnPrem }

// Table is one compiled, versioned routing table.
type Table struct {
	// Version is a content hash of everything below; equal tables have equal
	// versions, so replicas can acknowledge exactly what they applied.
	Version string `json:"version"`
	// Generations maps "Kind/namespace/name" to the metadata.generation that
	// went into this table, so the controller can tell which generation a
	// replica's acknowledgement covers.
	Generations map[string]int64 `json:"generations,omitempty"`

	Providers  []Provider  `json:"providers,omitempty"`
	Routes     []Route     `json:"routes,omitempty"`
	Keys       []Key       `json:"keys,omitempty"`
	MCPServers []MCPServer `json:"mcpServers,omitempty"`

	// Indexes built by Finalize; not serialised.
	providerByID map[string]*Provider
	routeByModel map[string]*Route // "namespace/model"
	routeByID    map[string]*Route
	keyByHash    map[string]*Key
}

// Provider is a resolved LLMProvider: endpoint, credentials and prices.
type Provider struct {
	// ID is "namespace/name".
	ID        string       `json:"id"`
	Namespace string       `json:"namespace"`
	Name      string       `json:"name"`
	Type      ProviderType `json:"type"`
	// BaseURL is the scheme://host[:port][/path] prefix requests are sent to.
	// Always set by the compiler (provider defaults are filled in).
	BaseURL  string   `json:"baseURL"`
	Locality Locality `json:"locality"`
	Region   string   `json:"region,omitempty"`

	// APIKey is the provider credential (OpenAI, Azure, Anthropic, Gemini,
	// OpenAI-compatible bearer). Secret: never log it.
	APIKey string `json:"apiKey,omitempty"`
	// AWS credentials for Bedrock. Secret: never log them.
	AWSAccessKeyID     string `json:"awsAccessKeyID,omitempty"`
	AWSSecretAccessKey string `json:"awsSecretAccessKey,omitempty"`
	AWSSessionToken    string `json:"awsSessionToken,omitempty"`

	// APIVersion is Azure OpenAI's api-version query parameter, or
	// Anthropic's anthropic-version header when set.
	APIVersion string `json:"apiVersion,omitempty"`
	// Headers are extra static headers sent upstream.
	Headers map[string]string `json:"headers,omitempty"`

	// DefaultMaxTokens is injected when the client gave no max_tokens and the
	// provider requires one (Anthropic, Bedrock).
	DefaultMaxTokens int `json:"defaultMaxTokens,omitempty"`
	// Timeout bounds one upstream attempt; zero means the route decides.
	Timeout time.Duration `json:"timeout,omitempty"`
	// HealthCheckInterval is how often every replica actively probes the
	// provider (a cheap authenticated model listing); zero disables probing.
	HealthCheckInterval time.Duration `json:"healthCheckInterval,omitempty"`
	// Currency of the prices below (ISO 4217).
	Currency string `json:"currency,omitempty"`
	// Models lists the upstream models with their prices. A model not listed
	// may still be routed to; it is then priced from the built-in catalog or
	// at zero.
	Models []Model `json:"models,omitempty"`
}

// Model is an upstream model with prices per one million tokens, as exact
// decimal strings ("2.50").
type Model struct {
	Name            string `json:"name"`
	InputPrice      string `json:"inputPrice,omitempty"`
	OutputPrice     string `json:"outputPrice,omitempty"`
	CacheReadPrice  string `json:"cacheReadPrice,omitempty"`
	CacheWritePrice string `json:"cacheWritePrice,omitempty"`
	ReasoningPrice  string `json:"reasoningPrice,omitempty"`
	// MaxOutputTokens overrides the provider's DefaultMaxTokens for this model.
	MaxOutputTokens int  `json:"maxOutputTokens,omitempty"`
	Embeddings      bool `json:"embeddings,omitempty"`
}

// Balancing selects how a request picks among a route's weighted targets.
type Balancing string

// Balancing strategies.
const (
	BalancingWeighted     Balancing = "Weighted"
	BalancingLeastLatency Balancing = "LeastLatency"
	BalancingLeastBusy    Balancing = "LeastBusy"
)

// Route maps a public model name, in one namespace, to upstream targets.
type Route struct {
	ID        string `json:"id"` // "namespace/name"
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Model is the public model name clients send.
	Model     string    `json:"model"`
	Targets   []Target  `json:"targets"`
	Fallbacks []Target  `json:"fallbacks,omitempty"`
	Balancing Balancing `json:"balancing,omitempty"`
	Retry     Retry     `json:"retry"`
	Timeouts  Timeouts  `json:"timeouts"`
	// Rules are intent rules, evaluated in order; the first match replaces
	// Targets for that request (Fallbacks still apply).
	Rules      []IntentRule `json:"rules,omitempty"`
	DataPolicy *DataPolicy  `json:"dataPolicy,omitempty"`
}

// Target is one upstream: a provider and the model name it knows.
type Target struct {
	Provider string `json:"provider"` // Provider.ID
	Model    string `json:"model"`
	Weight   int    `json:"weight"`
}

// Retry is a route's retry policy for one target before moving on.
type Retry struct {
	// Attempts per target including the first (1 = no retry).
	Attempts       int           `json:"attempts"`
	InitialBackoff time.Duration `json:"initialBackoff"`
	MaxBackoff     time.Duration `json:"maxBackoff"`
}

// Timeouts bound a request.
type Timeouts struct {
	// Request bounds the whole request including all fallbacks.
	Request time.Duration `json:"request"`
	// FirstByte is the latency threshold: an attempt with no response
	// headers (or first stream event) by then is abandoned for the next target.
	FirstByte time.Duration `json:"firstByte,omitempty"`
}

// IntentRule routes requests with certain features to certain targets.
type IntentRule struct {
	Name    string      `json:"name"`
	Match   IntentMatch `json:"match"`
	Targets []Target    `json:"targets"`
}

// IntentMatch is a conjunction: every set field must hold.
type IntentMatch struct {
	MinPromptTokens *int              `json:"minPromptTokens,omitempty"`
	MaxPromptTokens *int              `json:"maxPromptTokens,omitempty"`
	HasTools        *bool             `json:"hasTools,omitempty"`
	HasImages       *bool             `json:"hasImages,omitempty"`
	HasCode         *bool             `json:"hasCode,omitempty"`
	Reasoning       *bool             `json:"reasoning,omitempty"`
	MinTurns        *int              `json:"minTurns,omitempty"`
	MaxTurns        *int              `json:"maxTurns,omitempty"`
	Headers         map[string]string `json:"headers,omitempty"`
	KeyLabels       map[string]string `json:"keyLabels,omitempty"`
}

// DataAction is what a data policy does when sensitive data is detected.
type DataAction string

// Data policy actions.
const (
	DataAllow         DataAction = "Allow"
	DataSovereignOnly DataAction = "SovereignOnly"
	DataRedact        DataAction = "Redact"
	DataRefuse        DataAction = "Refuse"
)

// DataPolicy is a sensitive-data policy of a route or a key.
type DataPolicy struct {
	Action DataAction `json:"action"`
	// Detectors names built-in detectors to run; empty means all.
	Detectors      []string        `json:"detectors,omitempty"`
	CustomPatterns []CustomPattern `json:"customPatterns,omitempty"`
}

// CustomPattern is a user-declared detector (RE2 syntax: linear time).
type CustomPattern struct {
	Name  string `json:"name"`
	Regex string `json:"regex"`
}

// Key is a virtual key. Only its hash is here, never the key itself.
type Key struct {
	ID        string `json:"id"` // "namespace/name"
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Hash is the lowercase hex SHA-256 of the secret key.
	Hash       string            `json:"hash"`
	Team       string            `json:"team,omitempty"`
	CostCenter string            `json:"costCenter,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	// AllowedRoutes holds Route IDs; empty means every route in the namespace.
	AllowedRoutes []string `json:"allowedRoutes,omitempty"`
	Budget        *Budget  `json:"budget,omitempty"`
	// TeamBudget is shared by every key of the same namespace and team.
	TeamBudget           *Budget     `json:"teamBudget,omitempty"`
	RequestsPerMinute    int         `json:"requestsPerMinute,omitempty"`
	TokensPerMinute      int64       `json:"tokensPerMinute,omitempty"`
	MaxConcurrentStreams int         `json:"maxConcurrentStreams,omitempty"`
	DataPolicy           *DataPolicy `json:"dataPolicy,omitempty"`
	ExpiresAt            *time.Time  `json:"expiresAt,omitempty"`
}

// BudgetPeriod is the window a budget resets on (UTC boundaries).
type BudgetPeriod string

// Budget periods.
const (
	PeriodDaily   BudgetPeriod = "Daily"
	PeriodWeekly  BudgetPeriod = "Weekly"
	PeriodMonthly BudgetPeriod = "Monthly"
	PeriodTotal   BudgetPeriod = "Total"
)

// Budget is a spending limit.
type Budget struct {
	Amount   string       `json:"amount"` // exact decimal
	Currency string       `json:"currency"`
	Period   BudgetPeriod `json:"period"`
}

// MCPTransport names the transport of an upstream MCP server.
type MCPTransport string

// MCP transports.
const (
	MCPStreamableHTTP MCPTransport = "StreamableHTTP"
	MCPSSE            MCPTransport = "SSE"
)

// MCPServer is a resolved MCPTool: an upstream MCP server and who may use it.
type MCPServer struct {
	ID        string       `json:"id"` // "namespace/name"
	Namespace string       `json:"namespace"`
	Name      string       `json:"name"`
	Endpoint  string       `json:"endpoint"`
	Transport MCPTransport `json:"transport"`
	// Prefix is prepended to tool names ("prefix__tool") to keep them unique.
	Prefix string `json:"prefix"`
	// AuthHeader and AuthValue are injected upstream. Secret: never log.
	AuthHeader string   `json:"authHeader,omitempty"`
	AuthValue  string   `json:"authValue,omitempty"`
	Allow      []string `json:"allow,omitempty"` // globs; empty = all
	Deny       []string `json:"deny,omitempty"`  // globs
	// Keys holds the IDs of the VirtualKeys that may use this server
	// (already resolved from names and label selectors).
	Keys      []string      `json:"keys"`
	AuditArgs bool          `json:"auditArguments,omitempty"`
	Timeout   time.Duration `json:"timeout,omitempty"`
}
