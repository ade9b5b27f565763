// Package guard is the data plane's sensitive-data policy: it scans the
// text a chat request carries (system prompt, messages, text parts, tool
// call arguments, tool results, reasoning) with built-in detectors and a
// route's or key's custom patterns, then lets the request through
// (recording what it found), restricts it to sovereign providers, redacts
// the values with placeholders that are restored in the answer where that
// is safe, or refuses it. Findings are kinds and counts, never values.
//
// The detectors are hand-written scanners, linear in the input; custom
// patterns are RE2 (Go regexp), linear too. See docs/sovereignty.md.
package guard

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
)

// CodeSensitiveData is the OpenAI error code of a refused request.
const CodeSensitiveData = "sensitive_data_detected"

// maxCustom bounds the custom patterns of one route and key pair (the CRD
// allows 32 per policy); ids beyond are ignored.
const maxCustom = 64

// Guard applies data policies. It is safe for concurrent use; one Guard
// serves every routing table (plans are cached per route and key and
// rebuilt when their policies change).
type Guard struct {
	findings *prometheus.CounterVec

	mu    sync.RWMutex
	plans map[planKey]*plan

	reMu     sync.Mutex
	regexps  map[string]*regexp.Regexp // nil: does not compile
	badRegex prometheus.Counter
}

type planKey struct{ route, key string }

// New returns a Guard whose findings counter,
// tollgate_sensitive_data_findings_total{namespace,route,detector,action},
// is registered on reg (nil: a private registry). The server's Metrics
// declare the same counter; when it is already registered on reg the
// Guard shares it, so wire the Guard after server.NewMetrics(reg).
func New(reg prometheus.Registerer) *Guard {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	g := &Guard{
		plans:   map[planKey]*plan{},
		regexps: map[string]*regexp.Regexp{},
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_sensitive_data_findings_total", Help: "Sensitive data detected in requests, by detector and action.",
		}, []string{"namespace", "route", "detector", "action"}),
		badRegex: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_data_policy_pattern_errors_total", Help: "Custom data-policy patterns that did not compile and were skipped.",
		}),
	}
	g.findings = registerCounterVec(reg, g.findings)
	if err := reg.Register(g.badRegex); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if c, ok := are.ExistingCollector.(prometheus.Counter); ok {
				g.badRegex = c
			}
		}
	}
	return g
}

func registerCounterVec(reg prometheus.Registerer, v *prometheus.CounterVec) *prometheus.CounterVec {
	err := reg.Register(v)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing
		}
	}
	// Any other error (a conflicting descriptor) leaves v unregistered:
	// findings still work, only the metric is missing.
	return v
}

// Result is the outcome of Evaluate.
type Result struct {
	// SovereignOnly restricts the request to InCluster/OnPrem providers.
	SovereignOnly bool
	// Findings is "Kind=count,..." sorted by kind; empty when nothing was
	// found or no policy applies.
	Findings string
	// Restore maps placeholders back to values in the answer; nil when
	// nothing restorable was redacted.
	Restore func(string) string
	// Flush returns what Restore held back (text that could have been the
	// start of a placeholder); call it once where an answer ends.
	Flush func() string
	// Redacted counts the values replaced in the request.
	Redacted int
}

// Action ranks; 0 means a detector is not run.
const (
	rankAllow     = 1
	rankRedact    = 2
	rankSovereign = 3
	rankRefuse    = 4
)

// rank orders actions: a higher rank is stricter. SovereignOnly outranks Redact:
// redaction only hides what the detectors found, SovereignOnly keeps the
// whole request inside the organisation.
func rank(a routetable.DataAction) int {
	switch a {
	case "", routetable.DataAllow:
		return rankAllow
	case routetable.DataRedact:
		return rankRedact
	case routetable.DataSovereignOnly:
		return rankSovereign
	default: // Refuse, and unknown actions fail closed
		return rankRefuse
	}
}

var actions = [...]routetable.DataAction{rankAllow: routetable.DataAllow, rankRedact: routetable.DataRedact, rankSovereign: routetable.DataSovereignOnly, rankRefuse: routetable.DataRefuse}

