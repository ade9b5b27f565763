package metering

import "strings"

// catalogEntry is a list price in USD per one million tokens.
type catalogEntry struct {
	name string
	ps   PriceStrings
}

// catalog holds public list prices (USD per 1M tokens) of well-known
// models, used only when the LLMProvider declares no price for the model
// and prices in USD. Prices on the LLMProvider always win; this table is a
// convenience that ages, so production providers should declare prices.
var catalog = []catalogEntry{
	{"gpt-4o", PriceStrings{Input: "2.50", Output: "10.00", CacheRead: "1.25"}},
	{"gpt-4o-mini", PriceStrings{Input: "0.15", Output: "0.60", CacheRead: "0.075"}},
	{"gpt-4.1", PriceStrings{Input: "2.00", Output: "8.00", CacheRead: "0.50"}},
	{"gpt-4.1-mini", PriceStrings{Input: "0.40", Output: "1.60", CacheRead: "0.10"}},
	{"gpt-4.1-nano", PriceStrings{Input: "0.10", Output: "0.40", CacheRead: "0.025"}},
	{"o3", PriceStrings{Input: "2.00", Output: "8.00", CacheRead: "0.50"}},
	{"o4-mini", PriceStrings{Input: "1.10", Output: "4.40", CacheRead: "0.275"}},
	{"text-embedding-3-small", PriceStrings{Input: "0.02"}},
	{"text-embedding-3-large", PriceStrings{Input: "0.13"}},
	{"claude-opus-4", PriceStrings{Input: "15.00", Output: "75.00", CacheRead: "1.50", CacheWrite: "18.75"}},
	{"claude-sonnet-4", PriceStrings{Input: "3.00", Output: "15.00", CacheRead: "0.30", CacheWrite: "3.75"}},
	{"claude-3-7-sonnet", PriceStrings{Input: "3.00", Output: "15.00", CacheRead: "0.30", CacheWrite: "3.75"}},
	{"claude-3-5-sonnet", PriceStrings{Input: "3.00", Output: "15.00", CacheRead: "0.30", CacheWrite: "3.75"}},
	{"claude-3-5-haiku", PriceStrings{Input: "0.80", Output: "4.00", CacheRead: "0.08", CacheWrite: "1.00"}},
	{"claude-haiku-4-5", PriceStrings{Input: "1.00", Output: "5.00", CacheRead: "0.10", CacheWrite: "1.25"}},
	{"gemini-2.5-pro", PriceStrings{Input: "1.25", Output: "10.00", CacheRead: "0.31"}},
	{"gemini-2.5-flash", PriceStrings{Input: "0.30", Output: "2.50", CacheRead: "0.075"}},
	{"gemini-2.0-flash", PriceStrings{Input: "0.10", Output: "0.40", CacheRead: "0.025"}},
}

// catalogPrices finds a model in the catalog: the longest entry that is
// the whole name or a prefix followed by '-', '@' or ':' (dated variants
// such as "gpt-4o-2024-08-06", "claude-sonnet-4-20250514", Vertex
// "@20240620"), also after a Bedrock-style "us.anthropic." prefix.
func catalogPrices(model string) (PriceStrings, bool) {
	for m := model; ; {
		if ps, ok := catalogMatch(m); ok {
			return ps, true
		}
		i := strings.IndexByte(m, '.')
		if i < 0 {
			return PriceStrings{}, false
		}
		m = m[i+1:]
	}
}

func catalogMatch(model string) (PriceStrings, bool) {
	best := -1
	for i := range catalog {
		n := catalog[i].name
		if !strings.HasPrefix(model, n) {
			continue
		}
		if len(model) > len(n) {
			if c := model[len(n)]; c != '-' && c != '@' && c != ':' {
				continue
			}
		}
		if best < 0 || len(n) > len(catalog[best].name) {
			best = i
		}
	}
	if best < 0 {
		return PriceStrings{}, false
	}
	return catalog[best].ps, true
}
