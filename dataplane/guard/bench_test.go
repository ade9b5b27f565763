package guard

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
)

// corpus builds about size bytes of prompt-like text: prose, numbers,
// dates, versions, clock times, code and JSON, none of it sensitive. With
// secrets, a finding of some kind is mixed in roughly every 2 KB.
func corpus(size int, secrets bool) string {
	r := rand.New(rand.NewPCG(1, 2))
	pieces := []string{
		"The quarterly report shows revenue grew by 12.5% to 4,250,000 dollars.",
		"Deploy version 1.24.3 on 2024-03-15 at 10:30:00 UTC, build 20240315.",
		"func main() { for i := 0; i < 100; i++ { fmt.Println(i * 42) } }",
		`{"id": 1234567, "items": [1, 2, 3], "price": 19.99, "sku": "AB-1234"}`,
		"Please summarise the following meeting notes and list action items.",
		"std::vector<int> v{1, 2, 3}; // C++ scope, not an address",
		"Order #88231 shipped in 3 boxes weighing 12 kg; tracking 1Z999AA10123456784.",
		"See RFC 7231 section 6.5.1 and ISO 8601; pi is about 3.14159265358979.",
		"Error at line 301, column 17: unexpected token '}' in expression.",
		"The model mixture-of-experts has 8x7B parameters and a 32k context.",
	}
	secretPieces := []string{
		"Contact jane.doe@example.com for access.",
		"Card on file: 4111 1111 1111 1111, expires 12/27.",
		"Call +44 20 7946 0958 or (415) 555-0132.",
		"Wire to DE89 3704 0044 0532 0130 00 today.",
		"Host 192.168.10.20 and fe80::1ff:fe23:4567:890a are down.",
		"export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
		"Authorization: Bearer 9f8a7b6c5d4e3f2a1b0c9d8e",
		"OPENAI_API_KEY=sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vW7yZ",
		"SSN 536-22-1234 on the form.",
	}
	var b strings.Builder
	for b.Len() < size {
		if secrets && r.IntN(20) == 0 {
			b.WriteString(secretPieces[r.IntN(len(secretPieces))])
		} else {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		if r.IntN(4) == 0 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

func TestCorpusHasNoFindings(t *testing.T) {
	s := corpus(100<<10, false)
	if ms := Scan(nil, s, AllKinds); len(ms) != 0 {
		t.Fatalf("false positives in the clean corpus: %v %q", ms[0].Kind, s[ms[0].Start:ms[0].End])
	}
}

func benchInspect(b *testing.B, secrets bool, dp *routetable.DataPolicy) {
	text := corpus(100<<10, secrets)
	g := New(nil)
	rt := route(dp)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	req := &openai.ChatRequest{Messages: []openai.Message{
		{Role: openai.RoleSystem, Content: openai.TextContent("You are a helpful assistant.")},
		{Role: openai.RoleUser},
	}}
	for b.Loop() {
		req.Messages[1].Content = openai.TextContent(text) // undo redaction
		g.Evaluate(req, rt, nil)
	}
}

// BenchmarkInspect is Evaluate (what Inspect does) on a 100 KB prompt.
func BenchmarkInspect(b *testing.B) {
	allow := &routetable.DataPolicy{Action: routetable.DataAllow}
	redact := &routetable.DataPolicy{Action: routetable.DataRedact}
	custom := &routetable.DataPolicy{Action: routetable.DataAllow, CustomPatterns: []routetable.CustomPattern{
		{Name: "employee-id", Regex: `\bEMP-[0-9]{6}\b`},
	}}
	b.Run("clean/all-detectors", func(b *testing.B) { benchInspect(b, false, allow) })
	b.Run("findings/allow", func(b *testing.B) { benchInspect(b, true, allow) })
	b.Run("findings/redact", func(b *testing.B) { benchInspect(b, true, redact) })
	literal := &routetable.DataPolicy{Action: routetable.DataAllow, CustomPatterns: []routetable.CustomPattern{
		{Name: "employee-id", Regex: `EMP-[0-9]{6}`},
	}}
	b.Run("clean/one-custom-regex", func(b *testing.B) { benchInspect(b, false, custom) })
	b.Run("clean/one-custom-regex-literal-prefix", func(b *testing.B) { benchInspect(b, false, literal) })
	b.Run("no-policy", func(b *testing.B) { benchInspect(b, true, nil) })
}

// BenchmarkRegexpBaseline measures what the same detectors cost as Go
// regexps (RE2: linear too, but one pass per pattern and slower per byte),
// which is why the built-ins are hand-written scanners.
func BenchmarkRegexpBaseline(b *testing.B) {
	text := corpus(100<<10, true)
	res := []*regexp.Regexp{
		regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`),
		regexp.MustCompile(`\b(?:\d[ -]?){13,19}\b`),
		regexp.MustCompile(`\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b`),
		regexp.MustCompile(`\b\d{3}-\d{2}-\d{4}\b`),
		regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`),
		regexp.MustCompile(`\b(?:sk-|ghp_|xox[bpars]-)[A-Za-z0-9_-]{10,}`),
		regexp.MustCompile(`\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`),
		regexp.MustCompile(`(?i)bearer\s+[A-Za-z0-9._~+/=-]{16,}`),
		regexp.MustCompile(`\+[1-9][0-9 ().-]{7,20}\d`),
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		for _, re := range res {
			re.FindAllStringIndex(text, -1)
		}
	}
}

func BenchmarkScan(b *testing.B) {
	for _, tc := range []struct {
		name    string
		secrets bool
	}{{"clean", false}, {"findings", true}} {
		text := corpus(100<<10, tc.secrets)
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			var ms []Match
			for b.Loop() {
				ms = Scan(ms[:0], text, AllKinds)
			}
		})
	}
}