// plan is the merged policy of one route and key pair.
type plan struct {
	routePolicy, keyPolicy *routetable.DataPolicy
	kinds                  Kinds
	// action per detector id (built-in kinds, then custom patterns); 0
	// means not run.
	action [numKinds + maxCustom]uint8
	// refusedBy names the resource whose policy refuses a detector id.
	refusedBy [numKinds + maxCustom]string
	custom    []custom
	// order lists detector ids by name, for a stable findings string.
	order []Kind
}

type custom struct {
	name, tag string
	re        *regexp.Regexp
}

func (p *plan) name(id Kind) string {
	if id < numKinds {
		return kindNames[id]
	}
	return p.custom[id-numKinds].name
}

// planFor returns the cached plan of a route and key, building it when
// either policy changed (a new routing table). Both nil: no plan.
func (g *Guard) planFor(route *routetable.Route, key *routetable.Key) *plan {
	var rp, kp *routetable.DataPolicy
	pk := planKey{}
	if route != nil {
		rp, pk.route = route.DataPolicy, route.ID
	}
	if key != nil {
		kp, pk.key = key.DataPolicy, key.ID
	}
	if rp == nil && kp == nil {
		return nil
	}
	g.mu.RLock()
	p := g.plans[pk]
	g.mu.RUnlock()
	if p != nil && p.routePolicy == rp && p.keyPolicy == kp {
		return p
	}
	p = g.build(route, key, rp, kp)
	g.mu.Lock()
	if len(g.plans) >= 1<<14 {
		clear(g.plans) // bounded: tables with this many pairs are rebuilt lazily
	}
	g.plans[pk] = p
	g.mu.Unlock()
	return p
}

func (g *Guard) build(route *routetable.Route, key *routetable.Key, rp, kp *routetable.DataPolicy) *plan {
	p := &plan{routePolicy: rp, keyPolicy: kp}
	add := func(dp *routetable.DataPolicy, who string) {
		if dp == nil {
			return
		}
		r := uint8(rank(dp.Action))
		set := func(id Kind) {
			if r > p.action[id] {
				p.action[id] = r
				if r == rankRefuse {
					p.refusedBy[id] = who
				}
			}
		}
		if len(dp.Detectors) == 0 {
			for k := range numKinds {
				set(k)
			}
		}
		for _, d := range dp.Detectors {
			if k, ok := ParseKind(d); ok {
				set(k)
			}
		}
		for _, cp := range dp.CustomPatterns {
			re := g.compile(cp.Regex)
			if re == nil {
				continue
			}
			id := -1
			for j, c := range p.custom {
				if c.name == cp.Name && c.re.String() == cp.Regex {
					id = j
				}
			}
			if id < 0 {
				if len(p.custom) == maxCustom {
					continue
				}
				id = len(p.custom)
				p.custom = append(p.custom, custom{name: cp.Name, tag: tagOf(cp.Name), re: re})
			}
			set(numKinds + Kind(id))
		}
	}
	if route != nil {
		add(rp, "Route "+route.Namespace+"/"+route.Name)
	}
	if key != nil {
		add(kp, "VirtualKey "+key.Namespace+"/"+key.Name)
	}
	for k := range numKinds {
		if p.action[k] != 0 {
			p.kinds = p.kinds.With(k)
		}
	}
	for id := range numKinds + Kind(len(p.custom)) {
		if p.action[id] != 0 {
			p.order = append(p.order, id)
		}
	}
	slices.SortStableFunc(p.order, func(a, b Kind) int { return strings.Compare(p.name(a), p.name(b)) })
	return p
}

// compile compiles a custom pattern once per Guard. The compiler already
// rejects patterns that do not compile; a bad one that slips through is
// skipped and counted, never a crash.
func (g *Guard) compile(expr string) (re *regexp.Regexp) {
	g.reMu.Lock()
	defer g.reMu.Unlock()
	if re, ok := g.regexps[expr]; ok {
		return re
	}
	if len(g.regexps) >= 4096 {
		clear(g.regexps)
	}
	func() {
		defer func() {
			if recover() != nil {
				re = nil
			}
		}()
		re, _ = regexp.Compile(expr)
	}()
	if re == nil {
		g.badRegex.Inc()
	}
	g.regexps[expr] = re
	return re
}

// tagOf turns a pattern name into a placeholder tag: "employee-id" ->
// "EMPLOYEE_ID".
func tagOf(name string) string {
	b := []byte(strings.ToUpper(name))
	for i, c := range b {
		if !is(c, cUpper|cDigit) {
			b[i] = '_'
		}
	}
	return string(b)
}

