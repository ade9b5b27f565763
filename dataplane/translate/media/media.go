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
// loopback or link-local address and private fetches are not allowed.
var ErrForbiddenAddress = errors.New("image URL resolves to a forbidden address")

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
// allowPrivate is set, connections to loopback, private, link-local and
// unspecified addresses are refused at dial time (after DNS resolution, so
// DNS rebinding cannot get around it).
func NewFetcher(timeout time.Duration, maxBytes int64, allowPrivate bool) *Fetcher {
	d := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip := net.ParseIP(host)
			if ip == nil || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
				ip.IsLinkLocalMulticast() || ip.IsUnspecified() || ip.IsMulticast() {
				return ErrForbiddenAddress
			}
			return nil
		}
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	tr := &http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: timeout, ResponseHeaderTimeout: timeout}
	return &Fetcher{Client: &http.Client{Transport: tr, Timeout: timeout}, MaxBytes: maxBytes}
}

// Fetch implements translate.MediaFetcher. It also accepts data: URLs.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (string, []byte, error) {
	if d, ok, err := ParseDataURL(rawURL); ok {
		if err != nil {
			return "", nil, err
		}
		b, err := base64.StdEncoding.DecodeString(d.Base64)
		return d.MediaType, b, err
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", nil, fmt.Errorf("image URL must be an http(s) or data URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", nil, err
	}
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
	b, err := io.ReadAll(io.LimitReader(resp.Body, f.MaxBytes+1))
	if err != nil {
		return "", nil, fmt.Errorf("fetch image %s: %w", u.Redacted(), err)
	}
	if int64(len(b)) > f.MaxBytes {
		return "", nil, ErrTooLarge
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "" || mt == "application/octet-stream" {
		mt = http.DetectContentType(b)
		if i := strings.IndexByte(mt, ';'); i >= 0 {
			mt = mt[:i]
		}
	}
	return mt, b, nil
}
