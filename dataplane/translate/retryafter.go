package translate

import (
	"net/http"
	"strings"
	"time"
)

// MaxRetryAfter is the longest Retry-After kept: 10^7 seconds (about 115
// days), the largest bound the translators used before they shared this
// parser. A longer delay (or one that overflows) is not a usable hint and
// reads as 0, as do unparsable values.
const MaxRetryAfter = 10_000_000 * time.Second

// RetryAfter reads h's Retry-After header with ParseRetryAfter; 0 when h is
// nil or has none. Provider-specific sources (OpenAI's retry-after-ms,
// Gemini's RetryInfo) are for the caller to consult.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	return ParseRetryAfter(h.Get("Retry-After"), now)
}

// ParseRetryAfter reads a Retry-After value (RFC 9110 10.2.3), surrounding
// white space ignored:
//   - delay-seconds: digits, optionally with a fraction ("1.5", which
//     several providers send), rounded up to a whole millisecond;
//   - an HTTP-date in any form http.ParseTime accepts (IMF-fixdate, RFC 850,
//     asctime), as the time from now to it, rounded to the second (the
//     resolution of the format).
//
// Zero, negative, past, longer than MaxRetryAfter and unparsable values
// (including signs, exponents and hex) are 0.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if v[0] >= '0' && v[0] <= '9' || v[0] == '.' {
		d, ok := parseSeconds(v)
		if !ok || d <= 0 || d > MaxRetryAfter {
			return 0
		}
		return d
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := at.Sub(now).Round(time.Second)
	if d <= 0 || d > MaxRetryAfter {
		return 0
	}
	return d
}

// parseSeconds reads digits[.digits] as a duration rounded up to the
// millisecond; ok is false for anything else or a value past MaxRetryAfter.
func parseSeconds(v string) (time.Duration, bool) {
	const maxSecs = int64(MaxRetryAfter / time.Second)
	var secs, ms int64
	i, digits := 0, 0
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		secs = secs*10 + int64(v[i]-'0')
		digits++
		if secs > maxSecs {
			return 0, false
		}
	}
	if i < len(v) && v[i] == '.' {
		i++
		scale, up := int64(100), false
		for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
			digits++
			if scale > 0 {
				ms += int64(v[i]-'0') * scale
				scale /= 10
			} else if v[i] != '0' {
				up = true // a fraction of a millisecond: round up
			}
		}
		if up {
			ms++
		}
	}
	if i != len(v) || digits == 0 {
		return 0, false
	}
	return time.Duration(secs)*time.Second + time.Duration(ms)*time.Millisecond, true
}
