// Package metering prices requests, enforces budgets and rate limits per
// virtual key and team, and reports usage to the controller, which folds it
// into VirtualKey status and answers with the spend of every replica.
//
// Money is fixed point: budgets and spend are int64 nanos (1e-9 of the
// currency, ±9.2 billion units); prices are int64 picos (1e-12) per one
// million tokens, which is exactly the 12 decimals the CRD admits. The cost
// of a request is a 128-bit integer in 1e-18 units (tokens × price), split
// into whole nanos and a sub-nano remainder that each accumulator carries,
// so sums are exact: no float ever touches money.
package metering

import (
	"errors"
	"math"
	"math/bits"
	"strconv"
	"strings"

	"tollgate.dev/tollgate/dataplane/schema/openai"
)

// Scales of the fixed-point representations.
const (
	nanoDigits = 9
	picoDigits = 12
	// subPerNano is the number of 1e-18 units in one nano.
	subPerNano = 1_000_000_000
)

// ErrDecimal is returned for malformed decimal amounts.
var ErrDecimal = errors.New("invalid decimal amount")

// parseFixed parses a non-negative decimal ("2.50") into an integer of
// 10^-digits units. Extra fractional digits beyond digits are truncated.
func parseFixed(s string, digits int) (int64, error) {
	if s == "" {
		return 0, ErrDecimal
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" {
		whole = "0"
	}
	var v uint64
	for _, c := range whole {
		if c < '0' || c > '9' {
			return 0, ErrDecimal
		}
		hi, lo := bits.Mul64(v, 10)
		if hi != 0 || lo > math.MaxInt64-9 {
			return 0, ErrDecimal
		}
		v = lo + uint64(c-'0')
	}
	for i := 0; i < digits; i++ {
		d := uint64(0)
		if i < len(frac) {
			c := frac[i]
			if c < '0' || c > '9' {
				return 0, ErrDecimal
			}
			d = uint64(c - '0')
		}
		hi, lo := bits.Mul64(v, 10)
		if hi != 0 || lo > math.MaxInt64-9 {
			return 0, ErrDecimal
		}
		v = lo + d
	}
	for i := digits; i < len(frac); i++ {
		if frac[i] < '0' || frac[i] > '9' {
			return 0, ErrDecimal
		}
	}
	return int64(v), nil
}

// ParseNanos parses a decimal amount into nanos (digits beyond the ninth
// are truncated: a budget is never finer than a billionth).
func ParseNanos(s string) (int64, error) { return parseFixed(s, nanoDigits) }

// FormatNanos renders nanos as an exact decimal with trailing zeros
// trimmed, keeping at least two decimals ("0.00725", "12.50").
func FormatNanos(n int64) string {
	neg := n < 0
	u := uint64(n)
	if neg {
		u = -u
	}
	whole, frac := u/1e9, u%1e9
	fs := strconv.FormatUint(frac+1e9, 10)[1:] // zero-padded to 9 digits
	fs = strings.TrimRight(fs, "0")
	for len(fs) < 2 {
		fs += "0"
	}
	s := strconv.FormatUint(whole, 10) + "." + fs
	if neg {
		s = "-" + s
	}
	return s
}

// PercentUsed returns spend/budget as a percentage rounded down to two
// decimals ("83.33"), or "" without a budget.
func PercentUsed(spend, budget int64) string {
	if budget <= 0 {
		return ""
	}
	if spend < 0 {
		spend = 0
	}
	hi, lo := bits.Mul64(uint64(spend), 10000)
	if hi >= uint64(budget) {
		return "999999.99"
	}
	q, _ := bits.Div64(hi, lo, uint64(budget))
	return strconv.FormatUint(q/100, 10) + "." + strconv.FormatUint(q%100+100, 10)[1:]
}

// Prices are per one million tokens in picos (1e-12 of Currency).
type Prices struct {
	Currency   string
	Input      int64
	Output     int64
	CacheRead  int64
	CacheWrite int64
	Reasoning  int64
	// Known is false when neither the provider nor the catalog prices the
	// model: the request costs zero and is counted as unpriced.
	Known bool
}

