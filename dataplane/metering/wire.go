package metering

import "time"

// Report is what a data-plane process sends the controller every interval.
// Figures are cumulative per process (Epoch) and period, so a report
// applied twice, or an older one applied after a newer one, changes
// nothing: the controller keeps, per key and process, the figures of the
// highest Seq it applied.
type Report struct {
	Replica string      `json:"replica"`
	Epoch   string      `json:"epoch"`
	Seq     int64       `json:"seq"`
	Keys    []KeyReport `json:"keys"`
}

// KeyReport is one key's cumulative usage in this process.
type KeyReport struct {
	// Key is "namespace/name".
	Key string `json:"key"`
	// PeriodStart of the key budget period the counters belong to.
	PeriodStart time.Time `json:"periodStart"`
	Counters
	// TeamPeriodStart of the team budget period TeamSpendNanos belongs to
	// (zero without a team budget).
	TeamPeriodStart time.Time `json:"teamPeriodStart,omitzero"`
	TeamSpendNanos  int64     `json:"teamSpendNanos,omitempty"`
}

// Counters are cumulative usage figures; money in nanos.
type Counters struct {
	SpendNanos       int64 `json:"spendNanos"`
	Requests         int64 `json:"requests"`
	PromptTokens     int64 `json:"promptTokens"`
	CompletionTokens int64 `json:"completionTokens"`
	CacheReadTokens  int64 `json:"cacheReadTokens"`
	CacheWriteTokens int64 `json:"cacheWriteTokens"`
	ReasoningTokens  int64 `json:"reasoningTokens"`
}

// Ack is the controller's answer to a Report, sent only once the report
// is durably recorded.
type Ack struct {
	Seq int64 `json:"seq"`
	// Replicas is the number of data-plane processes that reported
	// recently; each enforces 1/Replicas of a key's rate limits.
	Replicas int        `json:"replicas"`
	Keys     []KeyState `json:"keys"`
}

// KeyState is the global view of one key after the report was applied.
type KeyState struct {
	Key         string    `json:"key"`
	PeriodStart time.Time `json:"periodStart"`
	// SpendNanos is the spend of all processes in the period.
	SpendNanos int64 `json:"spendNanos"`
	// BudgetNanos is the key budget (0: none).
	BudgetNanos int64 `json:"budgetNanos,omitempty"`
	// AllowanceNanos is the cumulative spend (as reported by this process
	// for this period) up to which this process may admit requests.
	AllowanceNanos  int64     `json:"allowanceNanos,omitempty"`
	TeamPeriodStart time.Time `json:"teamPeriodStart,omitzero"`
	TeamSpendNanos  int64     `json:"teamSpendNanos,omitempty"`
	TeamBudgetNanos int64     `json:"teamBudgetNanos,omitempty"`
	// TeamAllowanceNanos is AllowanceNanos for the team budget, measured
	// on this process's TeamSpendNanos for this key.
	TeamAllowanceNanos int64 `json:"teamAllowanceNanos,omitempty"`
}
