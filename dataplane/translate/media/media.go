// Package media turns image references from OpenAI requests (data: URLs and
// http(s) URLs) into bytes for providers that need them inline (Gemini,
// Bedrock, Ollama), with a size limit and without letting a client make the
// gateway reach private addresses (SSRF) unless explicitly allowed.
package media

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// DefaultMaxBytes bounds one fetched or decoded image.
const DefaultMaxBytes = 20 << 20

// ErrTooLarge is returned for images over the limit.
var ErrTooLarge = errors.New("image exceeds size limit")

// ErrForbiddenAddress is returned when an image URL resolves to a private,
// loopback, link-local or otherwise non-public address and private fetches
// are not allowed, or to a cloud metadata address (always).
var ErrForbiddenAddress = errors.New("image URL resolves to a forbidden address")

// ErrNotImage is returned when a fetched URL does not hold an image.
var ErrNotImage = errors.New("URL does not point to an image")

// nonPublic lists the special-purpose ranges (RFC 6890 and successors) a
// client must not make the gateway reach, beyond what net/netip's
// predicates cover: "this network", shared address space (carrier NAT, and
// some clouds' metadata, e.g. 100.100.100.200), IETF protocol assignments,
// benchmarking, documentation and reserved space.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// metadata lists cloud instance-metadata endpoints, refused even when
// private addresses are allowed: no image lives there, credentials do.
var metadata = []netip.Prefix{
	netip.MustParsePrefix("169.254.169.254/32"), // AWS, GCP, Azure, OpenStack, ...
	netip.MustParsePrefix("169.254.170.2/32"),   // AWS ECS task credentials
	netip.MustParsePrefix("fd00:ec2::254/128"),  // AWS IMDS over IPv6
	netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud
}

// embeddedIPv4 returns the IPv4 address carried by NAT64 (64:ff9b::/96) and
// 6to4 (2002::/16) addresses, which reach it through a translator.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	switch {
	case netip.MustParsePrefix("64:ff9b::/96").Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case netip.MustParsePrefix("2002::/16").Contains(a):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}

// checkAddr decides whether the gateway may connect to a: never to a
// metadata endpoint, and only to public unicast addresses unless
// allowPrivate.
func checkAddr(a netip.Addr, allowPrivate bool) error {
	a = a.Unmap().WithZone("")
	if v4, ok := embeddedIPv4(a); ok {
		if err := checkAddr(v4, allowPrivate); err != nil {
			return err
		}
	}
	for _, p := range metadata {
		if p.Contains(a) {
			return ErrForbiddenAddress
		}
	}
	if allowPrivate {
		return nil
	}
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return ErrForbiddenAddress
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return ErrForbiddenAddress
		}
	}
	return nil
}

// dialGuard is a net.Dialer Control function: it runs after DNS
// resolution, for every address tried and every connection (redirects
// included), so neither DNS names, rebinding nor redirects get around it.
func dialGuard(allow func(netip.AddrPort) error) func(network, address string, c syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return ErrForbiddenAddress
		}
		return allow(ap)
	}
}

// DataURL is a decoded data: URL.
type DataURL struct {
	MediaType string
	// Base64 is the payload as base64 (re-encoded if it was not).
	Base64 string
}

// ParseDataURL decodes "data:[<mediatype>][;base64],<data>". ok is false when
// s is not a data URL at all.
func ParseDataURL(s string) (d DataURL, ok bool, err error) {
	if !strings.HasPrefix(s, "data:") {
		return DataURL{}, false, nil
	}
	meta, payload, found := strings.Cut(s[len("data:"):], ",")
	if !found {
		return DataURL{}, true, errors.New("malformed data URL: missing comma")
	}
	isB64 := strings.HasSuffix(meta, ";base64")
	mt := strings.TrimSuffix(meta, ";base64")
	if mt == "" {
		mt = "text/plain"
	}
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	if isB64 {
		if base64.StdEncoding.DecodedLen(len(payload)) > DefaultMaxBytes {
			return DataURL{}, true, ErrTooLarge
		}
		if _, err := base64.StdEncoding.DecodeString(payload); err != nil {
			return DataURL{}, true, fmt.Errorf("malformed data URL: invalid base64: %w", err)
		}
		return DataURL{MediaType: mt, Base64: payload}, true, nil
	}
	raw, err := url.PathUnescape(payload)
	if err != nil {
		return DataURL{}, true, fmt.Errorf("malformed data URL: %w", err)
	}
	return DataURL{MediaType: mt, Base64: base64.StdEncoding.EncodeToString([]byte(raw))}, true, nil
}