// PriceStrings are decimal prices per 1M tokens as declared on an
// LLMProvider ("" = not declared).
type PriceStrings struct {
	Input, Output, CacheRead, CacheWrite, Reasoning string
}

// ParsePrices parses declared prices. Undeclared cache-read and
// cache-write prices fall back to the input price, an undeclared
// reasoning price to the output price: billing them at the full rate
// never under-counts.
func ParsePrices(currency string, ps PriceStrings) (Prices, error) {
	p := Prices{Currency: currency, Known: true}
	var err error
	parse := func(s string, dst *int64, def int64) {
		if err != nil {
			return
		}
		if s == "" {
			*dst = def
			return
		}
		*dst, err = parseFixed(s, picoDigits)
	}
	parse(ps.Input, &p.Input, 0)
	parse(ps.Output, &p.Output, 0)
	parse(ps.CacheRead, &p.CacheRead, p.Input)
	parse(ps.CacheWrite, &p.CacheWrite, p.Input)
	parse(ps.Reasoning, &p.Reasoning, p.Output)
	return p, err
}

// Tokens is usage split into disjoint kinds, each priced once.
type Tokens struct {
	Input      int64 // prompt tokens neither read from nor written to a cache
	CacheRead  int64
	CacheWrite int64
	Output     int64 // completion tokens that are not reasoning
	Reasoning  int64
}

// Split turns OpenAI-style usage (prompt includes cached and cache-write;
// completion includes reasoning) into disjoint kinds.
func Split(u *openai.Usage) Tokens {
	if u == nil {
		return Tokens{}
	}
	// Details never exceed the totals they break down (a provider that
	// reports otherwise is clamped, so the totals are what is billed).
	var t Tokens
	prompt, completion := int64(max(u.PromptTokens, 0)), int64(max(u.CompletionTokens, 0))
	if d := u.PromptTokensDetails; d != nil {
		t.CacheRead = min(int64(max(d.CachedTokens, 0)), prompt)
		t.CacheWrite = min(int64(max(d.CacheWriteTokens, 0)), prompt-t.CacheRead)
	}
	if d := u.CompletionTokensDetails; d != nil {
		t.Reasoning = min(int64(max(d.ReasoningTokens, 0)), completion)
	}
	t.Input = prompt - t.CacheRead - t.CacheWrite
	t.Output = completion - t.Reasoning
	return t
}

// Cost is an exact amount: Nanos whole billionths plus Sub units of 1e-18.
type Cost struct {
	Nanos int64
	Sub   uint64 // < 1e9
}

// Add adds c to an accumulator of nanos with a sub-nano carry.
func (c Cost) addTo(nanos *int64, sub *uint64) {
	s := *sub + c.Sub
	*nanos += c.Nanos + int64(s/subPerNano)
	*sub = s % subPerNano
}

// Cost prices t exactly. It saturates at MaxInt64 nanos, which no real
// request approaches.
func (p *Prices) Cost(t Tokens) Cost {
	var hi, lo uint64
	add := func(n, price int64) {
		if n <= 0 || price <= 0 {
			return
		}
		h, l := bits.Mul64(uint64(n), uint64(price))
		var carry uint64
		lo, carry = bits.Add64(lo, l, 0)
		hi, _ = bits.Add64(hi, h, carry)
	}
	add(t.Input, p.Input)
	add(t.CacheRead, p.CacheRead)
	add(t.CacheWrite, p.CacheWrite)
	add(t.Output, p.Output)
	add(t.Reasoning, p.Reasoning)
	if hi >= subPerNano {
		return Cost{Nanos: math.MaxInt64}
	}
	q, r := bits.Div64(hi, lo, subPerNano)
	if q > math.MaxInt64 {
		return Cost{Nanos: math.MaxInt64}
	}
	return Cost{Nanos: int64(q), Sub: r}
}

// costOf is the price of n tokens at price picos per 1M, in nanos rounded
// up (used for reservations, which must not under-estimate).
func costOf(n int64, price int64) int64 {
	if n <= 0 || price <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(n), uint64(price))
	if hi >= subPerNano {
		return math.MaxInt64
	}
	q, r := bits.Div64(hi, lo, subPerNano)
	if r != 0 {
		q++
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}
