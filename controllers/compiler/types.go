// Package compiler turns Tollgate custom resources into the routing table the
// data plane serves, plus a verdict per object. It is a pure function: no
// client calls, no clock, no randomness, so the same resources always give
// the same table (and the same content-hash version) and every rule can be
// tested with files. The controllers feed it from the API server; the data
// plane's file mode feeds it from YAML via LoadManifests.
package compiler

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/dataplane/routetable"
)

// Kinds as they appear in Ref.Kind and in routetable.Table.Generations keys.
const (
	KindLLMProvider = "LLMProvider"
	KindRoute       = "Route"
	KindVirtualKey  = "VirtualKey"
	KindMCPTool     = "MCPTool"
)

// ReasonKeyNotFound is the ResolvedRefs reason of an MCPTool whose access
// list names a VirtualKey that does not exist. api/v1alpha1 has no reason for
// it, and reusing RouteNotFound would mislead.
const ReasonKeyNotFound = "KeyNotFound"

// KeySecretDataKey is the data key that holds a VirtualKey's secret key in
// its Secret.
const KeySecretDataKey = "key"

// MinKeyLength is the shortest secret key accepted. The data plane only holds
// SHA-256 hashes, which protect nothing if the key itself can be guessed; the
// controller generates 46-character keys, so this only bites hand-written
// keys in file mode.
const MinKeyLength = 32

// Input is everything the routing table depends on.
type Input struct {
	Providers   []v1alpha1.LLMProvider
	Routes      []v1alpha1.Route
	VirtualKeys []v1alpha1.VirtualKey
	MCPTools    []v1alpha1.MCPTool
	// Secrets maps "namespace/name" to the Secret's data. Only Secrets the
	// resources refer to are needed.
	Secrets map[string]map[string][]byte
	// ForeignKeySecrets holds "namespace/name" of key Secrets (named by
	// KeySecretName) that exist but are not controlled by their VirtualKey.
	// The controller fills it so a pre-existing Secret that happens to carry
	// the name is never trusted as a key; file mode leaves it empty.
	ForeignKeySecrets map[string]bool
}

// Ref identifies one object of one kind.
type Ref struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// String renders the ref as the routetable.Table.Generations key:
// "Kind/namespace/name".
func (r Ref) String() string { return r.Kind + "/" + r.Namespace + "/" + r.Name }

// Condition is the compiler's judgement for one condition type; the
// controller turns it into a metav1.Condition with observedGeneration.
type Condition struct {
	Status  metav1.ConditionStatus `json:"status"`
	Reason  string                 `json:"reason"`
	Message string                 `json:"message"`
}

// Verdict is the compiler's judgement of one object.
type Verdict struct {
	Ref        `json:",inline"`
	Generation int64 `json:"generation"`
	// Accepted: the spec is valid and does not conflict with another object.
	Accepted Condition `json:"accepted"`
	// ResolvedRefs: every Secret, provider, route and key it names resolves.
	ResolvedRefs Condition `json:"resolvedRefs"`
	// InTable is true when this generation is in effect in the table: it was
	// compiled into it, or (a disabled VirtualKey) deliberately left out.
	// When true, Table.Generations holds the generation.
	InTable bool `json:"inTable"`
}

// Output is the result of one compilation.
type Output struct {
	// Table is finalized (validated, versioned, indexed) and read-only. Nil
	// only when Err is set.
	Table *routetable.Table
	// Verdicts has one entry per input object, sorted by kind, namespace and
	// name.
	Verdicts []Verdict
	// ReferencedSecrets lists "namespace/name" of every Secret the resources
	// name, found or not (sorted), so a controller can react to exactly
	// those Secrets appearing, changing or disappearing.
	ReferencedSecrets []string
	// Err reports an internal inconsistency: the table failed its own
	// validation. It means a compiler bug; the table must not be published.
	Err error
}

// Verdict returns the verdict for ref.
func (o *Output) Verdict(ref Ref) (Verdict, bool) {
	lo, hi := 0, len(o.Verdicts)
	for lo < hi {
		m := (lo + hi) / 2
		if compareRefs(o.Verdicts[m].Ref, ref) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(o.Verdicts) && o.Verdicts[lo].Ref == ref {
		return o.Verdicts[lo], true
	}
	return Verdict{}, false
}

func compareRefs(a, b Ref) int {
	if c := strings.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// KeySecretName is the name of the Secret holding VirtualKey vkName's secret
// key under data["key"]: "<vkName>-key". The controller creates it (owned by
// the VirtualKey); in file mode you write it yourself. Names too long for a
// Secret are shortened deterministically with a hash suffix.
func KeySecretName(vkName string) string {
	const suffix = "-key"
	if len(vkName)+len(suffix) <= 253 {
		return vkName + suffix
	}
	h := shortHash(vkName)
	base := strings.TrimRight(vkName[:253-len(suffix)-len(h)-1], ".-")
	return base + "-" + h + suffix
}