// Evaluate applies the data policies of route and key to req. Redaction
// rewrites req in place. A refusal is an HTTP 400 OpenAI error with code
// sensitive_data_detected that names kinds and counts, never values.
//
// Semantics when both a route and a key carry a policy: each policy runs
// its own detectors, and for every detector the stricter action of the
// policies that run it applies (Allow < Redact < SovereignOnly < Refuse).
// The request then is refused if any found kind's action is Refuse;
// otherwise kinds whose action is Redact are redacted and, if any found
// kind's action is SovereignOnly, the request is also restricted to
// sovereign providers. One policy can only make the other stricter.
func (g *Guard) Evaluate(req *openai.ChatRequest, route *routetable.Route, key *routetable.Key) (Result, *openai.APIError) {
	p := g.planFor(route, key)
	if p == nil || req == nil {
		return Result{}, nil
	}
	// Only what the struct holds is scanned, so only that may leave: the
	// client's raw body could carry text in fields Tollgate does not model.
	req.Native = nil
	st := evaluation{p: p}
	for i := range req.Messages {
		m := &req.Messages[i]
		switch m.Content.Kind {
		case openai.ContentString:
			st.visit(&m.Content.Text)
		case openai.ContentParts:
			for j := range m.Content.Parts {
				if pt := &m.Content.Parts[j]; pt.Type == openai.PartText || pt.Type == "" {
					st.visit(&pt.Text)
				} else if pt.Type == openai.PartRefusal {
					st.visit(&pt.Refusal)
				}
			}
		}
		for j := range m.ToolCalls {
			st.visit(&m.ToolCalls[j].Function.Arguments)
		}
		st.visit(&m.ReasoningContent)
		st.visit(&m.Refusal)
	}
	return g.decide(&st, route)
}

// EvaluateTexts applies the same policies to plain texts, rewriting them in
// place when redacting: the inputs of an embeddings request, which carry
// the same data as prompts. Result.Restore is meaningless there (the
// answer is vectors) and can be ignored.
func (g *Guard) EvaluateTexts(texts []string, route *routetable.Route, key *routetable.Key) (Result, *openai.APIError) {
	p := g.planFor(route, key)
	if p == nil || len(texts) == 0 {
		return Result{}, nil
	}
	st := evaluation{p: p}
	for i := range texts {
		st.visit(&texts[i])
	}
	return g.decide(&st, route)
}

// evaluation is the state of one request's scan. No closures: it stays on
// the stack, so a request without findings costs no allocation.
type evaluation struct {
	p      *plan
	counts [numKinds + maxCustom]int
	red    *redactor
	ms     []Match
}

// visit scans one text, counts its findings and redacts it if a found
// kind's action is Redact.
func (st *evaluation) visit(s *string) {
	if *s == "" {
		return
	}
	st.ms = st.p.scan(st.ms[:0], *s)
	if len(st.ms) == 0 {
		return
	}
	redact := false
	for _, m := range st.ms {
		st.counts[m.Kind]++
		redact = redact || st.p.action[m.Kind] == rankRedact
	}
	if redact {
		if st.red == nil {
			st.red = &redactor{}
		}
		*s = st.red.rewrite(st.p, *s, st.ms)
	}
}

