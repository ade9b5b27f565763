package compiler

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/dataplane/routetable"
)

// The patterns below repeat the CRD's OpenAPI validation. In a cluster the
// API server has already enforced them; file mode has no API server, so the
// compiler checks again rather than trusting hand-written YAML.
var (
	decimalRE     = regexp.MustCompile(`^(0|[1-9][0-9]{0,11})(\.[0-9]{1,12})?$`)
	currencyRE    = regexp.MustCompile(`^[A-Z]{3}$`)
	publicModelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@-]*$`)
	ruleNameRE    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	patternNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,62}$`)
	teamRE        = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	prefixRE      = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,32}$`)
	headerNameRE  = regexp.MustCompile(`^[A-Za-z0-9-]+$`)
	azureAPIVerRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?$`)
	regionRE      = regexp.MustCompile(`^[a-z]{2}(-gov)?-[a-z]+-[0-9]$`)
	// tokenRE is an RFC 9110 token: a valid HTTP header field name.
	tokenRE = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
)

// problems collects what is wrong with one object for one condition. The
// first problem's reason becomes the condition reason; all messages are
// joined so the user sees everything at once instead of fixing one thing per
// apply.
type problems struct{ list []problem }

type problem struct{ reason, msg string }

func (p *problems) add(reason, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	for _, q := range p.list {
		if q.msg == msg {
			return
		}
	}
	p.list = append(p.list, problem{reason, msg})
}

func (p *problems) ok() bool { return len(p.list) == 0 }

func (p *problems) condition(okReason, okMsg string) Condition {
	if p.ok() {
		return Condition{Status: metav1.ConditionTrue, Reason: okReason, Message: okMsg}
	}
	msgs := make([]string, len(p.list))
	for i, q := range p.list {
		msgs[i] = q.msg
	}
	return Condition{Status: metav1.ConditionFalse, Reason: p.list[0].reason, Message: strings.Join(msgs, "; ")}
}

func (p *problems) summary() string {
	return p.condition("", "").Message
}

// duration converts an optional metav1.Duration, refusing negative values.
func duration(d *metav1.Duration, field string, ps *problems) time.Duration {
	if d == nil {
		return 0
	}
	if d.Duration < 0 {
		ps.add(v1alpha1.ReasonInvalid, "%s must not be negative (got %s)", field, d.Duration)
		return 0
	}
	return d.Duration
}

// decimal checks an exact decimal string; empty is allowed (unset).
func decimal(d v1alpha1.Decimal, field string, ps *problems) string {
	s := string(d)
	if s != "" && !decimalRE.MatchString(s) {
		ps.add(v1alpha1.ReasonInvalid, "%s %q is not a decimal like \"2.50\"", field, s)
	}
	return s
}

func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return new(big.Rat)
	}
	return r
}

// checkEndpoint validates a base URL and applies the SSRF guard that the CRD
// expresses in CEL: link-local and cloud metadata addresses are refused
// unless explicitly allowed.
func checkEndpoint(raw, field string, allowLinkLocal bool, ps *problems) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		ps.add(v1alpha1.ReasonInvalid, "%s %q must be an http or https URL with a host", field, raw)
		return ""
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		ps.add(v1alpha1.ReasonInvalid, "%s %q must not contain credentials, a query or a fragment", field, redactURL(u))
		return ""
	}
	if !allowLinkLocal && linkLocalHost(u.Hostname()) {
		ps.add(v1alpha1.ReasonInvalid, "%s %q points at a link-local or cloud metadata address; set allowLinkLocal to allow it", field, raw)
		return ""
	}
	return strings.TrimRight(raw, "/")
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.Fragment = ""
	return c.String()
}

func linkLocalHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "metadata" || h == "metadata.google.internal" {
		return true
	}
	ip := net.ParseIP(h)
	if ip == nil {
		return false
	}
	return ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.Equal(net.ParseIP("fd00:ec2::254"))
}

