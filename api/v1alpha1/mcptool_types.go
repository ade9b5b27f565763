package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MCPTransport is the transport of an upstream MCP server.
// +kubebuilder:validation:Enum=StreamableHTTP;SSE
type MCPTransport string

// MCP transports.
const (
	MCPStreamableHTTP MCPTransport = "StreamableHTTP"
	MCPSSE            MCPTransport = "SSE"
)

// MCPAuth is how the gateway authenticates to the upstream server. Clients
// never see these credentials.
// +kubebuilder:validation:XValidation:rule="self.type != 'Header' || has(self.headerName)",message="headerName is required for type Header"
type MCPAuth struct {
	// Type Bearer sends "Authorization: Bearer <secret>"; Header sends
	// "<headerName>: <secret>".
	// +kubebuilder:validation:Enum=Bearer;Header
	Type string `json:"type"`
	// HeaderName for type Header.
	// +optional
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9-]+$`
	HeaderName string `json:"headerName,omitempty"`
	// SecretRef holds the credential.
	SecretRef SecretKeySelector `json:"secretRef"`
}

// ToolFilter selects which upstream tools are exposed, by glob.
type ToolFilter struct {
	// Allow globs (path.Match syntax); all tools when omitted.
	// +optional
	// +kubebuilder:validation:MaxItems=128
	Allow []string `json:"allow,omitempty"`
	// Deny globs win over Allow.
	// +optional
	// +kubebuilder:validation:MaxItems=128
	Deny []string `json:"deny,omitempty"`
}

// MCPAccess says which VirtualKeys (in this namespace) may use the tools.
// +kubebuilder:validation:XValidation:rule="has(self.keys) || has(self.keySelector)",message="access needs keys or keySelector"
type MCPAccess struct {
	// Keys names VirtualKeys.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	Keys []string `json:"keys,omitempty"`
	// KeySelector selects VirtualKeys by label.
	// +optional
	KeySelector *metav1.LabelSelector `json:"keySelector,omitempty"`
}

// MCPToolSpec registers an upstream MCP server.
// +kubebuilder:validation:XValidation:rule="self.allowLinkLocal || !self.endpoint.matches('^https?://(169\\\\.254\\\\.|\\\\[fe80:|\\\\[fd00:ec2::254\\\\]|metadata\\\\.google\\\\.internal|metadata(:|/|$))')",message="endpoint points at a link-local or cloud metadata address; set allowLinkLocal to allow it"
type MCPToolSpec struct {
	// Endpoint of the MCP server (Streamable HTTP endpoint, or the SSE
	// endpoint for the older transport).
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s/?#]+(/[^\s?#]*)?$`
	Endpoint string `json:"endpoint"`
	// Transport of the upstream server.
	// +kubebuilder:default=StreamableHTTP
	// +optional
	Transport MCPTransport `json:"transport,omitempty"`
	// AllowLinkLocal permits a link-local or metadata endpoint.
	// +optional
	AllowLinkLocal bool `json:"allowLinkLocal,omitempty"`
	// Prefix makes tool names unique across servers ("<prefix>__<tool>");
	// defaults to the object name.
	// +optional
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_-]{1,32}$`
	Prefix string `json:"prefix,omitempty"`
	// Auth injected by the gateway.
	// +optional
	Auth *MCPAuth `json:"auth,omitempty"`
	// Tools filters which tools are exposed.
	// +optional
	Tools *ToolFilter `json:"tools,omitempty"`
	// Access says which keys may see and call the tools.
	Access MCPAccess `json:"access"`
	// AuditArguments writes call arguments (with sensitive values redacted)
	// to the audit trail; off by default.
	// +optional
	AuditArguments bool `json:"auditArguments,omitempty"`
	// Timeout per tool call.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// DiscoveredTool is a tool the upstream server advertises and the filter exposes.
type DiscoveredTool struct {
	// Name as exposed by the gateway (prefixed).
	Name string `json:"name"`
	// Description from the server.
	// +optional
	Description string `json:"description,omitempty"`
}

// MCPToolStatus is the observed state of an MCPTool.
type MCPToolStatus struct {
	CommonStatus `json:",inline"`
	// Tools exposed through the gateway.
	// +optional
	// +listType=map
	// +listMapKey=name
	Tools []DiscoveredTool `json:"tools,omitempty"`
	// LastProbe is when the server was last contacted.
	// +optional
	LastProbe *metav1.Time `json:"lastProbe,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mcpt,categories=tollgate
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.spec.endpoint`
// +kubebuilder:printcolumn:name="Transport",type=string,JSONPath=`.spec.transport`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Healthy",type=string,JSONPath=`.status.conditions[?(@.type=="Healthy")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// MCPTool registers an MCP server behind the gateway's /mcp endpoint with
// per-key access control and credential injection.
type MCPTool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   MCPToolSpec   `json:"spec"`
	Status MCPToolStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// MCPToolList is a list of MCPTools.
type MCPToolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MCPTool `json:"items"`
}

func init() {
	SchemeBuilder.Register(&MCPTool{}, &MCPToolList{})
}