// decide turns the counts into findings, metrics and the verdict.
func (g *Guard) decide(st *evaluation, route *routetable.Route) (Result, *openai.APIError) {
	p, counts, red := st.p, &st.counts, st.red
	var res Result
	var sb strings.Builder
	worst := 0
	var refusedBy string
	for _, id := range p.order {
		n := counts[id]
		if n == 0 {
			continue
		}
		a := int(p.action[id])
		if a > worst {
			worst = a
		}
		if a == rankRefuse && refusedBy == "" {
			refusedBy = p.refusedBy[id]
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(p.name(id))
		sb.WriteByte('=')
		sb.WriteString(strconv.Itoa(n))
		if route != nil {
			g.findings.WithLabelValues(route.Namespace, route.Name, p.name(id), string(actions[a])).Add(float64(n))
		}
	}
	res.Findings = sb.String()
	if worst == rankRefuse {
		return res, openai.NewError(http.StatusBadRequest, openai.TypeInvalidRequest, CodeSensitiveData, "messages",
			"The request contains sensitive data ("+res.Findings+") and the data policy of "+refusedBy+
				" refuses to send it to a model provider. Remove these values from the messages, or ask the platform team for a route that may process them.")
	}
	res.SovereignOnly = worst == rankSovereign
	if red != nil {
		res.Redacted = red.count
		if rs := red.restorer(); rs != nil {
			res.Restore, res.Flush = rs.restore, rs.flush
		}
	}
	return res, nil
}

// scan finds built-in and custom matches in s, ordered and not overlapping.
func (p *plan) scan(dst []Match, s string) []Match {
	dst = Scan(dst, s, p.kinds)
	if len(p.custom) == 0 {
		return dst
	}
	n := len(dst)
	for j, c := range p.custom {
		for _, loc := range c.re.FindAllStringIndex(s, -1) {
			if loc[1] > loc[0] {
				dst = append(dst, Match{loc[0], loc[1], numKinds + Kind(j)})
			}
		}
	}
	if len(dst) > n {
		dst = dst[:normalize(dst)]
	}
	return dst
}

// redactor replaces matches with numbered placeholders, one per distinct
// value and kind, for the whole request, so that the model sees the same
// placeholder wherever the same value occurs.
type redactor struct {
	byValue map[string]string // kind tag + value -> placeholder
	next    map[string]int    // tag -> last number used
	restore []string          // placeholder, value pairs (restorable kinds only)
	count   int
}

func (r *redactor) rewrite(p *plan, s string, ms []Match) string {
	if r.byValue == nil {
		r.byValue, r.next = map[string]string{}, map[string]int{}
	}
	var b strings.Builder
	b.Grow(len(s))
	last := 0
	for _, m := range ms {
		if p.action[m.Kind] != rankRedact {
			continue
		}
		tag := ""
		if m.Kind < numKinds {
			tag = kindTags[m.Kind]
		} else {
			tag = p.custom[m.Kind-numKinds].tag
		}
		v := s[m.Start:m.End]
		k := tag + "\x00" + v
		ph, ok := r.byValue[k]
		if !ok {
			r.next[tag]++
			ph = "[" + tag + "_" + strconv.Itoa(r.next[tag]) + "]"
			r.byValue[k] = ph
			// Custom patterns may be secrets the guard knows nothing about:
			// like credentials, they are never restored.
			if m.Kind < numKinds && restorable(m.Kind) {
				r.restore = append(r.restore, ph, v)
			}
		}
		b.WriteString(s[last:m.Start])
		b.WriteString(ph)
		last = m.End
		r.count++
	}
	b.WriteString(s[last:])
	return b.String()
}

// restorable kinds are contact and addressing data that the caller sent
// and may see again. Credentials never come back (a prompt-injected model
// could steer a restored secret into a tool call); card numbers and SSNs
// stay masked in answers, as PCI DSS and most privacy policies expect of
// anything that displays them.
func restorable(k Kind) bool {
	switch k {
	case KindEmail, KindPhone, KindIBAN, KindIPAddress:
		return true
	}
	return false
}

func (r *redactor) restorer() *restorer {
	if len(r.restore) == 0 {
		return nil
	}
	rs := &restorer{repl: strings.NewReplacer(r.restore...)}
	for i := 0; i < len(r.restore); i += 2 {
		rs.placeholders = append(rs.placeholders, r.restore[i])
	}
	return rs
}

// restorer maps placeholders back to values. The server calls it on whole
// messages and on each streamed content delta in order; a delta that ends
// in the beginning of a placeholder ("[EMA") is held back and prepended to
// the next one, so placeholders split across chunks are restored too;
// flush hands back what is still held when the answer ends.
type restorer struct {
	mu           sync.Mutex
	repl         *strings.Replacer
	placeholders []string
	pending      string
}

func (r *restorer) restore(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending != "" {
		s, r.pending = r.pending+s, ""
	}
	out := r.repl.Replace(s)
	if j := strings.LastIndexByte(out, '['); j >= 0 && len(out)-j < 32 {
		tail := out[j:]
		for _, ph := range r.placeholders {
			if len(tail) < len(ph) && strings.HasPrefix(ph, tail) {
				r.pending, out = tail, out[:j]
				break
			}
		}
	}
	return out
}

func (r *restorer) flush() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pending
	r.pending = ""
	return p
}
