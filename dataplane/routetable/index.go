package routetable

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	json "github.com/go-json-experiment/json/v1"
)

// Finalize validates t, stamps its content-hash Version and builds the lookup
// indexes. It must be called once before the table is shared; after it the
// table is read-only.
func (t *Table) Finalize() error {
	if err := t.Validate(); err != nil {
		return err
	}
	t.Version = ""
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("hash routing table: %w", err)
	}
	sum := sha256.Sum256(b)
	t.Version = hex.EncodeToString(sum[:8])
	t.index()
	return nil
}

// Decode parses a table received over the wire, checks that its version
// matches its content, and builds its indexes.
func Decode(b []byte) (*Table, error) {
	var t Table
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("decode routing table: %w", err)
	}
	want := t.Version
	if err := t.Finalize(); err != nil {
		return nil, err
	}
	if want != "" && want != t.Version {
		return nil, fmt.Errorf("routing table version %s does not match its content (%s)", want, t.Version)
	}
	return &t, nil
}

func (t *Table) index() {
	t.providerByID = make(map[string]*Provider, len(t.Providers))
	for i := range t.Providers {
		t.providerByID[t.Providers[i].ID] = &t.Providers[i]
	}
	t.routeByModel = make(map[string]*Route, len(t.Routes))
	t.routeByID = make(map[string]*Route, len(t.Routes))
	for i := range t.Routes {
		r := &t.Routes[i]
		t.routeByModel[r.Namespace+"/"+r.Model] = r
		t.routeByID[r.ID] = r
	}
	t.keyByHash = make(map[string]*Key, len(t.Keys))
	for i := range t.Keys {
		t.keyByHash[t.Keys[i].Hash] = &t.Keys[i]
	}
}

// Validate checks internal consistency: every reference resolves and IDs are
// unique. The compiler only emits valid tables; this guards the wire.
func (t *Table) Validate() error {
	var errs []error
	providers := map[string]bool{}
	for _, p := range t.Providers {
		if p.ID == "" || p.BaseURL == "" || p.Type == "" {
			errs = append(errs, fmt.Errorf("provider %q: id, type and baseURL are required", p.ID))
		}
		if providers[p.ID] {
			errs = append(errs, fmt.Errorf("provider %q: duplicate id", p.ID))
		}
		providers[p.ID] = true
	}
	models := map[string]bool{}
	for _, r := range t.Routes {
		k := r.Namespace + "/" + r.Model
		if models[k] {
			errs = append(errs, fmt.Errorf("route %q: model %q is already served in namespace %q", r.ID, r.Model, r.Namespace))
		}
		models[k] = true
		if len(r.Targets) == 0 {
			errs = append(errs, fmt.Errorf("route %q: no targets", r.ID))
		}
		check := func(ts []Target) {
			for _, tg := range ts {
				if !providers[tg.Provider] {
					errs = append(errs, fmt.Errorf("route %q: unknown provider %q", r.ID, tg.Provider))
				}
			}
		}
		check(r.Targets)
		check(r.Fallbacks)
		for _, rule := range r.Rules {
			check(rule.Targets)
		}
	}
	hashes := map[string]bool{}
	for _, k := range t.Keys {
		if len(k.Hash) != 64 {
			errs = append(errs, fmt.Errorf("key %q: hash must be 64 hex characters", k.ID))
		}
		if hashes[k.Hash] {
			errs = append(errs, fmt.Errorf("key %q: duplicate hash", k.ID))
		}
		hashes[k.Hash] = true
	}
	return errors.Join(errs...)
}

// Provider returns the provider with the given ID.
func (t *Table) Provider(id string) (*Provider, bool) {
	p, ok := t.providerByID[id]
	return p, ok
}

// RouteForModel returns the route that serves a public model name in a namespace.
func (t *Table) RouteForModel(namespace, model string) (*Route, bool) {
	r, ok := t.routeByModel[namespace+"/"+model]
	return r, ok
}

// Route returns the route with the given ID.
func (t *Table) Route(id string) (*Route, bool) {
	r, ok := t.routeByID[id]
	return r, ok
}

// KeyByHash returns the key whose SHA-256 hex digest is hash. Map lookup on a
// hash leaks nothing useful about the secret: an attacker would need a
// preimage. Callers compare the stored hash again in constant time.
func (t *Table) KeyByHash(hash string) (*Key, bool) {
	k, ok := t.keyByHash[hash]
	return k, ok
}

// Allows reports whether key k may use route r.
func (k *Key) Allows(r *Route) bool {
	if k.Namespace != r.Namespace {
		return false
	}
	return len(k.AllowedRoutes) == 0 || slices.Contains(k.AllowedRoutes, r.ID)
}

// RoutesFor lists the routes key k may use, sorted by model name.
func (t *Table) RoutesFor(k *Key) []*Route {
	var out []*Route
	for i := range t.Routes {
		if k.Allows(&t.Routes[i]) {
			out = append(out, &t.Routes[i])
		}
	}
	slices.SortFunc(out, func(a, b *Route) int { return strings.Compare(a.Model, b.Model) })
	return out
}

// Model returns the price entry for an upstream model, if declared.
func (p *Provider) Model(name string) (*Model, bool) {
	for i := range p.Models {
		if p.Models[i].Name == name {
			return &p.Models[i], true
		}
	}
	return nil, false
}
