package guard

import (
	"net/netip"
	"strings"
	"testing"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
)

// FuzzScan checks that the scanners never panic, that matches are
// non-empty, within bounds, ordered and disjoint, and that redaction then
// restore gives back the input for restorable kinds.
func FuzzScan(f *testing.F) {
	for _, s := range []string{
		"", "@", "a@b.co", "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00",
		"+44 (0) 20 7946 0958", "(415) 555-0132", "536-22-1234", "fe80::1", "::ffff:1.2.3.4",
		"10.0.0.1", "AKIAIOSFODNN7EXAMPLE", "-----BEGIN PRIVATE KEY-----\nAA\n-----END PRIVATE KEY-----",
		"-----BEGIN RSA PRIVATE KEY-----", "Bearer 9f8a7b6c5d4e3f2a1b0c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
		"sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vW7yZ", "x@y.io@z.io", "\xff@\xfe.\x80", "1:2:3:4:5:6:7:8",
	} {
		f.Add(s)
	}
	g := New(nil)
	rt := route(&routetable.DataPolicy{Action: routetable.DataRedact})
	f.Fuzz(func(t *testing.T, s string) {
		ms := Scan(nil, s, AllKinds)
		end := 0
		for _, m := range ms {
			if m.Start < end || m.End <= m.Start || m.End > len(s) || m.Kind >= numKinds {
				t.Fatalf("bad match %+v after end %d in %q (all: %v)", m, end, s, ms)
			}
			end = m.End
		}
		req := &openai.ChatRequest{Messages: []openai.Message{{Role: "user", Content: openai.TextContent(s)}}}
		res, aerr := g.Evaluate(req, rt, nil)
		if aerr != nil {
			t.Fatal(aerr)
		}
		onlyRestorable := true
		for _, m := range ms {
			onlyRestorable = onlyRestorable && restorable(m.Kind)
		}
		// Round trip: only when the input holds no text that looks like a
		// placeholder itself (restore would rightly expand it too).
		if onlyRestorable && len(ms) > 0 && !strings.Contains(s, "[") {
			if got := res.Restore(req.Messages[0].Content.Text); got != s {
				t.Fatalf("round trip:\n in  %q\n out %q", s, got)
			}
		}
	})
}

// FuzzIPv6Shape checks that the allocation-free pre-check never rejects an
// address net/netip accepts.
func FuzzIPv6Shape(f *testing.F) {
	for _, s := range []string{"::", "::1", "fe80::1", "2001:db8::8a2e:370:7334", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1::2::3", "12:30:45"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := netip.ParseAddr(s)
		if err == nil && a.Is6() && a.Zone() == "" && !ipv6Shape(s) {
			t.Fatalf("ipv6Shape(%q) = false, netip accepts it", s)
		}
	})
}
