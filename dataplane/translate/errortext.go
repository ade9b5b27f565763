package translate

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// MaxErrorSnippet bounds how much of a non-JSON upstream error body is
// quoted back to the client.
const MaxErrorSnippet = 512

var (
	snippetTagRE   = regexp.MustCompile(`(?s)<script.*?</script>|<style.*?</style>|<[^>]*>`)
	snippetSpaceRE = regexp.MustCompile(`\s+`)
)

// ErrorSnippet renders a non-JSON error body (a proxy's HTML page, a
// plain-text message) as one short line: HTML tags dropped, whitespace
// collapsed, credentials masked by redact (when not nil), invalid UTF-8
// replaced, cut at MaxErrorSnippet bytes on a UTF-8 boundary.
func ErrorSnippet(body []byte, redact func(string) string) string {
	if len(body) > 64<<10 {
		body = body[:64<<10]
	}
	s := string(body)
	if strings.Contains(s, "<") {
		s = snippetTagRE.ReplaceAllString(s, " ")
	}
	s = strings.TrimSpace(snippetSpaceRE.ReplaceAllString(s, " "))
	if redact != nil {
		s = redact(s)
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) > MaxErrorSnippet {
		cut := MaxErrorSnippet - len("...")
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}
