package compiler

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/dataplane/routetable"
)

// Messages of the happy path, shared so the status reads the same everywhere.
const (
	msgAccepted     = "Spec is valid"
	msgResolvedRefs = "All references resolved"
)

// Compile builds the routing table and a verdict for every object. Objects
// that are invalid, conflict with an older object, or reference something
// missing are left out of the table (except as documented for VirtualKeys
// and MCPTools, whose unresolved grants simply grant nothing) and their
// verdict says why; objects depending on them report it in turn.
func Compile(in Input) Output {
	c := &compilation{
		in:         in,
		providers:  map[string]*providerState{},
		routes:     map[string]*routeState{},
		keys:       map[string]*keyState{},
		referenced: map[string]bool{},
		table:      &routetable.Table{Generations: map[string]int64{}},
	}
	c.compileProviders()
	c.compileRoutes()
	c.compileKeys()
	c.compileMCPTools()

	slices.SortFunc(c.verdicts, func(a, b Verdict) int { return compareRefs(a.Ref, b.Ref) })
	for _, v := range c.verdicts {
		if v.InTable {
			c.table.Generations[v.Ref.String()] = v.Generation
		}
	}
	if len(c.table.Generations) == 0 {
		c.table.Generations = nil
	}
	out := Output{Verdicts: c.verdicts}
	for s := range c.referenced {
		out.ReferencedSecrets = append(out.ReferencedSecrets, s)
	}
	slices.Sort(out.ReferencedSecrets)
	if err := c.table.Finalize(); err != nil {
		out.Err = fmt.Errorf("compiled routing table is inconsistent: %w", err)
		return out
	}
	out.Table = c.table
	return out
}

type compilation struct {
	in         Input
	providers  map[string]*providerState // "namespace/name"
	routes     map[string]*routeState    // "namespace/name"
	keys       map[string]*keyState      // "namespace/name"
	referenced map[string]bool
	table      *routetable.Table
	verdicts   []Verdict
}

// secretValue resolves a SecretKeySelector in namespace ns. It records the
// reference, and reports a missing Secret or key as a ResolvedRefs problem.
// The value never appears in a message.
func (c *compilation) secretValue(ns string, sel *v1alpha1.SecretKeySelector, field string, refs *problems) (string, bool) {
	if sel == nil {
		return "", false
	}
	id := ns + "/" + sel.Name
	c.referenced[id] = true
	data, ok := c.in.Secrets[id]
	if !ok {
		refs.add(v1alpha1.ReasonSecretNotFound, "%s: Secret %q not found in namespace %q", field, sel.Name, ns)
		return "", false
	}
	v, ok := data[sel.Key]
	if !ok || len(strings.TrimSpace(string(v))) == 0 {
		refs.add(v1alpha1.ReasonSecretKeyMissing, "%s: Secret %q has no non-empty key %q", field, sel.Name, sel.Key)
		return "", false
	}
	// Secrets written with `kubectl create secret --from-file` often end in
	// a newline that no provider accepts in a header.
	return strings.TrimSpace(string(v)), true
}

func (c *compilation) verdict(kind string, meta *metav1.ObjectMeta, accepted, refs *problems, inTable bool) {
	c.verdicts = append(c.verdicts, Verdict{
		Ref:          Ref{Kind: kind, Namespace: meta.Namespace, Name: meta.Name},
		Generation:   meta.Generation,
		Accepted:     accepted.condition(v1alpha1.ReasonAccepted, msgAccepted),
		ResolvedRefs: refs.condition(v1alpha1.ReasonResolvedRefs, msgResolvedRefs),
		InTable:      inTable,
	})
}

// olderFirst orders objects for conflict resolution: the oldest
// creationTimestamp wins, ties broken by name (as Gateway API does).
func olderFirst(a, b *metav1.ObjectMeta) int {
	if c := a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

func byNamespaceName(a, b *metav1.ObjectMeta) int {
	if c := cmp.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// sortedPtrs returns pointers to items sorted by namespace and name, so the
// compilation order (and every message) is independent of list order.
func sortedPtrs[T any](items []T, meta func(*T) *metav1.ObjectMeta) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	slices.SortFunc(out, func(a, b *T) int { return byNamespaceName(meta(a), meta(b)) })
	return out
}
