package translate

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"   ", 0},
		{"0", 0},
		{"3", 3 * time.Second},
		{" 30\t", 30 * time.Second},
		{"007", 7 * time.Second},
		{"1.5", 1500 * time.Millisecond},
		{"0.25", 250 * time.Millisecond},
		{"2.", 2 * time.Second},
		{".5", 500 * time.Millisecond},
		{"0.0001", time.Millisecond},        // rounded up to a whole millisecond
		{"1.0005", 1001 * time.Millisecond}, // likewise
		{"1.5000000000000000000001", 1501 * time.Millisecond},
		{"0.000", 0},
		{"86400", 86400 * time.Second},
		{"10000000", MaxRetryAfter},
		{"10000000.001", 0},
		{"10000001", 0},
		{"99999999999999999999999999", 0},
		{"-5", 0},
		{"+5", 0},
		{"1e3", 0},
		{"0x10", 0},
		{"Inf", 0},
		{"NaN", 0},
		{".", 0},
		{"1.2.3", 0},
		{"5s", 0},
		{"soon", 0},
		{"Thu, 01 Jan 2026 00:00:30 GMT", 30 * time.Second},    // IMF-fixdate
		{"  Thu, 01 Jan 2026 00:01:00 GMT ", time.Minute},      // white space
		{"Thursday, 01-Jan-26 00:00:45 GMT", 45 * time.Second}, // RFC 850
		{"Thu Jan  1 00:00:10 2026", 10 * time.Second},         // asctime
		{"Wed, 31 Dec 2025 23:59:00 GMT", 0},                   // past
		{"Thu, 01 Jan 2026 00:00:00 GMT", 0},                   // now
		{"Fri, 01 Jan 2027 00:00:00 GMT", 0},                   // 365 days: past the cap
		{"2026-01-01T00:00:30Z", 0},                            // not an HTTP-date
	} {
		if got := ParseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseRetryAfterDateRounds(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 300_000_000, time.UTC)
	if got := ParseRetryAfter("Thu, 01 Jan 2026 00:01:30 GMT", now); got != 90*time.Second {
		t.Errorf("got %v, want 1m30s (89.7s rounded to the second)", got)
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Now()
	if got := RetryAfter(nil, now); got != 0 {
		t.Errorf("nil header: %v", got)
	}
	if got := RetryAfter(http.Header{"Retry-After": {"4"}}, now); got != 4*time.Second {
		t.Errorf("got %v", got)
	}
	if got := RetryAfter(http.Header{"Retry-After-Ms": {"4"}}, now); got != 0 {
		t.Errorf("retry-after-ms is not Retry-After: %v", got)
	}
}
