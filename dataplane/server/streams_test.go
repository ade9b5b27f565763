package server

import (
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"tollgate.dev/tollgate/dataplane/routetable"
)

func TestStreamLimiter(t *testing.T) {
	var l streamLimiter
	limited := &routetable.Key{ID: "ns/a", Namespace: "ns", Name: "a", MaxConcurrentStreams: 2}
	other := &routetable.Key{ID: "ns/b", Namespace: "ns", Name: "b", MaxConcurrentStreams: 2}
	unlimited := &routetable.Key{ID: "ns/c", Namespace: "ns", Name: "c"}

	r1, err := l.acquire(limited)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.acquire(limited)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.acquire(limited); err == nil || err.Status != http.StatusTooManyRequests || err.Code == nil || *err.Code != "too_many_streams" || err.RetryAfter <= 0 {
		t.Fatalf("third stream: err = %+v, want 429 too_many_streams with Retry-After", err)
	}
	if _, err := l.acquire(other); err != nil {
		t.Fatalf("another key's limit is separate: %v", err)
	}
	for i := 0; i < 100; i++ {
		if _, err := l.acquire(unlimited); err != nil {
			t.Fatalf("a key without a limit was refused: %v", err)
		}
	}
	r1()
	r3, err := l.acquire(limited)
	if err != nil {
		t.Fatalf("a released slot must be reusable: %v", err)
	}
	r2()
	r3()
}

func TestReadSized(t *testing.T) {
	cases := []struct {
		body string
		n    int64
	}{
		{"", 0}, {"hello", 0}, {"hello", 5}, {"hello world", 5}, {"hi", 5}, {strings.Repeat("x", 70000), 70000},
	}
	for _, c := range cases {
		got, err := readSized(iotest.OneByteReader(strings.NewReader(c.body)), c.n)
		short := int64(len(c.body)) < c.n
		if short != (err != nil) {
			t.Errorf("readSized(%q, %d): err = %v", c.body, c.n, err)
		}
		if !short && string(got) != c.body {
			t.Errorf("readSized(%q, %d) = %q", c.body, c.n, got)
		}
	}
}