// Fetcher downloads images by http(s) URL.
type Fetcher struct {
	Client   *http.Client
	MaxBytes int64
}

// NewFetcher returns a Fetcher with a timeout and size limit. Unless
// allowPrivate is set, connections to loopback, private, link-local,
// carrier-NAT and other non-public addresses are refused at dial time
// (after DNS resolution, so DNS names and rebinding cannot get around it,
// and for every redirect hop); cloud metadata endpoints are refused always.
// Proxy environment variables are ignored: a proxy would dial on the
// gateway's behalf, out of the guard's reach.
func NewFetcher(timeout time.Duration, maxBytes int64, allowPrivate bool) *Fetcher {
	return newFetcher(timeout, maxBytes, func(ap netip.AddrPort) error { return checkAddr(ap.Addr(), allowPrivate) })
}

func newFetcher(timeout time.Duration, maxBytes int64, allow func(netip.AddrPort) error) *Fetcher {
	d := &net.Dialer{Timeout: timeout, Control: dialGuard(allow)}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	tr := &http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: timeout, ResponseHeaderTimeout: timeout,
		ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second}
	client := &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}}
	return &Fetcher{Client: client, MaxBytes: maxBytes}
}

// maxRedirects bounds the redirect hops of one image fetch.
const maxRedirects = 5

// Fetch implements translate.MediaFetcher. It also accepts data: URLs.
// The answer must be an image (by Content-Type, or sniffed when the server
// does not say), else ErrNotImage.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (string, []byte, error) {
	if d, ok, err := ParseDataURL(rawURL); ok {
		if err != nil {
			return "", nil, err
		}
		if int64(base64.StdEncoding.DecodedLen(len(d.Base64))) > f.MaxBytes+2 {
			return "", nil, ErrTooLarge
		}
		b, err := base64.StdEncoding.DecodeString(d.Base64)
		if err != nil {
			return "", nil, err
		}
		if int64(len(b)) > f.MaxBytes {
			return "", nil, ErrTooLarge
		}
		return d.MediaType, b, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", nil, fmt.Errorf("image URL must be an http(s) or data URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Accept", "image/*")
	resp, err := f.Client.Do(req)
	if err != nil {
		if errors.Is(err, ErrForbiddenAddress) {
			return "", nil, ErrForbiddenAddress
		}
		return "", nil, fmt.Errorf("fetch image %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("fetch image %s: status %d", u.Redacted(), resp.StatusCode)
	}
	if resp.ContentLength > f.MaxBytes {
		return "", nil, ErrTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, f.MaxBytes+1))
	if err != nil {
		return "", nil, fmt.Errorf("fetch image %s: %w", u.Redacted(), err)
	}
	if int64(len(b)) > f.MaxBytes {
		return "", nil, ErrTooLarge
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "" || mt == "application/octet-stream" || mt == "binary/octet-stream" {
		mt = http.DetectContentType(b)
		if i := strings.IndexByte(mt, ';'); i >= 0 {
			mt = mt[:i]
		}
	}
	if !strings.HasPrefix(mt, "image/") {
		return "", nil, fmt.Errorf("fetch image %s: %w (got %s)", u.Redacted(), ErrNotImage, mt)
	}
	return mt, b, nil
}
