package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RouteTarget is one upstream: a provider in this namespace and the model
// name it knows.
type RouteTarget struct {
	// Provider is the name of an LLMProvider in the Route's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Provider string `json:"provider"`
	// Model is the upstream model ID (Azure: the deployment name).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Model string `json:"model"`
	// Weight for balancing among targets; 0 keeps the target as standby.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Weight *int32 `json:"weight,omitempty"`
}

// Balancing strategy among a route's weighted targets.
// +kubebuilder:validation:Enum=Weighted;LeastLatency;LeastBusy
type Balancing string

// Balancing strategies.
const (
	BalancingWeighted     Balancing = "Weighted"
	BalancingLeastLatency Balancing = "LeastLatency"
	BalancingLeastBusy    Balancing = "LeastBusy"
)

// RetryPolicy bounds retries on one target before failing over.
// +kubebuilder:validation:XValidation:rule="!has(self.initialBackoff) || !has(self.maxBackoff) || duration(self.initialBackoff) <= duration(self.maxBackoff)",message="initialBackoff must not exceed maxBackoff"
type RetryPolicy struct {
	// Attempts per target including the first; 1 disables retries.
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	// +optional
	Attempts *int32 `json:"attempts,omitempty"`
	// InitialBackoff before the first retry; doubles each retry, with jitter.
	// +optional
	InitialBackoff *metav1.Duration `json:"initialBackoff,omitempty"`
	// MaxBackoff caps the backoff (a Retry-After from upstream is honoured
	// up to the request deadline).
	// +optional
	MaxBackoff *metav1.Duration `json:"maxBackoff,omitempty"`
}

// Timeouts bound a request.
// +kubebuilder:validation:XValidation:rule="!has(self.request) || !has(self.firstByte) || duration(self.firstByte) < duration(self.request)",message="firstByte must be shorter than request"
type Timeouts struct {
	// Request bounds the whole request, all retries and fallbacks included.
	// +optional
	Request *metav1.Duration `json:"request,omitempty"`
	// FirstByte is the latency threshold: an attempt without a first byte
	// by then is abandoned for the next target.
	// +optional
	FirstByte *metav1.Duration `json:"firstByte,omitempty"`
}

// IntentMatch selects requests by features. All set fields must hold.
// +kubebuilder:validation:XValidation:rule="!has(self.minPromptTokens) || !has(self.maxPromptTokens) || self.minPromptTokens <= self.maxPromptTokens",message="minPromptTokens must not exceed maxPromptTokens"
// +kubebuilder:validation:XValidation:rule="!has(self.minTurns) || !has(self.maxTurns) || self.minTurns <= self.maxTurns",message="minTurns must not exceed maxTurns"
// +kubebuilder:validation:MinProperties=1
type IntentMatch struct {
	// MinPromptTokens matches requests with at least this many estimated prompt tokens.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MinPromptTokens *int32 `json:"minPromptTokens,omitempty"`
	// MaxPromptTokens matches requests with at most this many estimated prompt tokens.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxPromptTokens *int32 `json:"maxPromptTokens,omitempty"`
	// HasTools matches requests that declare tools (or not).
	// +optional
	HasTools *bool `json:"hasTools,omitempty"`
	// HasImages matches requests with image content (or not).
	// +optional
	HasImages *bool `json:"hasImages,omitempty"`
	// HasCode matches requests whose text contains code.
	// +optional
	HasCode *bool `json:"hasCode,omitempty"`
	// Reasoning matches requests that ask for reasoning (reasoning_effort,
	// thinking).
	// +optional
	Reasoning *bool `json:"reasoning,omitempty"`
	// MinTurns matches conversations with at least this many messages.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MinTurns *int32 `json:"minTurns,omitempty"`
	// MaxTurns matches conversations with at most this many messages.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxTurns *int32 `json:"maxTurns,omitempty"`
	// Headers that must be present with these exact values.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Headers map[string]string `json:"headers,omitempty"`
	// KeyLabels that the calling VirtualKey must carry.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	KeyLabels map[string]string `json:"keyLabels,omitempty"`
}

// IntentRule sends matching requests to its own targets.
type IntentRule struct {
	// Name shows in the x-tollgate-rule response header and in metrics.
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`
	Name string `json:"name"`
	// Match is the request features this rule selects.
	Match IntentMatch `json:"match"`
	// Targets replace the route's targets for matching requests.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Targets []RouteTarget `json:"targets"`
}

// RouteSpec maps a public model name to upstream targets.
// +kubebuilder:validation:XValidation:rule="self.targets.exists(t, !has(t.weight) || t.weight > 0)",message="at least one target needs a weight above 0"
type RouteSpec struct {
	// Model is the public model name clients send in "model". Unique per namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._:/@-]*$`
	Model string `json:"model"`
	// Targets share traffic by weight and live health.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Targets []RouteTarget `json:"targets"`
	// Fallbacks are tried in order when every target failed.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Fallbacks []RouteTarget `json:"fallbacks,omitempty"`
	// Balancing picks among targets.
	// +kubebuilder:default=LeastLatency
	// +optional
	Balancing Balancing `json:"balancing,omitempty"`
	// Retry policy per target.
	// +optional
	Retry *RetryPolicy `json:"retry,omitempty"`
	// Timeouts for the request and for the first byte.
	// +optional
	Timeouts *Timeouts `json:"timeouts,omitempty"`
	// Rules route by intent; the first matching rule wins.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Rules []IntentRule `json:"rules,omitempty"`
	// DataPolicy for sensitive data in requests on this route.
	// +optional
	DataPolicy *DataPolicy `json:"dataPolicy,omitempty"`
}

// RouteStatus is the observed state of a Route.
type RouteStatus struct {
	CommonStatus `json:",inline"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=llmroute,categories=tollgate
// +kubebuilder:printcolumn:name="Model",type=string,JSONPath=`.spec.model`
// +kubebuilder:printcolumn:name="Targets",type=integer,JSONPath=`.spec.targets[*].provider`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// Route publishes a model name and says which providers serve it, with
// fallbacks, retries and intent rules.
type Route struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RouteSpec   `json:"spec"`
	Status RouteStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// RouteList is a list of Routes.
type RouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Route `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Route{}, &RouteList{})
}
