package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProviderType is the wire protocol of a provider.
// +kubebuilder:validation:Enum=OpenAI;AzureOpenAI;Anthropic;Gemini;Bedrock;Ollama;OpenAICompatible
type ProviderType string

// Provider types.
const (
	ProviderOpenAI           ProviderType = "OpenAI"
	ProviderAzureOpenAI      ProviderType = "AzureOpenAI"
	ProviderAnthropic        ProviderType = "Anthropic"
	ProviderGemini           ProviderType = "Gemini"
	ProviderBedrock          ProviderType = "Bedrock"
	ProviderOllama           ProviderType = "Ollama"
	ProviderOpenAICompatible ProviderType = "OpenAICompatible"
)

// Locality says where a provider runs. InCluster and OnPrem are sovereign:
// data sent there stays inside the organisation.
// +kubebuilder:validation:Enum=InCluster;OnPrem;External
type Locality string

// Localities.
const (
	LocalityInCluster Locality = "InCluster"
	LocalityOnPrem    Locality = "OnPrem"
	LocalityExternal  Locality = "External"
)

// LLMProviderSpec describes one upstream LLM API: where it is, how to
// authenticate, where it runs and what its models cost.
// +kubebuilder:validation:XValidation:rule="!(self.type in ['AzureOpenAI', 'Ollama', 'OpenAICompatible']) || has(self.endpoint)",message="endpoint is required for AzureOpenAI, Ollama and OpenAICompatible providers"
// +kubebuilder:validation:XValidation:rule="self.type != 'AzureOpenAI' || (has(self.azure) && has(self.azure.apiVersion))",message="azure.apiVersion is required for AzureOpenAI providers"
// +kubebuilder:validation:XValidation:rule="self.type != 'Bedrock' || (has(self.bedrock) && has(self.bedrock.region))",message="bedrock.region is required for Bedrock providers"
// +kubebuilder:validation:XValidation:rule="!(self.type in ['OpenAI', 'AzureOpenAI', 'Anthropic', 'Gemini']) || has(self.credentials)",message="credentials are required for OpenAI, AzureOpenAI, Anthropic and Gemini providers"
// +kubebuilder:validation:XValidation:rule="self.type != 'Bedrock' || (has(self.credentials) && (has(self.credentials.apiKey) || (has(self.credentials.awsAccessKeyID) && has(self.credentials.awsSecretAccessKey))))",message="Bedrock needs credentials.apiKey or credentials.awsAccessKeyID and credentials.awsSecretAccessKey"
// +kubebuilder:validation:XValidation:rule="self.type == 'Bedrock' || !has(self.credentials) || has(self.credentials.apiKey)",message="credentials.apiKey is required (AWS keys are only for Bedrock)"
// +kubebuilder:validation:XValidation:rule="self.type == 'AzureOpenAI' || !has(self.azure)",message="azure is only valid for AzureOpenAI providers"
// +kubebuilder:validation:XValidation:rule="self.type == 'Bedrock' || !has(self.bedrock)",message="bedrock is only valid for Bedrock providers"
// +kubebuilder:validation:XValidation:rule="!has(self.endpoint) || self.allowLinkLocal || !self.endpoint.matches('^https?://(169\\\\.254\\\\.|\\\\[fe80:|\\\\[fd00:ec2::254\\\\]|metadata\\\\.google\\\\.internal|metadata(:|/|$))')",message="endpoint points at a link-local or cloud metadata address; set allowLinkLocal to allow it"
type LLMProviderSpec struct {
	// Type selects the API dialect the data plane translates to.
	Type ProviderType `json:"type"`
	// Endpoint is the base URL (scheme://host[:port][/path]). Defaults per
	// type: api.openai.com, api.anthropic.com,
	// generativelanguage.googleapis.com, bedrock-runtime.<region>.amazonaws.com.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s/?#]+(/[^\s?#]*)?$`
	Endpoint string `json:"endpoint,omitempty"`
	// Locality says whether data sent to this provider stays inside the
	// organisation (InCluster, OnPrem) or leaves it (External).
	// +kubebuilder:default=External
	// +optional
	Locality Locality `json:"locality,omitempty"`
	// AllowLinkLocal permits an endpoint on a link-local or cloud metadata
	// address, which is refused by default (SSRF guard).
	// +optional
	AllowLinkLocal bool `json:"allowLinkLocal,omitempty"`
	// Credentials reference Secrets in this namespace. Not needed for local
	// inference servers (Ollama, vLLM) that run without authentication.
	// +optional
	Credentials *ProviderCredentials `json:"credentials,omitempty"`
	// Azure holds Azure OpenAI settings.
	// +optional
	Azure *AzureSettings `json:"azure,omitempty"`
	// Bedrock holds AWS Bedrock settings.
	// +optional
	Bedrock *BedrockSettings `json:"bedrock,omitempty"`
	// Headers are extra static headers sent with every upstream request.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Headers map[string]string `json:"headers,omitempty"`
	// Defaults apply when a request leaves a parameter out.
	// +optional
	Defaults *ProviderDefaults `json:"defaults,omitempty"`
	// Currency of the model prices (ISO 4217).
	// +kubebuilder:default=USD
	// +kubebuilder:validation:Pattern=`^[A-Z]{3}$`
	// +optional
	Currency string `json:"currency,omitempty"`
	// Models this provider serves, with prices per one million tokens.
	// Prices declared here win over the built-in catalog.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=256
	Models []ModelSpec `json:"models,omitempty"`
	// HealthCheck configures active health probing of the provider.
	// +optional
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
}

