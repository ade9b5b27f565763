package compiler

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/dataplane/routetable"
)

// keyState is a compiled key as MCPTools see it.
type keyState struct {
	vk     *v1alpha1.VirtualKey
	k      routetable.Key
	served bool
}

func (c *compilation) compileKeys() {
	vks := sortedPtrs(c.in.VirtualKeys, func(v *v1alpha1.VirtualKey) *metav1.ObjectMeta { return &v.ObjectMeta })
	type pending struct {
		vk      *v1alpha1.VirtualKey
		acc     problems
		refs    problems
		k       routetable.Key
		haveKey bool
		teamOK  bool // teamBudget passed its own validation
	}
	all := make([]*pending, 0, len(vks))
	for _, vk := range vks {
		p := &pending{vk: vk}
		p.k, p.haveKey, p.teamOK = c.key(vk, &p.acc, &p.refs)
		all = append(all, p)
	}

	// Team budgets: the oldest key that declares a valid teamBudget sets
	// it for the team; other declarations must agree.
	byAge := slices.Clone(all)
	slices.SortStableFunc(byAge, func(a, b *pending) int { return olderFirst(&a.vk.ObjectMeta, &b.vk.ObjectMeta) })
	teamOwner := map[string]*pending{}
	for _, p := range byAge {
		if p.k.TeamBudget == nil || !p.teamOK {
			continue
		}
		team := p.vk.Namespace + "/" + p.k.Team
		o, ok := teamOwner[team]
		if !ok {
			teamOwner[team] = p
			continue
		}
		if !sameBudget(o.k.TeamBudget, p.k.TeamBudget) {
			p.acc.add(v1alpha1.ReasonConflict, "teamBudget %s differs from %s declared by VirtualKey %q (older) for team %q; keys of one team must agree",
				budgetString(p.k.TeamBudget), budgetString(o.k.TeamBudget), o.vk.Name, p.k.Team)
		}
	}
	// Duplicate secret keys: the older VirtualKey keeps it.
	hashOwner := map[string]*pending{}
	for _, p := range byAge {
		if !p.haveKey {
			continue
		}
		if o, ok := hashOwner[p.k.Hash]; ok {
			p.acc.add(v1alpha1.ReasonConflict, "its secret key is identical to the key of VirtualKey %s/%s (older); generate a new key", o.vk.Namespace, o.vk.Name)
			continue
		}
		hashOwner[p.k.Hash] = p
	}

	for _, p := range all {
		if o, ok := teamOwner[p.vk.Namespace+"/"+p.k.Team]; ok && p.k.Team != "" {
			// Every key of the team shares the team budget, declared or not.
			b := *o.k.TeamBudget
			p.k.TeamBudget = &b
		}
		c.checkReach(p.vk, &p.k, &p.acc)
		inTable := false
		switch {
		case !p.acc.ok():
		case p.vk.Spec.Disabled:
			// In effect by being absent: the data plane refuses unknown keys.
			inTable = true
		case !p.haveKey:
		default:
			// A missing allowed Route grants nothing; the key keeps working
			// for the Routes that exist, and ResolvedRefs says what is wrong.
			inTable = true
			c.table.Keys = append(c.table.Keys, p.k)
		}
		st := &keyState{vk: p.vk, k: p.k, served: inTable && !p.vk.Spec.Disabled}
		c.keys[p.vk.Namespace+"/"+p.vk.Name] = st
		accepted := p.acc
		verdictMsg := msgAccepted
		if p.vk.Spec.Disabled && accepted.ok() {
			verdictMsg = "Spec is valid; the key is disabled, so the data plane refuses it"
		}
		c.verdicts = append(c.verdicts, Verdict{
			Ref:          Ref{Kind: KindVirtualKey, Namespace: p.vk.Namespace, Name: p.vk.Name},
			Generation:   p.vk.Generation,
			Accepted:     accepted.condition(v1alpha1.ReasonAccepted, verdictMsg),
			ResolvedRefs: p.refs.condition(v1alpha1.ReasonResolvedRefs, msgResolvedRefs),
			InTable:      inTable,
		})
	}
	slices.SortFunc(c.table.Keys, func(a, b routetable.Key) int { return strings.Compare(a.ID, b.ID) })
}

