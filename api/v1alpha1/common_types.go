// Package v1alpha1 contains the Tollgate API: LLMProvider, Route, VirtualKey
// and MCPTool in the gateway.tollgate.dev group.
// +kubebuilder:object:generate=true
// +groupName=gateway.tollgate.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of every Tollgate kind.
	GroupVersion = schema.GroupVersion{Group: "gateway.tollgate.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the Tollgate kinds with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the Tollgate kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Condition types shared by all kinds. They follow Gateway API conventions so
// Argo CD and humans read them the same way.
const (
	// ConditionAccepted: the spec is valid and was compiled into the routing table.
	ConditionAccepted = "Accepted"
	// ConditionResolvedRefs: every reference (Secrets, providers, routes, keys) resolves.
	ConditionResolvedRefs = "ResolvedRefs"
	// ConditionProgrammed: a routing table containing this generation has been
	// acknowledged by every ready data-plane replica.
	ConditionProgrammed = "Programmed"
	// ConditionReady summarises the others: the object is in effect.
	ConditionReady = "Ready"
	// ConditionHealthy (LLMProvider, MCPTool): the upstream answers.
	ConditionHealthy = "Healthy"
)

// Condition reasons.
const (
	ReasonAccepted         = "Accepted"
	ReasonInvalid          = "Invalid"
	ReasonConflict         = "Conflict"
	ReasonUnsupported      = "Unsupported"
	ReasonResolvedRefs     = "ResolvedRefs"
	ReasonSecretNotFound   = "SecretNotFound"
	ReasonSecretKeyMissing = "SecretKeyMissing"
	ReasonProviderNotFound = "ProviderNotFound"
	ReasonRouteNotFound    = "RouteNotFound"
	ReasonProgrammed       = "Programmed"
	ReasonPending          = "Pending"
	ReasonNoReplicas       = "NoReplicas"
	ReasonReady            = "Ready"
	ReasonNotReady         = "NotReady"
	ReasonHealthy          = "Healthy"
	ReasonUnhealthy        = "Unhealthy"
	ReasonBudgetExceeded   = "BudgetExceeded"
)

// SecretKeySelector selects one key of a Secret in the object's namespace.
type SecretKeySelector struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key within the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// Decimal is an exact decimal amount written as a string, e.g. "2.50".
// +kubebuilder:validation:Pattern=`^(0|[1-9][0-9]{0,11})(\.[0-9]{1,12})?$`
// +kubebuilder:validation:MaxLength=32
type Decimal string

// DataAction is what to do with a request that carries sensitive data.
// +kubebuilder:validation:Enum=Allow;SovereignOnly;Redact;Refuse
type DataAction string

// Data policy actions.
const (
	// DataAllow only records what was detected.
	DataAllow DataAction = "Allow"
	// DataSovereignOnly routes the request only to InCluster/OnPrem providers.
	DataSovereignOnly DataAction = "SovereignOnly"
	// DataRedact replaces detected values with placeholders before sending.
	DataRedact DataAction = "Redact"
	// DataRefuse rejects the request.
	DataRefuse DataAction = "Refuse"
)

// Detector names a built-in sensitive-data detector.
// +kubebuilder:validation:Enum=Email;Phone;PaymentCard;IBAN;USSSN;IPAddress;AWSAccessKey;PrivateKey;BearerToken;JWT;APIKey
type Detector string

// DataPolicy decides what happens to requests with sensitive data
// (personal data, credentials, secrets).
// +kubebuilder:validation:XValidation:rule="self.action == 'Allow' || !has(self.detectors) || size(self.detectors) > 0 || (has(self.customPatterns) && size(self.customPatterns) > 0)",message="detectors must not be an empty list"
type DataPolicy struct {
	// Action taken when anything is detected.
	// +kubebuilder:default=Allow
	Action DataAction `json:"action"`
	// Detectors to run; all built-in detectors when omitted.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	Detectors []Detector `json:"detectors,omitempty"`
	// CustomPatterns are extra detectors: RE2 regular expressions (linear
	// time, no backtracking).
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	CustomPatterns []CustomPattern `json:"customPatterns,omitempty"`
}

// CustomPattern is a named regular expression.
type CustomPattern struct {
	// Name appears in headers, metrics and the audit log instead of the value.
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_-]{0,62}$`
	Name string `json:"name"`
	// Regex in RE2 syntax.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Regex string `json:"regex"`
}

// ReplicaStatus says how many data-plane replicas run a routing table that
// contains this object's current generation.
type ReplicaStatus struct {
	// TableVersion is the content hash of the newest routing table that
	// contains this generation.
	// +optional
	TableVersion string `json:"tableVersion,omitempty"`
	// Acknowledged is the number of ready replicas that applied it.
	Acknowledged int32 `json:"acknowledged"`
	// Total is the number of ready replicas connected to the controller.
	Total int32 `json:"total"`
}

// CommonStatus is embedded in every kind's status.
type CommonStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Accepted, ResolvedRefs, Programmed, Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
	// Replicas reports data-plane programming progress.
	// +optional
	Replicas *ReplicaStatus `json:"replicas,omitempty"`
}