// builtinDetectors are the detector names the data plane implements (the
// CRD enum).
var builtinDetectors = []string{
	"APIKey", "AWSAccessKey", "BearerToken", "Email", "IBAN", "IPAddress",
	"JWT", "PaymentCard", "Phone", "PrivateKey", "USSSN",
}

// dataPolicy converts and validates a route's or key's data policy; regexes
// must compile as Go RE2, the engine the data plane uses.
func dataPolicy(dp *v1alpha1.DataPolicy, field string, ps *problems) *routetable.DataPolicy {
	if dp == nil {
		return nil
	}
	out := &routetable.DataPolicy{Action: routetable.DataAction(dp.Action)}
	switch dp.Action {
	case "":
		out.Action = routetable.DataAllow
	case v1alpha1.DataAllow, v1alpha1.DataSovereignOnly, v1alpha1.DataRedact, v1alpha1.DataRefuse:
	default:
		ps.add(v1alpha1.ReasonInvalid, "%s.action %q is not one of Allow, SovereignOnly, Redact, Refuse", field, dp.Action)
	}
	if dp.Detectors != nil && len(dp.Detectors) == 0 && len(dp.CustomPatterns) == 0 && out.Action != routetable.DataAllow {
		ps.add(v1alpha1.ReasonInvalid, "%s.detectors must not be an empty list; omit it to run every built-in detector", field)
	}
	seen := map[string]bool{}
	for _, d := range dp.Detectors {
		if !slices.Contains(builtinDetectors, string(d)) {
			ps.add(v1alpha1.ReasonInvalid, "%s.detectors: unknown detector %q (known: %s)", field, d, strings.Join(builtinDetectors, ", "))
			continue
		}
		if !seen[string(d)] {
			seen[string(d)] = true
			out.Detectors = append(out.Detectors, string(d))
		}
	}
	slices.Sort(out.Detectors)
	names := map[string]bool{}
	for _, cp := range dp.CustomPatterns {
		if !patternNameRE.MatchString(cp.Name) {
			ps.add(v1alpha1.ReasonInvalid, "%s.customPatterns: name %q must start with a letter and contain only letters, digits, '_' and '-' (at most 63)", field, cp.Name)
		}
		if names[cp.Name] {
			ps.add(v1alpha1.ReasonInvalid, "%s.customPatterns: name %q is used twice", field, cp.Name)
		}
		names[cp.Name] = true
		if cp.Regex == "" || len(cp.Regex) > 1024 {
			ps.add(v1alpha1.ReasonInvalid, "%s.customPatterns[%s]: regex must be 1 to 1024 characters", field, cp.Name)
		} else if _, err := regexp.Compile(cp.Regex); err != nil {
			ps.add(v1alpha1.ReasonInvalid, "%s.customPatterns[%s]: invalid RE2 regular expression: %v", field, cp.Name, err)
		}
		out.CustomPatterns = append(out.CustomPatterns, routetable.CustomPattern{Name: cp.Name, Regex: cp.Regex})
	}
	return out
}

// checkGlobs validates path.Match patterns.
func checkGlobs(globs []string, field string, ps *problems) []string {
	for _, g := range globs {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			ps.add(v1alpha1.ReasonInvalid, "%s: %q is not a valid glob", field, g)
		}
	}
	return slices.Clone(globs)
}

// forbiddenProviderHeaders may not be set through spec.headers: they carry
// credentials (which belong in Secrets, not in the spec) or framing that the
// data plane controls.
var forbiddenProviderHeaders = []string{
	"authorization", "x-api-key", "api-key", "x-goog-api-key", "proxy-authorization",
	"host", "content-length", "transfer-encoding", "connection", "te", "upgrade",
	"keep-alive", "trailer", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256",
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

func int32Ptr(p *int32) int {
	if p == nil {
		return 0
	}
	return int(*p)
}

func intPtr(p *int32) *int {
	if p == nil {
		return nil
	}
	v := int(*p)
	return &v
}