// key compiles one VirtualKey. haveKey reports whether its secret key was
// found (and so Hash is set).
func (c *compilation) key(vk *v1alpha1.VirtualKey, acc, refs *problems) (k routetable.Key, haveKey, teamOK bool) {
	s := &vk.Spec
	k = routetable.Key{
		ID:         vk.Namespace + "/" + vk.Name,
		Namespace:  vk.Namespace,
		Name:       vk.Name,
		Team:       s.Team,
		CostCenter: s.CostCenter,
	}
	if len(vk.Labels) > 0 {
		k.Labels = maps.Clone(vk.Labels)
	}
	if s.Team != "" && (len(s.Team) > 63 || !teamRE.MatchString(s.Team)) {
		acc.add(v1alpha1.ReasonInvalid, "team %q must be a DNS label (lowercase letters, digits, '-')", s.Team)
	}
	k.Budget = budget(s.Budget, "budget", acc)
	var tp problems
	k.TeamBudget = budget(s.TeamBudget, "teamBudget", &tp)
	teamOK = tp.ok()
	acc.list = append(acc.list, tp.list...)
	if s.TeamBudget != nil && s.Team == "" {
		acc.add(v1alpha1.ReasonInvalid, "teamBudget requires team")
		teamOK = false
	}
	if k.Budget != nil && k.TeamBudget != nil && k.Budget.Currency != k.TeamBudget.Currency {
		acc.add(v1alpha1.ReasonInvalid, "budget (%s) and teamBudget (%s) must use the same currency", k.Budget.Currency, k.TeamBudget.Currency)
	}
	if rl := s.RateLimit; rl != nil {
		if rl.RequestsPerMinute != nil && *rl.RequestsPerMinute < 1 ||
			rl.TokensPerMinute != nil && *rl.TokensPerMinute < 1 ||
			rl.MaxConcurrentStreams != nil && *rl.MaxConcurrentStreams < 1 {
			acc.add(v1alpha1.ReasonInvalid, "rateLimit values must be at least 1")
		}
		k.RequestsPerMinute = int32Ptr(rl.RequestsPerMinute)
		if rl.TokensPerMinute != nil {
			k.TokensPerMinute = *rl.TokensPerMinute
		}
		k.MaxConcurrentStreams = int32Ptr(rl.MaxConcurrentStreams)
	}
	k.DataPolicy = dataPolicy(s.DataPolicy, "dataPolicy", acc)
	if s.ExpiresAt != nil {
		t := s.ExpiresAt.UTC()
		k.ExpiresAt = &t
	}

	// Allowed routes: kept as IDs whether or not they resolve, so a typo
	// never widens the grant to every Route (an empty list means all).
	for _, name := range s.AllowedRoutes {
		id := vk.Namespace + "/" + name
		if !slices.Contains(k.AllowedRoutes, id) {
			k.AllowedRoutes = append(k.AllowedRoutes, id)
		}
		rs, ok := c.routes[id]
		switch {
		case !ok:
			refs.add(v1alpha1.ReasonRouteNotFound, "allowedRoutes: Route %q not found in namespace %q", name, vk.Namespace)
		case !rs.served:
			refs.add(v1alpha1.ReasonRouteNotFound, "allowedRoutes: Route %q is not served: %s", name, rs.why)
		}
	}
	slices.Sort(k.AllowedRoutes)

	// The secret key itself.
	secretName := KeySecretName(vk.Name)
	sid := vk.Namespace + "/" + secretName
	c.referenced[sid] = true
	switch data, ok := c.in.Secrets[sid]; {
	case c.in.ForeignKeySecrets[sid]:
		refs.add(v1alpha1.ReasonConflict, "Secret %q exists but is not owned by this VirtualKey; delete or rename it so a key can be generated", secretName)
	case !ok:
		refs.add(v1alpha1.ReasonSecretNotFound, "waiting for Secret %q holding the key under data.%s (the controller generates it)", secretName, KeySecretDataKey)
	default:
		key := strings.TrimSpace(string(data[KeySecretDataKey]))
		switch {
		case key == "":
			refs.add(v1alpha1.ReasonSecretKeyMissing, "Secret %q has no non-empty data.%s; delete the Secret to generate a new key", secretName, KeySecretDataKey)
		case len(key) < MinKeyLength:
			refs.add(v1alpha1.ReasonInvalid, "the key in Secret %q is shorter than %d characters and could be guessed; delete the Secret to generate a new key", secretName, MinKeyLength)
		default:
			sum := sha256.Sum256([]byte(key))
			k.Hash = hex.EncodeToString(sum[:])
			haveKey = true
		}
	}
	return k, haveKey, teamOK
}

