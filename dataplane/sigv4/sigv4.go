// Package sigv4 signs HTTP requests with AWS Signature Version 4 (header
// form), as Bedrock requires. It follows the published algorithm and is
// checked against AWS's signing test suite and the AWS SDK for Go; it exists
// so the data plane does not link the SDK for one HMAC chain.
//
// Derived signing keys are cached per credential, day, region and service,
// so a request costs one HMAC over the string to sign plus the hashing.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// Algorithm is the SigV4 algorithm identifier.
const Algorithm = "AWS4-HMAC-SHA256"

// EmptyPayloadHash is the hex SHA-256 of an empty body.
const EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// Header names set by Sign.
const (
	HeaderDate          = "X-Amz-Date"
	HeaderSecurityToken = "X-Amz-Security-Token"
	HeaderAuthorization = "Authorization"
)

const (
	timeFormat = "20060102T150405Z"
	dateFormat = "20060102"
)

// ErrNoCredentials is returned when the access key or secret is missing.
var ErrNoCredentials = errors.New("sigv4: access key id and secret access key are required")

// Credentials are static AWS credentials. Secret: never log them.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken is set for temporary (STS) credentials; it is sent as
	// X-Amz-Security-Token and signed.
	SessionToken string
}

// ignoredHeaders are never signed: hop-by-hop or rewritten by proxies and
// clients (the same set the AWS SDKs ignore), plus Content-Length, whose
// value the HTTP client owns.
var ignoredHeaders = map[string]bool{
	"authorization":     true,
	"user-agent":        true,
	"x-amzn-trace-id":   true,
	"expect":            true,
	"transfer-encoding": true,
	"content-length":    true,
	"connection":        true,
}

// Signer signs requests. The zero value is ready to use and safe for
// concurrent use.
type Signer struct {
	mu   sync.Mutex
	keys map[keyID][]byte
}

type keyID struct {
	accessKey, secret, date, region, service string
}

// maxCachedKeys bounds the derived-key cache; a table has few AWS providers,
// and keys change daily.
const maxCachedKeys = 256

// PayloadHash returns the lowercase hex SHA-256 of body.
func PayloadHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// Sign adds X-Amz-Date, X-Amz-Security-Token (temporary credentials) and
// Authorization to req. payloadHash is the hex SHA-256 of the body that will
// be sent (EmptyPayloadHash for none). Every header already on req is
// signed except ignoredHeaders, so set all headers before signing and do not
// change them afterwards.
func (s *Signer) Sign(req *http.Request, payloadHash string, creds Credentials, region, service string, now time.Time) error {
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return ErrNoCredentials
	}
	now = now.UTC()
	amzDate := now.Format(timeFormat)
	date := amzDate[:len(dateFormat)]
	req.Header.Set(HeaderDate, amzDate)
	if creds.SessionToken != "" {
		req.Header.Set(HeaderSecurityToken, creds.SessionToken)
	} else {
		req.Header.Del(HeaderSecurityToken)
	}
	canonical, signed := canonicalRequest(req, payloadHash)
	scope := date + "/" + region + "/" + service + "/aws4_request"
	sts := stringToSign(amzDate, scope, canonical)
	key := s.signingKey(creds, date, region, service)
	sig := hmacSHA256(key, sts)

	var b strings.Builder
	b.Grow(len(Algorithm) + len(creds.AccessKeyID) + len(scope) + len(signed) + 64 + 40)
	b.WriteString(Algorithm)
	b.WriteString(" Credential=")
	b.WriteString(creds.AccessKeyID)
	b.WriteByte('/')
	b.WriteString(scope)
	b.WriteString(", SignedHeaders=")
	b.WriteString(signed)
	b.WriteString(", Signature=")
	b.WriteString(hex.EncodeToString(sig))
	req.Header.Set(HeaderAuthorization, b.String())
	return nil
}

func (s *Signer) signingKey(c Credentials, date, region, service string) []byte {
	id := keyID{c.AccessKeyID, c.SecretAccessKey, date, region, service}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[id]; ok {
		return k
	}
	if s.keys == nil || len(s.keys) >= maxCachedKeys {
		s.keys = make(map[keyID][]byte)
	}
	k := deriveKey(c.SecretAccessKey, date, region, service)
	s.keys[id] = k
	return k
}

// deriveKey computes kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date),
// region), service), "aws4_request").
func deriveKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

func stringToSign(amzDate, scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

// canonicalRequest returns the canonical request and the signed header list.
func canonicalRequest(req *http.Request, payloadHash string) (canonical, signedHeaders string) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	type kv struct{ k, v string }
	hs := make([]kv, 0, len(req.Header)+1)
	hs = append(hs, kv{"host", canonicalValue(host)})
	for name, values := range req.Header {
		lname := strings.ToLower(name)
		if ignoredHeaders[lname] || lname == "host" {
			continue
		}
		vs := make([]string, len(values))
		for i, v := range values {
			vs[i] = canonicalValue(v)
		}
		hs = append(hs, kv{lname, strings.Join(vs, ",")})
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].k < hs[j].k })

	var b, sh strings.Builder
	b.WriteString(req.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(wirePath(req.URL)))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(req.URL.RawQuery))
	b.WriteByte('\n')
	for i, h := range hs {
		b.WriteString(h.k)
		b.WriteByte(':')
		b.WriteString(h.v)
		b.WriteByte('\n')
		if i > 0 {
			sh.WriteByte(';')
		}
		sh.WriteString(h.k)
	}
	b.WriteByte('\n')
	b.WriteString(sh.String())
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String(), sh.String()
}

// wirePath is the path exactly as it will appear on the request line.
func wirePath(u *url.URL) string {
	if u.Opaque != "" {
		// "//host/path" form: the path starts after the authority.
		p := u.Opaque
		if strings.HasPrefix(p, "//") {
			if i := strings.IndexByte(p[2:], '/'); i >= 0 {
				return p[2+i:]
			}
			return "/"
		}
		return p
	}
	return u.EscapedPath()
}

// canonicalURI URI-encodes the wire path once more, keeping '/', as SigV4
// requires for every service but S3. A path segment already sent
// percent-encoded ("%3A" in a Bedrock model ID) is therefore signed as
// "%253A", which is what AWS computes on its side.
func canonicalURI(path string) string {
	if path == "" {
		return "/"
	}
	return escape(path, false)
}

// canonicalQuery sorts the query by encoded name then value, and encodes
// names and values with %20 for spaces.
func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	type kv struct{ k, v string }
	var ps []kv
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		uk, err1 := url.QueryUnescape(k)
		uv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			uk, uv = k, v
		}
		ps = append(ps, kv{escape(uk, true), escape(uv, true)})
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].k != ps[j].k {
			return ps[i].k < ps[j].k
		}
		return ps[i].v < ps[j].v
	})
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// canonicalValue trims a header value and collapses runs of spaces.
func canonicalValue(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(c)
	}
	return b.String()
}

// EscapePathSegment percent-encodes every byte of s except the RFC 3986
// unreserved characters, including '/' and ':'. It is how AWS encodes a
// path label such as a Bedrock model ID or ARN in a request URL.
func EscapePathSegment(s string) string { return escape(s, true) }

// escape percent-encodes all but unreserved bytes; '/' is kept unless
// encodeSlash is set.
func escape(s string, encodeSlash bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) && (encodeSlash || s[i] != '/') {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexUpper = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (!encodeSlash && c == '/') {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexUpper[c>>4], hexUpper[c&15])
	}
	return string(b)
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