// ProviderCredentials references the Secret keys holding credentials.
type ProviderCredentials struct {
	// APIKey is the provider API key (sent as the provider expects:
	// Authorization bearer, x-api-key, api-key or x-goog-api-key).
	// +optional
	APIKey *SecretKeySelector `json:"apiKey,omitempty"`
	// AWSAccessKeyID for Bedrock SigV4 signing.
	// +optional
	AWSAccessKeyID *SecretKeySelector `json:"awsAccessKeyID,omitempty"`
	// AWSSecretAccessKey for Bedrock SigV4 signing.
	// +optional
	AWSSecretAccessKey *SecretKeySelector `json:"awsSecretAccessKey,omitempty"`
	// AWSSessionToken for temporary Bedrock credentials.
	// +optional
	AWSSessionToken *SecretKeySelector `json:"awsSessionToken,omitempty"`
}

// AzureSettings are Azure OpenAI specifics. Route targets name the
// deployment as their model.
type AzureSettings struct {
	// APIVersion is the api-version query parameter, e.g. "2024-10-21".
	// +kubebuilder:validation:Pattern=`^[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?$`
	APIVersion string `json:"apiVersion"`
}

// BedrockSettings are AWS Bedrock specifics.
type BedrockSettings struct {
	// Region, e.g. "eu-central-1".
	// +kubebuilder:validation:Pattern=`^[a-z]{2}(-gov)?-[a-z]+-[0-9]$`
	Region string `json:"region"`
}

// ProviderDefaults fill in request parameters the client left out.
type ProviderDefaults struct {
	// MaxTokens is injected where the provider requires max_tokens
	// (Anthropic, Bedrock) and the request has none.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxTokens *int32 `json:"maxTokens,omitempty"`
	// Timeout bounds one upstream attempt.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// ModelSpec is one upstream model with its prices.
// +kubebuilder:validation:XValidation:rule="!has(self.cacheReadPrice) || has(self.inputPrice)",message="cacheReadPrice needs inputPrice"
type ModelSpec struct {
	// Name is the provider's model ID (or Azure deployment name).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`
	// InputPrice per one million prompt tokens.
	// +optional
	InputPrice Decimal `json:"inputPrice,omitempty"`
	// OutputPrice per one million completion tokens.
	// +optional
	OutputPrice Decimal `json:"outputPrice,omitempty"`
	// CacheReadPrice per one million cached prompt tokens read.
	// +optional
	CacheReadPrice Decimal `json:"cacheReadPrice,omitempty"`
	// CacheWritePrice per one million prompt tokens written to the cache.
	// +optional
	CacheWritePrice Decimal `json:"cacheWritePrice,omitempty"`
	// ReasoningPrice per one million reasoning tokens, when billed apart
	// from output.
	// +optional
	ReasoningPrice Decimal `json:"reasoningPrice,omitempty"`
	// MaxOutputTokens is the default max_tokens for this model.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxOutputTokens *int32 `json:"maxOutputTokens,omitempty"`
	// Embeddings marks an embeddings model.
	// +optional
	Embeddings bool `json:"embeddings,omitempty"`
}

// HealthCheck configures active probing.
type HealthCheck struct {
	// Interval between probes; 0 disables active probing (passive outlier
	// detection still applies).
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`
}

// TargetHealth is the health of one provider as seen by the data plane.
type TargetHealth struct {
	// Model is the upstream model of the target.
	Model string `json:"model"`
	// Ejected is true while the target is in cool-down after failures.
	Ejected bool `json:"ejected"`
	// ErrorRate is the recent error ratio (0..1) as a decimal string.
	// +optional
	ErrorRate string `json:"errorRate,omitempty"`
	// LatencyMillis is the recent EWMA latency to first byte.
	// +optional
	LatencyMillis int64 `json:"latencyMillis,omitempty"`
	// Replicas is the number of replicas reporting.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
}

// LLMProviderStatus is the observed state of an LLMProvider.
type LLMProviderStatus struct {
	CommonStatus `json:",inline"`
	// Targets reports live health per upstream model, aggregated from the
	// data-plane replicas.
	// +optional
	// +listType=map
	// +listMapKey=model
	Targets []TargetHealth `json:"targets,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=llmp;provider,categories=tollgate
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Locality",type=string,JSONPath=`.spec.locality`
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.spec.endpoint`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Healthy",type=string,JSONPath=`.status.conditions[?(@.type=="Healthy")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// LLMProvider is an upstream LLM API (OpenAI, Azure OpenAI, Anthropic,
// Gemini, Bedrock, Ollama, vLLM or any OpenAI-compatible server).
type LLMProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   LLMProviderSpec   `json:"spec"`
	Status LLMProviderStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// LLMProviderList is a list of LLMProviders.
type LLMProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LLMProvider `json:"items"`
}

func init() {
	SchemeBuilder.Register(&LLMProvider{}, &LLMProviderList{})
}
