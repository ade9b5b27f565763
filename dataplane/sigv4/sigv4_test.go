package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsv4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The AWS SigV4 test suite's fixed inputs.
var (
	suiteCreds = Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	suiteTime  = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
)

const suiteToken = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

// TestAWSSuite signs requests from AWS's aws-sig-v4-test-suite and compares
// the Authorization header with the published one.
func TestAWSSuite(t *testing.T) {
	type hdr struct{ k, v string }
	tests := []struct {
		name    string
		method  string
		url     string
		opaque  string // raw request-line path, when it is not valid URL syntax
		headers []hdr
		body    string
		token   string
		signed  string
		sig     string
	}{
		{name: "get-vanilla", method: "GET", url: "https://example.amazonaws.com/",
			signed: "host;x-amz-date", sig: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{name: "get-vanilla-query-order-key-case", method: "GET", url: "https://example.amazonaws.com/?Param2=value2&Param1=value1",
			signed: "host;x-amz-date", sig: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{name: "get-vanilla-empty-query-key", method: "GET", url: "https://example.amazonaws.com/?Param1=value1",
			signed: "host;x-amz-date", sig: "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
		{name: "get-vanilla-query-unreserved", method: "GET",
			url:    "https://example.amazonaws.com/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
			signed: "host;x-amz-date", sig: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
		{name: "get-vanilla-utf8-query", method: "GET", url: "https://example.amazonaws.com/?%E1%88%B4=bar",
			signed: "host;x-amz-date", sig: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
		{name: "get-unreserved", method: "GET", url: "https://example.amazonaws.com/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
			signed: "host;x-amz-date", sig: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
		{name: "get-utf8", method: "GET", url: "https://example.amazonaws.com/", opaque: "/ሴ",
			signed: "host;x-amz-date", sig: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
		{name: "get-header-key-duplicate", method: "GET", url: "https://example.amazonaws.com/",
			headers: []hdr{{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}},
			signed:  "host;my-header1;x-amz-date", sig: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
		{name: "get-header-value-order", method: "GET", url: "https://example.amazonaws.com/",
			headers: []hdr{{"My-Header1", "value4"}, {"My-Header1", "value1"}, {"My-Header1", "value3"}, {"My-Header1", "value2"}},
			signed:  "host;my-header1;x-amz-date", sig: "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
		{name: "get-header-value-trim", method: "GET", url: "https://example.amazonaws.com/",
			headers: []hdr{{"My-Header1", " value1"}, {"My-Header2", ` "a   b   c" `}},
			signed:  "host;my-header1;my-header2;x-amz-date", sig: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
		{name: "post-vanilla", method: "POST", url: "https://example.amazonaws.com/",
			signed: "host;x-amz-date", sig: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
		{name: "post-vanilla-query", method: "POST", url: "https://example.amazonaws.com/?Param1=value1",
			signed: "host;x-amz-date", sig: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
		{name: "post-header-key-sort", method: "POST", url: "https://example.amazonaws.com/",
			headers: []hdr{{"My-Header1", "value1"}},
			signed:  "host;my-header1;x-amz-date", sig: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
		{name: "post-header-value-case", method: "POST", url: "https://example.amazonaws.com/",
			headers: []hdr{{"My-Header1", "VALUE1"}},
			signed:  "host;my-header1;x-amz-date", sig: "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
		{name: "post-sts-header-before", method: "POST", url: "https://example.amazonaws.com/", token: suiteToken,
			signed: "host;x-amz-date;x-amz-security-token", sig: "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
		{name: "post-x-www-form-urlencoded", method: "POST", url: "https://example.amazonaws.com/",
			headers: []hdr{{"Content-Type", "application/x-www-form-urlencoded"}}, body: "Param1=value1",
			signed: "content-type;host;x-amz-date", sig: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
		{name: "post-x-www-form-urlencoded-parameters", method: "POST", url: "https://example.amazonaws.com/",
			headers: []hdr{{"Content-Type", "application/x-www-form-urlencoded; charset=utf8"}}, body: "Param1=value1",
			signed: "content-type;host;x-amz-date", sig: "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"},
		{name: "post-vanilla-query-nonunreserved", method: "POST",
			url:    "https://example.amazonaws.com/?" + url.Values{"@#$%^": {""}, "+": {"/,?><`\";:\\|][{}"}}.Encode(),
			signed: "host;x-amz-date", sig: "66c82657c86e26fb25238d0e69f011edc4c6df5ae71119d7cb98ed9b87393c1e"},
		// The IAM ListUsers example of the SigV4 documentation.
		{name: "iam-list-users", method: "GET", url: "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
			headers: []hdr{{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}},
			signed:  "content-type;host;x-amz-date", sig: "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"},
	}
	var s Signer
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.opaque != "" {
				req.URL.Opaque = tt.opaque
			}
			for _, h := range tt.headers {
				req.Header.Add(h.k, h.v)
			}
			req.Header.Set("User-Agent", "ignored/1.0")
			creds := suiteCreds
			creds.SessionToken = tt.token
			service := "service"
			if strings.HasPrefix(tt.name, "iam") {
				service = "iam"
			}
			if err := s.Sign(req, PayloadHash([]byte(tt.body)), creds, "us-east-1", service, suiteTime); err != nil {
				t.Fatal(err)
			}
			want := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/" + service + "/aws4_request, SignedHeaders=" + tt.signed + ", Signature=" + tt.sig
			if got := req.Header.Get("Authorization"); got != want {
				t.Errorf("Authorization\n got %s\nwant %s", got, want)
			}
			if got := req.Header.Get("X-Amz-Date"); got != "20150830T123600Z" {
				t.Errorf("X-Amz-Date = %q", got)
			}
		})
	}
}

func TestIAMExampleSteps(t *testing.T) {
	req, _ := http.NewRequest("GET", "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08", nil)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("X-Amz-Date", "20150830T123600Z")
	canonical, signed := canonicalRequest(req, EmptyPayloadHash)
	wantCanonical := "GET\n/\nAction=ListUsers&Version=2010-05-08\n" +
		"content-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n" +
		"content-type;host;x-amz-date\n" + EmptyPayloadHash
	if canonical != wantCanonical || signed != "content-type;host;x-amz-date" {
		t.Fatalf("canonical request\n%s\nwant\n%s", canonical, wantCanonical)
	}
	sts := stringToSign("20150830T123600Z", "20150830/us-east-1/iam/aws4_request", canonical)
	if !strings.HasSuffix(sts, "\nf536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59") {
		t.Errorf("string to sign:\n%s", sts)
	}
	key := deriveKey(suiteCreds.SecretAccessKey, "20150830", "us-east-1", "iam")
	if got := hex.EncodeToString(key); got != "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9" {
		t.Errorf("signing key %s", got)
	}
}

// hm is the test's own HMAC-SHA256, independent of the package's helpers.
func hm(key []byte, s string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(s))
	return h.Sum(nil)
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// bedrockRequest is a Converse call with a model ID that needs escaping.
func bedrockRequest(t *testing.T, body string) *http.Request {
	t.Helper()
	u := &url.URL{
		Scheme:  "https",
		Host:    "bedrock-runtime.eu-central-1.amazonaws.com",
		Path:    "/model/anthropic.claude-3-5-sonnet-20240620-v1:0/converse",
		RawPath: "/model/" + EscapePathSegment("anthropic.claude-3-5-sonnet-20240620-v1:0") + "/converse",
	}
	req, err := http.NewRequest("POST", u.String(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return req
}

// TestBedrockPostKnownAnswer signs a Bedrock Converse POST and checks it
// against a signature computed here step by step from the specification.
func TestBedrockPostKnownAnswer(t *testing.T) {
	body := `{"messages":[{"role":"user","content":[{"text":"Hello"}]}],"inferenceConfig":{"maxTokens":512}}`
	req := bedrockRequest(t, body)
	if got := req.URL.EscapedPath(); got != "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse" {
		t.Fatalf("wire path %s", got)
	}
	creds := Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: "FQoGZXIvYXdzEXAMPLE"}
	now := time.Date(2024, 7, 1, 9, 30, 5, 0, time.FixedZone("CEST", 2*3600))
	var s Signer
	if err := s.Sign(req, PayloadHash([]byte(body)), creds, "eu-central-1", "bedrock", now); err != nil {
		t.Fatal(err)
	}

	// Step 1: canonical request. The path label is percent-encoded on the
	// wire (%3A) and encoded once more for signing (%253A).
	canonical := "POST\n" +
		"/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse\n" +
		"\n" +
		"accept:application/json\n" +
		"content-type:application/json\n" +
		"host:bedrock-runtime.eu-central-1.amazonaws.com\n" +
		"x-amz-date:20240701T073005Z\n" +
		"x-amz-security-token:FQoGZXIvYXdzEXAMPLE\n" +
		"\n" +
		"accept;content-type;host;x-amz-date;x-amz-security-token\n" +
		sha(body)
	// Step 2: string to sign.
	scope := "20240701/eu-central-1/bedrock/aws4_request"
	sts := "AWS4-HMAC-SHA256\n20240701T073005Z\n" + scope + "\n" + sha(canonical)
	// Step 3: signing key and signature.
	k := hm([]byte("AWS4"+creds.SecretAccessKey), "20240701")
	k = hm(k, "eu-central-1")
	k = hm(k, "bedrock")
	k = hm(k, "aws4_request")
	sig := hex.EncodeToString(hm(k, sts))

	want := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/" + scope +
		", SignedHeaders=accept;content-type;host;x-amz-date;x-amz-security-token, Signature=" + sig
	if got := req.Header.Get("Authorization"); got != want {
		t.Fatalf("Authorization\n got %s\nwant %s", got, want)
	}
	if got := req.Header.Get("X-Amz-Security-Token"); got != creds.SessionToken {
		t.Errorf("X-Amz-Security-Token = %q", got)
	}
	// The cached key must give the same answer on a second request.
	req2 := bedrockRequest(t, body)
	if err := s.Sign(req2, PayloadHash([]byte(body)), creds, "eu-central-1", "bedrock", now); err != nil {
		t.Fatal(err)
	}
	if req2.Header.Get("Authorization") != want {
		t.Error("second signature with the cached key differs")
	}
}

// TestMatchesSDK cross-checks against the AWS SDK for Go v2 signer.
func TestMatchesSDK(t *testing.T) {
	bodies := []string{"", `{"messages":[]}`, strings.Repeat("x", 5000)}
	models := []string{"anthropic.claude-3-5-sonnet-20240620-v1:0", "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0", "amazon.nova-pro-v1:0"}
	var s Signer
	for _, tok := range []string{"", "session/token+="} {
		for _, model := range models {
			for _, body := range bodies {
				u := &url.URL{Scheme: "https", Host: "bedrock-runtime.us-west-2.amazonaws.com",
					Path: "/model/" + model + "/converse-stream", RawPath: "/model/" + EscapePathSegment(model) + "/converse-stream"}
				mk := func() *http.Request {
					r, _ := http.NewRequest("POST", u.String(), strings.NewReader(body))
					r.Header.Set("Content-Type", "application/json")
					r.Header.Set("X-Custom", "  a  b ")
					// The SDK also signs Content-Length; the data plane does not
					// (the HTTP client owns it), so hide it from the SDK.
					r.ContentLength = 0
					return r
				}
				ours, theirs := mk(), mk()
				now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
				ph := PayloadHash([]byte(body))
				creds := Credentials{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "secret/+key", SessionToken: tok}
				if err := s.Sign(ours, ph, creds, "us-west-2", "bedrock", now); err != nil {
					t.Fatal(err)
				}
				err := awsv4.NewSigner().SignHTTP(context.Background(),
					aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: tok},
					theirs, ph, "bedrock", "us-west-2", now)
				if err != nil {
					t.Fatal(err)
				}
				if a, b := ours.Header.Get("Authorization"), theirs.Header.Get("Authorization"); a != b {
					t.Errorf("model %s token %q body %d bytes:\n ours %s\n  sdk %s", model, tok, len(body), a, b)
				}
			}
		}
	}
}

func TestSignErrorsAndHeaders(t *testing.T) {
	var s Signer
	req, _ := http.NewRequest("POST", "https://example.amazonaws.com/", nil)
	if err := s.Sign(req, EmptyPayloadHash, Credentials{AccessKeyID: "a"}, "r", "s", suiteTime); err != ErrNoCredentials {
		t.Errorf("missing secret: %v", err)
	}
	// A stale token header from an earlier attempt must not survive a
	// signature with permanent credentials.
	req.Header.Set(HeaderSecurityToken, "stale")
	if err := s.Sign(req, EmptyPayloadHash, suiteCreds, "us-east-1", "service", suiteTime); err != nil {
		t.Fatal(err)
	}
	if req.Header.Get(HeaderSecurityToken) != "" {
		t.Error("stale security token kept")
	}
	if !strings.HasSuffix(req.Header.Get("Authorization"), "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b") {
		t.Errorf("re-signing an already signed request changed the result: %s", req.Header.Get("Authorization"))
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, seg, path string }{
		{"a:b/c d", "a%3Ab%2Fc%20d", "a%3Ab/c%20d"},
		{"-._~AZaz09", "-._~AZaz09", "-._~AZaz09"},
		{"é%", "%C3%A9%25", "%C3%A9%25"},
	}
	for _, tt := range tests {
		if got := EscapePathSegment(tt.in); got != tt.seg {
			t.Errorf("EscapePathSegment(%q) = %q, want %q", tt.in, got, tt.seg)
		}
		if got := escape(tt.in, false); got != tt.path {
			t.Errorf("escape(%q, false) = %q, want %q", tt.in, got, tt.path)
		}
	}
	if got := canonicalValue("  a   b  c "); got != "a b c" {
		t.Errorf("canonicalValue = %q", got)
	}
}

func BenchmarkSign(b *testing.B) {
	body := []byte(`{"messages":[{"role":"user","content":[{"text":"Hello"}]}],"inferenceConfig":{"maxTokens":512}}`)
	u := "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
	req, _ := http.NewRequest("POST", u, nil)
	req.Header.Set("Content-Type", "application/json")
	creds := Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", SessionToken: "token"}
	var s Signer
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Sign(req, PayloadHash(body), creds, "us-east-1", "bedrock", suiteTime); err != nil {
			b.Fatal(err)
		}
	}
}
