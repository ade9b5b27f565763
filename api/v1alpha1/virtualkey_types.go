package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BudgetPeriod is the window after which spend resets (UTC boundaries;
// weeks start on Monday).
// +kubebuilder:validation:Enum=Daily;Weekly;Monthly;Total
type BudgetPeriod string

// Budget periods.
const (
	PeriodDaily   BudgetPeriod = "Daily"
	PeriodWeekly  BudgetPeriod = "Weekly"
	PeriodMonthly BudgetPeriod = "Monthly"
	PeriodTotal   BudgetPeriod = "Total"
)

// Budget is a spending limit per period.
type Budget struct {
	// Amount is the limit, an exact decimal.
	// +kubebuilder:validation:XValidation:rule="self != '0'",message="amount must be greater than zero"
	Amount Decimal `json:"amount"`
	// Currency (ISO 4217); must match the providers' price currency.
	// +kubebuilder:default=USD
	// +kubebuilder:validation:Pattern=`^[A-Z]{3}$`
	// +optional
	Currency string `json:"currency,omitempty"`
	// Period after which spend resets.
	// +kubebuilder:default=Monthly
	// +optional
	Period BudgetPeriod `json:"period,omitempty"`
}

// RateLimit limits a key's throughput.
// +kubebuilder:validation:MinProperties=1
type RateLimit struct {
	// RequestsPerMinute across all replicas (each replica enforces its share).
	// +optional
	// +kubebuilder:validation:Minimum=1
	RequestsPerMinute *int32 `json:"requestsPerMinute,omitempty"`
	// TokensPerMinute (prompt + completion).
	// +optional
	// +kubebuilder:validation:Minimum=1
	TokensPerMinute *int64 `json:"tokensPerMinute,omitempty"`
	// MaxConcurrentStreams open at once per replica.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxConcurrentStreams *int32 `json:"maxConcurrentStreams,omitempty"`
}

// VirtualKeySpec describes a key handed to one team, project or cost centre.
// +kubebuilder:validation:XValidation:rule="!has(self.teamBudget) || has(self.team)",message="teamBudget requires team"
// +kubebuilder:validation:XValidation:rule="!has(self.budget) || !has(self.teamBudget) || !has(self.budget.currency) || !has(self.teamBudget.currency) || self.budget.currency == self.teamBudget.currency",message="budget and teamBudget must use the same currency"
type VirtualKeySpec struct {
	// Team owning the key; keys of one team share the team budget.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Team string `json:"team,omitempty"`
	// CostCenter for chargeback reports.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	CostCenter string `json:"costCenter,omitempty"`
	// Description for humans.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Description string `json:"description,omitempty"`
	// AllowedRoutes names Routes in this namespace the key may use; all
	// Routes in the namespace when omitted.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	AllowedRoutes []string `json:"allowedRoutes,omitempty"`
	// Budget for this key alone.
	// +optional
	Budget *Budget `json:"budget,omitempty"`
	// TeamBudget is shared by all keys with the same team in this
	// namespace. Keys of one team that declare it must agree.
	// +optional
	TeamBudget *Budget `json:"teamBudget,omitempty"`
	// RateLimit for this key.
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// DataPolicy applies on top of the Route's (the stricter action wins).
	// +optional
	DataPolicy *DataPolicy `json:"dataPolicy,omitempty"`
	// Disabled keys are refused without deleting their history.
	// +optional
	Disabled bool `json:"disabled,omitempty"`
	// ExpiresAt refuses the key after this time.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
}

// UsageStatus is usage in the current budget period.
type UsageStatus struct {
	// PeriodStart is when the current period began.
	// +optional
	PeriodStart *metav1.Time `json:"periodStart,omitempty"`
	// Spend in the current period, exact decimal.
	Spend string `json:"spend"`
	// Currency of Spend.
	// +optional
	Currency string `json:"currency,omitempty"`
	// Budget amount for display.
	// +optional
	Budget string `json:"budget,omitempty"`
	// PercentUsed of the budget, rounded down to two decimals.
	// +optional
	PercentUsed string `json:"percentUsed,omitempty"`
	// TeamSpend is the team's spend in its current period.
	// +optional
	TeamSpend string `json:"teamSpend,omitempty"`
	// Requests served in the period.
	Requests int64 `json:"requests"`
	// PromptTokens includes cached and cache-write tokens.
	PromptTokens int64 `json:"promptTokens"`
	// CompletionTokens includes reasoning tokens.
	CompletionTokens int64 `json:"completionTokens"`
	// CacheReadTokens of the prompt tokens.
	CacheReadTokens int64 `json:"cacheReadTokens"`
	// CacheWriteTokens of the prompt tokens.
	CacheWriteTokens int64 `json:"cacheWriteTokens"`
	// ReasoningTokens of the completion tokens.
	ReasoningTokens int64 `json:"reasoningTokens"`
	// LastUpdated is when usage was last folded in.
	// +optional
	LastUpdated *metav1.Time `json:"lastUpdated,omitempty"`
	// TeamPeriodStart is when the team budget's current period began.
	// +optional
	TeamPeriodStart *metav1.Time `json:"teamPeriodStart,omitempty"`
	// TeamBudget amount for display.
	// +optional
	TeamBudget string `json:"teamBudget,omitempty"`
	// TeamPercentUsed of the team budget, rounded down to two decimals.
	// +optional
	TeamPercentUsed string `json:"teamPercentUsed,omitempty"`
	// Folded holds the usage of reporters that stopped reporting long ago,
	// so Reporters stays short. Spend = Folded + sum of Reporters.
	// +optional
	Folded *UsageCounters `json:"folded,omitempty"`
	// Reporters is the cumulative usage per data-plane process in the
	// current period. Reports carry cumulative figures, so applying one
	// twice (a retry, or a controller restart) changes nothing.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=512
	Reporters []UsageReporter `json:"reporters,omitempty"`
}

// UsageCounters are usage figures; money in billionths (1e-9) of the
// budget currency, so sums are exact integers.
type UsageCounters struct {
	// SpendNanos in the key's budget period.
	// +optional
	SpendNanos int64 `json:"spendNanos,omitempty"`
	// TeamSpendNanos is this key's contribution to the team period.
	// +optional
	TeamSpendNanos int64 `json:"teamSpendNanos,omitempty"`
	// +optional
	Requests int64 `json:"requests,omitempty"`
	// +optional
	PromptTokens int64 `json:"promptTokens,omitempty"`
	// +optional
	CompletionTokens int64 `json:"completionTokens,omitempty"`
	// +optional
	CacheReadTokens int64 `json:"cacheReadTokens,omitempty"`
	// +optional
	CacheWriteTokens int64 `json:"cacheWriteTokens,omitempty"`
	// +optional
	ReasoningTokens int64 `json:"reasoningTokens,omitempty"`
}

// UsageReporter is one data-plane process's cumulative usage of a key in
// the current period, and the allowance the controller granted it.
type UsageReporter struct {
	// Replica is the data-plane replica name.
	// +kubebuilder:validation:MaxLength=253
	Replica string `json:"replica"`
	// Epoch is random per process start, so a restarted replica's counters
	// (which start again at zero) never collide with its earlier ones.
	// +kubebuilder:validation:MaxLength=64
	Epoch string `json:"epoch"`
	// Seq is the sequence number of the last report applied.
	Seq int64 `json:"seq"`
	// LastReport is when the last report was applied.
	LastReport metav1.Time `json:"lastReport"`
	// UsageCounters are cumulative since the process (epoch) started or the
	// period began, whichever is later.
	UsageCounters `json:",inline"`
	// AllowanceNanos is the cumulative spend this process may reach in the
	// key budget period before it must report again (0: no key budget).
	// +optional
	AllowanceNanos int64 `json:"allowanceNanos,omitempty"`
	// TeamAllowanceNanos is the same for the team budget.
	// +optional
	TeamAllowanceNanos int64 `json:"teamAllowanceNanos,omitempty"`
}

// VirtualKeyStatus is the observed state of a VirtualKey.
type VirtualKeyStatus struct {
	CommonStatus `json:",inline"`
	// SecretName is the Secret (owned by this key) holding the key under
	// data["key"]. Delete the Secret to rotate the key.
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// KeyPrefix is the first characters of the key, to recognise it.
	// +optional
	KeyPrefix string `json:"keyPrefix,omitempty"`
	// Usage in the current budget period.
	// +optional
	Usage *UsageStatus `json:"usage,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=vk;vkey,categories=tollgate
// +kubebuilder:printcolumn:name="Team",type=string,JSONPath=`.spec.team`
// +kubebuilder:printcolumn:name="Spend",type=string,JSONPath=`.status.usage.spend`
// +kubebuilder:printcolumn:name="Budget",type=string,JSONPath=`.spec.budget.amount`
// +kubebuilder:printcolumn:name="Currency",type=string,JSONPath=`.spec.budget.currency`,priority=1
// +kubebuilder:printcolumn:name="Used%",type=string,JSONPath=`.status.usage.percentUsed`
// +kubebuilder:printcolumn:name="Team-Spend",type=string,JSONPath=`.status.usage.teamSpend`,priority=1
// +kubebuilder:printcolumn:name="Team-Budget",type=string,JSONPath=`.spec.teamBudget.amount`,priority=1
// +kubebuilder:printcolumn:name="Team-Used%",type=string,JSONPath=`.status.usage.teamPercentUsed`,priority=1
// +kubebuilder:printcolumn:name="Requests",type=integer,JSONPath=`.status.usage.requests`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// VirtualKey is an API key for the gateway with its team, budget and limits.
// The controller generates the secret key; the data plane sees only its hash.
type VirtualKey struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   VirtualKeySpec   `json:"spec,omitempty"`
	Status VirtualKeyStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// VirtualKeyList is a list of VirtualKeys.
type VirtualKeyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualKey `json:"items"`
}

func init() {
	SchemeBuilder.Register(&VirtualKey{}, &VirtualKeyList{})
}
