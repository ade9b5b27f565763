package metering

import (
	"testing"

	"tollgate.dev/tollgate/dataplane/schema/openai"
)

func usage(prompt, cached, cacheWrite, completion, reasoning int) *openai.Usage {
	u := &openai.Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}
	if cached > 0 || cacheWrite > 0 {
		u.PromptTokensDetails = &openai.PromptTokensDetails{CachedTokens: cached, CacheWriteTokens: cacheWrite}
	}
	if reasoning > 0 {
		u.CompletionTokensDetails = &openai.CompletionTokensDetails{ReasoningTokens: reasoning}
	}
	return u
}

func TestCost(t *testing.T) {
	tests := []struct {
		name   string
		prices PriceStrings
		usage  *openai.Usage
		want   string // exact, in currency units
		sub    uint64 // remainder below one nano, in 1e-18 units
	}{
		{"plain", PriceStrings{Input: "2.50", Output: "10.00"}, usage(1000, 0, 0, 500, 0), "0.0075", 0},
		// 800 × 2.50 + 200 × 1.25 + 500 × 10 = 2000 + 250 + 5000 per 1M
		{"cached", PriceStrings{Input: "2.50", Output: "10.00", CacheRead: "1.25"}, usage(1000, 200, 0, 500, 0), "0.00725", 0},
		// Anthropic-style: 100 uncached × 3 + 2000 read × 0.30 + 1000 write × 3.75 + 300 out × 15
		// = 300 + 600 + 3750 + 4500 = 9150 per 1M
		{"cache read and write", PriceStrings{Input: "3", Output: "15", CacheRead: "0.30", CacheWrite: "3.75"}, usage(3100, 2000, 1000, 300, 0), "0.00915", 0},
		// Undeclared cache prices fall back to the input price.
		{"cache fallback", PriceStrings{Input: "3", Output: "15"}, usage(3100, 2000, 1000, 300, 0), "0.0138", 0},
		// 1000 reasoning at 20 + 200 other output at 8 + 100 in at 2 = 20000 + 1600 + 200
		{"reasoning price", PriceStrings{Input: "2", Output: "8", Reasoning: "20"}, usage(100, 0, 0, 1200, 1000), "0.0218", 0},
		{"reasoning as output", PriceStrings{Input: "2", Output: "8"}, usage(100, 0, 0, 1200, 1000), "0.0098", 0},
		// 7 tokens at 0.000000000001 per 1M: 7e-18, far below one nano.
		{"sub-nano", PriceStrings{Input: "0.000000000001"}, usage(7, 0, 0, 0, 0), "0.00", 7},
		// 3 tokens at 0.01875 per 1M = 5.625e-8: 56 nanos and 0.25 nano.
		{"fractional nanos", PriceStrings{Input: "0.01875"}, usage(3, 0, 0, 0, 0), "0.000000056", 250_000_000},
		{"nil usage", PriceStrings{Input: "1"}, nil, "0.00", 0},
		{"inconsistent details clamp", PriceStrings{Input: "1", Output: "1"}, usage(10, 50, 0, 5, 9), "0.000015", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePrices("USD", tt.prices)
			if err != nil {
				t.Fatal(err)
			}
			c := p.Cost(Split(tt.usage))
			if got := FormatNanos(c.Nanos); got != tt.want || c.Sub != tt.sub {
				t.Errorf("cost = %s + %d e-18, want %s + %d e-18", got, c.Sub, tt.want, tt.sub)
			}
		})
	}
}

func TestCarryIsExact(t *testing.T) {
	p, _ := ParsePrices("USD", PriceStrings{Input: "0.01875"})
	var n int64
	var sub uint64
	for i := 0; i < 1000; i++ {
		p.Cost(Split(usage(3, 0, 0, 0, 0))).addTo(&n, &sub)
	}
	// 3000 tokens × 0.01875 / 1e6 = 0.00005625 exactly.
	if got := FormatNanos(n); got != "0.00005625" || sub != 0 {
		t.Errorf("sum = %s + %d, want 0.00005625 + 0", got, sub)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1": 1e9, "2.50": 2_500_000_000, ".5": 5e8, "0.000000001": 1, "0.0000000019": 1, "12345.678": 12_345_678_000_000} {
		got, err := ParseNanos(in)
		if err != nil || got != want {
			t.Errorf("ParseNanos(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1.2.3", "abc", "1e3", "99999999999999999999"} {
		if _, err := ParseNanos(bad); err == nil {
			t.Errorf("ParseNanos(%q) accepted", bad)
		}
	}
	for n, want := range map[int64]string{0: "0.00", 1: "0.000000001", 2_500_000_000: "2.50", 10_000_000_000: "10.00", 7_250_000: "0.00725"} {
		if got := FormatNanos(n); got != want {
			t.Errorf("FormatNanos(%d) = %q, want %q", n, got, want)
		}
	}
	for _, c := range []struct {
		spend, budget int64
		want          string
	}{{1, 3, "33.33"}, {2, 3, "66.66"}, {3, 3, "100.00"}, {0, 5, "0.00"}, {7, 0, ""}, {15, 10, "150.00"}} {
		if got := PercentUsed(c.spend, c.budget); got != c.want {
			t.Errorf("PercentUsed(%d, %d) = %q, want %q", c.spend, c.budget, got, c.want)
		}
	}
}

func TestCatalog(t *testing.T) {
	for model, wantInput := range map[string]string{
		"gpt-4o":                     "2.50",
		"gpt-4o-2024-08-06":          "2.50",
		"gpt-4o-mini":                "0.15",
		"gpt-4o-mini-2024-07-18":     "0.15",
		"gpt-4.1-nano":               "0.10",
		"claude-sonnet-4-20250514":   "3.00",
		"claude-3-5-sonnet@20240620": "3.00",
		"us.anthropic.claude-3-5-haiku-20241022-v1:0": "0.80",
		"gemini-2.5-flash":                            "0.30",
	} {
		ps, ok := catalogPrices(model)
		if !ok || ps.Input != wantInput {
			t.Errorf("catalog(%q) = %+v, %v; want input %s", model, ps, ok, wantInput)
		}
	}
	for _, model := range []string{"gpt-4", "gpt-4oo", "llama3", "my-gpt-4o"} {
		if ps, ok := catalogPrices(model); ok {
			t.Errorf("catalog(%q) = %+v, want no match", model, ps)
		}
	}
}

func FuzzParseNanos(f *testing.F) {
	for _, s := range []string{"0", "2.50", ".5", "0.000000001", "12345678901.123456789012", "1.", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNanos(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseNanos(%q) = %d < 0", s, n)
		}
		// Formatting and parsing again is the identity on nanos.
		if m, err := ParseNanos(FormatNanos(n)); err != nil || m != n {
			t.Fatalf("round trip of %q: %d -> %q -> %d, %v", s, n, FormatNanos(n), m, err)
		}
		// Prices (picos) hold up to 9.2 million per 1M tokens; larger ones
		// are refused, never wrapped.
		if p, err := parseFixed(s, picoDigits); err == nil && p < n {
			t.Fatalf("picos %d < nanos %d for %q", p, n, s)
		}
	})
}