// checkReach validates what depends on the Routes a key can reach: budget
// currencies must match the providers' price currency (spend in two
// currencies cannot be added up), and a SovereignOnly key needs at least one
// sovereign target.
func (c *compilation) checkReach(vk *v1alpha1.VirtualKey, k *routetable.Key, acc *problems) {
	var reach []*routeState
	if len(k.AllowedRoutes) > 0 {
		for _, id := range k.AllowedRoutes {
			if rs, ok := c.routes[id]; ok && rs.served {
				reach = append(reach, rs)
			}
		}
	} else {
		for _, r := range c.table.Routes {
			if r.Namespace == vk.Namespace {
				reach = append(reach, c.routes[r.ID])
			}
		}
	}
	for _, b := range []struct {
		field string
		b     *routetable.Budget
	}{{"budget", k.Budget}, {"teamBudget", k.TeamBudget}} {
		if b.b == nil {
			continue
		}
		for _, rs := range reach {
			for _, pid := range rs.providers {
				p := c.providers[pid]
				if p.p.Currency != b.b.Currency {
					acc.add(v1alpha1.ReasonInvalid, "%s is in %s but LLMProvider %q (reachable through Route %q) prices in %s; spend in two currencies cannot be added up",
						b.field, b.b.Currency, p.p.Name, rs.r.Name, p.p.Currency)
				}
			}
		}
	}
	if k.DataPolicy != nil && k.DataPolicy.Action == routetable.DataSovereignOnly && len(reach) > 0 &&
		!slices.ContainsFunc(reach, func(rs *routeState) bool { return rs.sovereign }) {
		acc.add(v1alpha1.ReasonInvalid, "dataPolicy SovereignOnly, but none of the Routes this key may use has a target on an InCluster or OnPrem LLMProvider")
	}
}

func budget(b *v1alpha1.Budget, field string, acc *problems) *routetable.Budget {
	if b == nil {
		return nil
	}
	out := &routetable.Budget{Amount: string(b.Amount), Currency: b.Currency, Period: routetable.BudgetPeriod(b.Period)}
	switch {
	case !decimalRE.MatchString(out.Amount):
		acc.add(v1alpha1.ReasonInvalid, "%s.amount %q is not a decimal like \"100.00\"", field, out.Amount)
	case rat(out.Amount).Sign() <= 0:
		acc.add(v1alpha1.ReasonInvalid, "%s.amount must be greater than zero", field)
	}
	if out.Currency == "" {
		out.Currency = "USD"
	} else if !currencyRE.MatchString(out.Currency) {
		acc.add(v1alpha1.ReasonInvalid, "%s.currency %q must be a three-letter ISO 4217 code such as USD", field, out.Currency)
	}
	switch b.Period {
	case "":
		out.Period = routetable.PeriodMonthly
	case v1alpha1.PeriodDaily, v1alpha1.PeriodWeekly, v1alpha1.PeriodMonthly, v1alpha1.PeriodTotal:
	default:
		acc.add(v1alpha1.ReasonInvalid, "%s.period %q is not one of Daily, Weekly, Monthly, Total", field, b.Period)
	}
	return out
}

func sameBudget(a, b *routetable.Budget) bool {
	return a.Currency == b.Currency && a.Period == b.Period && rat(a.Amount).Cmp(rat(b.Amount)) == 0
}

func budgetString(b *routetable.Budget) string {
	return b.Amount + " " + b.Currency + " " + string(b.Period)
}
