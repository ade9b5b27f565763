package guard

import (
	"encoding/base64"
	"net/netip"
	"strings"

	json "github.com/go-json-experiment/json/v1"
)

// Kind is a built-in sensitive-data detector. The names are the CRD's
// Detector enum, so a policy's detector list maps onto kinds one to one.
type Kind uint8

// Built-in detectors. Credentials come last: Kind.Credential relies on it.
const (
	KindEmail Kind = iota
	KindPhone
	KindPaymentCard
	KindIBAN
	KindUSSSN
	KindIPAddress
	KindAWSAccessKey
	KindPrivateKey
	KindBearerToken
	KindJWT
	KindAPIKey
	numKinds
)

var kindNames = [numKinds]string{
	"Email", "Phone", "PaymentCard", "IBAN", "USSSN", "IPAddress",
	"AWSAccessKey", "PrivateKey", "BearerToken", "JWT", "APIKey",
}

// kindTags name the placeholders: [EMAIL_1], [PAYMENT_CARD_2], ...
var kindTags = [numKinds]string{
	"EMAIL", "PHONE", "PAYMENT_CARD", "IBAN", "US_SSN", "IP_ADDRESS",
	"AWS_ACCESS_KEY", "PRIVATE_KEY", "BEARER_TOKEN", "JWT", "API_KEY",
}

// String returns the detector name used in policies, headers and metrics.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "Unknown"
}

// Credential reports whether k detects a secret. Credentials are never
// restored into answers: a prompt-injected model could otherwise place the
// secret into a tool call aimed at an attacker.
func (k Kind) Credential() bool { return k >= KindAWSAccessKey && k < numKinds }

// ParseKind maps a detector name to its Kind.
func ParseKind(name string) (Kind, bool) {
	for k, n := range kindNames {
		if n == name {
			return Kind(k), true
		}
	}
	return 0, false
}

// Kinds is a set of built-in detectors.
type Kinds uint16

// AllKinds runs every built-in detector.
const AllKinds Kinds = 1<<numKinds - 1

// Has reports whether k is in the set.
func (ks Kinds) Has(k Kind) bool { return ks&(1<<k) != 0 }

// With returns the set plus k.
func (ks Kinds) With(k Kind) Kinds { return ks | 1<<k }

// Match is one finding: s[Start:End] is the sensitive value. Kind is a
// built-in Kind, or a custom pattern's id (>= numKinds) inside the guard.
type Match struct {
	Start, End int
	Kind       Kind
}

// Character classes, one table lookup per byte.
const (
	cDigit  = 1 << iota // 0-9
	cUpper              // A-Z
	cLower              // a-z
	cWord               // [A-Za-z0-9_]: a byte that continues a word
	cHex                // [0-9A-Fa-f]
	cToken              // [A-Za-z0-9_-]: API key bodies, base64url
	cLocal              // e-mail local part: [A-Za-z0-9._%+-]
	cBearer             // RFC 6750 b64token: [A-Za-z0-9-._~+/=]
)

var class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		var v uint8
		switch {
		case b >= '0' && b <= '9':
			v |= cDigit | cWord | cHex | cToken | cLocal | cBearer
		case b >= 'A' && b <= 'Z':
			v |= cUpper | cWord | cToken | cLocal | cBearer
			if b <= 'F' {
				v |= cHex
			}
		case b >= 'a' && b <= 'z':
			v |= cLower | cWord | cToken | cLocal | cBearer
			if b <= 'f' {
				v |= cHex
			}
		}
		switch b {
		case '_':
			v |= cWord | cToken | cLocal | cBearer
		case '-':
			v |= cToken | cLocal | cBearer
		case '.', '+':
			v |= cLocal | cBearer
		case '%':
			v |= cLocal
		case '~', '/', '=':
			v |= cBearer
		}
		t[c] = v
	}
	return t
}()

func is(c byte, m uint8) bool { return class[c]&m != 0 }
func isDigit(c byte) bool     { return c >= '0' && c <= '9' }
func isWord(c byte) bool      { return class[c]&cWord != 0 }

// Scan appends the findings of the detectors in ks in s to dst, ordered by
// Start and not overlapping. It runs in time linear in len(s): the loop
// looks at each byte once, detectors start only at word starts (or at '@'
// and "-----BEGIN "), every detector either reads a bounded window or
// consumes a run it then skips, and the one unbounded search (a PEM END
// line) is memoised.
func Scan(dst []Match, s string, ks Kinds) []Match {
	if ks == 0 || len(s) == 0 {
		return dst
	}
	base := len(dst)
	var pem pemMemo
	sorted := true
	n := len(s)
	for i := 0; i < n; {
		c := s[i]
		if c == '@' {
			if ks.Has(KindEmail) {
				if st, e := email(s, i); e > 0 {
					if len(dst) > base && st < dst[len(dst)-1].End {
						sorted = false
					}
					dst = append(dst, Match{st, e, KindEmail})
					i = e
					continue
				}
			}
			i++
			continue
		}
		if c == '-' && ks.Has(KindPrivateKey) && (i == 0 || s[i-1] != '-') {
			if e := pem.privateKey(s, i); e > 0 {
				dst = append(dst, Match{i, e, KindPrivateKey})
				i = e
				continue
			}
		}
		if class[c]&(cWord) == 0 && c != '+' && c != '(' && c != ':' || i > 0 && isWord(s[i-1]) {
			i++
			continue
		}
		k, st, e := wordStart(s, i, c, ks)
		if e > 0 {
			dst = append(dst, Match{st, e, k})
			i = e
			continue
		}
		i++
	}
	if !sorted {
		dst = dst[:base+normalize(dst[base:])]
	}
	return dst
}

// normalize sorts ms by Start (insertion sort: the input is nearly sorted)
// and drops matches that overlap an earlier one, keeping the longer of two
// that start together. It returns the new length.
func normalize(ms []Match) int {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && (ms[j].Start < ms[j-1].Start || ms[j].Start == ms[j-1].Start && ms[j].End > ms[j-1].End); j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
	out := 0
	for _, m := range ms {
		if out > 0 && m.Start < ms[out-1].End {
			continue
		}
		ms[out] = m
		out++
	}
	return out
}

// wordStart tries the detectors that can start with byte c at i, which is
// the first byte of a word (or a '+', '(' or ':').
func wordStart(s string, i int, c byte, ks Kinds) (Kind, int, int) {
	switch {
	case isDigit(c):
		if ks.Has(KindIPAddress) {
			if e := ipv4(s, i); e > 0 {
				return KindIPAddress, i, e
			}
		}
		if ks.Has(KindUSSSN) {
			if e := ssn(s, i); e > 0 {
				return KindUSSSN, i, e
			}
		}
		if ks.Has(KindPaymentCard) {
			if e := card(s, i); e > 0 {
				return KindPaymentCard, i, e
			}
		}
		if ks.Has(KindPhone) {
			if e := nationalPhone(s, i); e > 0 {
				return KindPhone, i, e
			}
		}
	case c == '+' || c == '(':
		if ks.Has(KindPhone) {
			if e := phone(s, i); e > 0 {
				return KindPhone, i, e
			}
		}
		return 0, 0, 0
	case c == ':':
	default: // letters and '_'
		if ks.Has(KindBearerToken) && (c == 'B' || c == 'b') {
			if st, e := bearer(s, i); e > 0 {
				return KindBearerToken, st, e
			}
		}
		if ks.Has(KindJWT) && c == 'e' {
			if e := jwt(s, i); e > 0 {
				return KindJWT, i, e
			}
		}
		if ks.Has(KindAWSAccessKey) && c == 'A' {
			if e := awsKey(s, i); e > 0 {
				return KindAWSAccessKey, i, e
			}
		}
		if ks.Has(KindAPIKey) {
			if e := apiKey(s, i); e > 0 {
				return KindAPIKey, i, e
			}
		}
		if ks.Has(KindIBAN) && is(c, cUpper) {
			if e := iban(s, i); e > 0 {
				return KindIBAN, i, e
			}
		}
	}
	if ks.Has(KindIPAddress) && (is(c, cHex) || c == ':') {
		if e := ipv6(s, i); e > 0 {
			return KindIPAddress, i, e
		}
	}
	return 0, 0, 0
}

// endsWord reports whether position p (just after a candidate) is not in
// the middle of a word.
func endsWord(s string, p int) bool { return p >= len(s) || !isWord(s[p]) }

// email detects addr-spec shaped addresses around the '@' at at: a local
// part of at most 64 bytes (read backwards, so bounded) and a domain of at
// least two labels with an alphabetic TLD.
func email(s string, at int) (int, int) {
	st := at
	for st > 0 && at-st < 64 && is(s[st-1], cLocal) {
		st--
	}
	for st < at && s[st] == '.' {
		st++
	}
	if st == at || s[at-1] == '.' {
		return 0, 0
	}
	p := at + 1
	labels, lastStart, lastEnd := 0, 0, 0
	for p < len(s) && p-at <= 254 {
		q := p
		for p < len(s) && p-q < 63 && (isWord(s[p]) && s[p] != '_' || s[p] == '-') {
			p++
		}
		if p == q {
			break
		}
		labels++
		lastStart, lastEnd = q, p
		if p+1 < len(s) && s[p] == '.' && isWord(s[p+1]) && s[p+1] != '_' {
			p++
			continue
		}
		break
	}
	if labels < 2 || !endsWord(s, lastEnd) {
		return 0, 0
	}
	tld := s[lastStart:lastEnd]
	if len(tld) < 2 {
		return 0, 0
	}
	for j := 0; j < len(tld); j++ {
		if !is(tld[j], cUpper|cLower) {
			return 0, 0
		}
	}
	switch strings.ToLower(tld) {
	case "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "avif":
		// image@2x.png: asset names, not addresses.
		return 0, 0
	}
	return st, lastEnd
}

// ipv4 detects dotted-quad addresses: four octets 0-255 without leading
// zeros, not part of a longer dotted run (1.2.3.4.5 is a version or OID),
// and not right after a version word ("version 1.2.3.4", "v 10.0.0.1").
func ipv4(s string, i int) int {
	if i > 0 && s[i-1] == '.' {
		return 0
	}
	p := i
	for oct := 0; oct < 4; oct++ {
		if oct > 0 {
			if p >= len(s) || s[p] != '.' {
				return 0
			}
			p++
		}
		st, v := p, 0
		for p < len(s) && isDigit(s[p]) && p-st < 3 {
			v = v*10 + int(s[p]-'0')
			p++
		}
		if p == st || v > 255 || p-st > 1 && s[st] == '0' {
			return 0
		}
	}
	if p < len(s) && (isWord(s[p]) || s[p] == '.' && p+1 < len(s) && isDigit(s[p+1])) {
		return 0
	}
	if versionBefore(s, i) {
		return 0
	}
	return p
}

// versionBefore reports whether the word before i (skipping blanks) is a
// version marker.
func versionBefore(s string, i int) bool {
	j := i
	for j > 0 && i-j < 4 && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	e := j
	for j > 0 && e-j < 8 && is(s[j-1], cUpper|cLower) {
		j--
	}
	switch strings.ToLower(s[j:e]) {
	case "v", "ver", "version", "release", "build", "firmware":
		return true
	}
	return false
}

// ipv6 detects IPv6 addresses: a run of hex digits, ':' and '.' (for an
// embedded IPv4) of at most 45 bytes that net/netip accepts, with at least
// two colons and four hex digits, so "::", "::1", "a::b" and clock times
// are not flagged.
func ipv6(s string, i int) int {
	if i > 0 && (s[i-1] == ':' || s[i-1] == '.') {
		return 0
	}
	p, colons, hexd := i, 0, 0
	for p < len(s) && p-i <= 45 {
		c := s[p]
		switch {
		case is(c, cHex):
			hexd++
		case c == ':':
			colons++
		case c == '.':
		default:
			goto end
		}
		p++
	}
end:
	if p-i > 45 {
		return 0
	}
	for p > i && s[p-1] == '.' {
		p--
	}
	if p-i >= 2 && s[p-1] == ':' && s[p-2] != ':' {
		p-- // "fe80::1:" at the end of a clause
		colons--
	}
	if colons < 2 || hexd < 4 || !endsWord(s, p) || !ipv6Shape(s[i:p]) {
		return 0
	}
	a, err := netip.ParseAddr(s[i:p])
	if err != nil || !a.Is6() {
		return 0
	}
	return p
}

// ipv6Shape is a cheap, allocation-free pre-check (netip allocates an
// error for every rejected clock time): groups of 1-4 hex digits, eight of
// them or fewer with one "::", an IPv4 tail counting as two.
func ipv6Shape(a string) bool {
	groups, glen, double := 0, 0, false
	for j := 0; j < len(a); j++ {
		switch c := a[j]; {
		case c == ':':
			if j+1 < len(a) && a[j+1] == ':' {
				if double {
					return false
				}
				double = true
				j++
			} else if glen == 0 && j > 0 {
				return false
			}
			if glen > 0 {
				groups++
			}
			glen = 0
		case c == '.':
			// An IPv4 tail: netip validates it; it stands for two groups.
			return groups+2 == 8 || double && groups+2 < 8
		default:
			glen++
			if glen > 4 {
				return false
			}
		}
	}
	if glen > 0 {
		groups++
	}
	return groups == 8 && !double || double && groups < 8
}

// ssn detects US social security numbers written AAA-GG-SSSS (or with
// spaces), with the SSA's rules: area not 000, 666 or 9xx, group not 00,
// serial not 0000, and not the numbers famously printed in advertising.
func ssn(s string, i int) int {
	if len(s)-i < 11 {
		return 0
	}
	t := s[i : i+11]
	sep := t[3]
	if sep != '-' && sep != ' ' || t[6] != sep {
		return 0
	}
	for _, j := range [...]int{0, 1, 2, 4, 5, 7, 8, 9, 10} {
		if !isDigit(t[j]) {
			return 0
		}
	}
	p := i + 11
	if !endsWord(s, p) || p+1 < len(s) && (s[p] == '-' || s[p] == sep) && isDigit(s[p+1]) {
		return 0
	}
	area := atoi(t[0:3])
	group := atoi(t[4:6])
	serial := atoi(t[7:11])
	if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
		return 0
	}
	if t[0:3] == "078" && t[4:6] == "05" && t[7:] == "1120" || t[0:3] == "219" && t[4:6] == "09" && t[7:] == "9999" {
		return 0
	}
	return p
}

func atoi(s string) int {
	v := 0
	for j := 0; j < len(s); j++ {
		v = v*10 + int(s[j]-'0')
	}
	return v
}

// card detects payment card numbers: 13 to 19 digits, optionally grouped by
// one kind of separator (space or dash), with a known issuer prefix and a
// valid Luhn check digit. With separators, the longest prefix of whole
// groups that qualifies is taken ("4111 1111 1111 1111 12/27").
func card(s string, i int) int {
	if i > 1 && (s[i-1] == '.' || s[i-1] == ',') && isDigit(s[i-2]) {
		return 0 // a decimal fraction
	}
	var d [20]byte
	var ends [20]struct{ nd, pos int }
	nd, ng, glen := 0, 0, 0
	var sep byte
	p := i
	complete := true
	for p < len(s) && nd < len(d) {
		c := s[p]
		if isDigit(c) {
			d[nd] = c - '0'
			nd++
			glen++
			p++
			continue
		}
		if (c == ' ' || c == '-') && p+1 < len(s) && isDigit(s[p+1]) && (sep == 0 || sep == c) {
			if glen < 3 || glen > 6 {
				// Cards are printed in groups of 3 to 6 ("4-4-4-4",
				// "4-6-5"); "1 2 3" or "12 34" are something else.
				complete = false
				break
			}
			sep = c
			ends[ng] = struct{ nd, pos int }{nd, p}
			ng++
			glen = 0
			p++
			continue
		}
		break
	}
	if complete && nd < len(d) && endsWord(s, p) {
		ends[ng] = struct{ nd, pos int }{nd, p}
		ng++
	}
	for g := ng - 1; g >= 0; g-- {
		e := ends[g]
		if e.nd < 13 {
			break
		}
		if e.nd <= 19 && cardNumber(d[:e.nd]) {
			return e.pos
		}
	}
	return 0
}

// cardNumber checks the issuer prefix and length, then Luhn.
func cardNumber(d []byte) bool {
	n := len(d)
	pre := func(k int) int {
		v := 0
		for j := 0; j < k; j++ {
			v = v*10 + int(d[j])
		}
		return v
	}
	p2, p4 := pre(2), pre(4)
	ok := false
	switch {
	case d[0] == 4: // Visa
		ok = n == 13 || n == 16 || n == 19
	case p2 == 34 || p2 == 37: // American Express
		ok = n == 15
	case p2 >= 51 && p2 <= 55 || p4 >= 2221 && p4 <= 2720: // Mastercard
		ok = n == 16
	case p4 == 6011 || p2 == 65 || pre(3) >= 644 && pre(3) <= 649: // Discover
		ok = n >= 16
	case p4 >= 3528 && p4 <= 3589: // JCB
		ok = n >= 16
	case p2 == 36 || p2 == 38 || p2 == 39 || pre(3) >= 300 && pre(3) <= 305: // Diners Club
		ok = n >= 14
	case p2 == 62: // UnionPay
		ok = n >= 16
	case p4 == 5018 || p4 == 5020 || p4 == 5038 || p4 == 5893 || p4 == 6304 || p4 == 6759 || p4 == 6761 || p4 == 6762 || p4 == 6763: // Maestro
		ok = true
	}
	return ok && luhn(d)
}

func luhn(d []byte) bool {
	sum := 0
	double := false
	for j := len(d) - 1; j >= 0; j-- {
		v := int(d[j])
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// phone detects international numbers (+ then 8 to 15 digits, E.164, with
// spaces, dashes, dots or a parenthesised group between digits) and North
// American numbers that start with a parenthesised area code.
func phone(s string, i int) int {
	if s[i] == '(' {
		return nanp(s, i)
	}
	if i+1 >= len(s) || s[i+1] < '1' || s[i+1] > '9' {
		return 0
	}
	nd, p := 0, i+1
	for p < len(s) {
		if isDigit(s[p]) {
			nd++
			p++
			continue
		}
		// Up to two separator bytes between digit groups: " ", "-", ".",
		// " (", ") ", "(", ")".
		q := p
		for q < len(s) && q-p < 2 && strings.IndexByte(" -.()", s[q]) >= 0 {
			q++
		}
		if q == p || q >= len(s) || !isDigit(s[q]) {
			break
		}
		p = q
	}
	if nd < 8 || nd > 15 || !endsWord(s, p) {
		return 0
	}
	return p
}

// nationalPhone detects national formats that start with a digit: North
// American NXX-NXX-XXXX (also with dots or spaces, optional leading 1) and
// trunk-prefixed European formats (0 then 9 or 10 more digits in groups of
// 2-5 separated by spaces or dashes: "020 7946 0958", "06 12 34 56 78").
// Unseparated digit runs are never phone numbers here: they are too often
// ids, amounts or timestamps.
func nationalPhone(s string, i int) int {
	if e := nanp(s, i); e > 0 {
		return e
	}
	if s[i] != '0' || i+1 >= len(s) || s[i+1] == '0' {
		return 0
	}
	nd, groups, glen, p := 0, 1, 0, i
	var sep byte
	first := 0
	for p < len(s) {
		c := s[p]
		if isDigit(c) {
			nd++
			glen++
			p++
			continue
		}
		if (c == ' ' || c == '-') && (sep == 0 || sep == c) && p+1 < len(s) && isDigit(s[p+1]) {
			if glen < 2 || glen > 5 {
				return 0
			}
			if groups == 1 {
				first = glen
			}
			sep = c
			groups++
			glen = 0
			p++
			continue
		}
		break
	}
	if sep == 0 || first < 2 || glen < 2 || nd < 10 || nd > 11 || !endsWord(s, p) {
		return 0
	}
	return p
}

// nanp detects [1 ](NXX) NXX-XXXX, NXX-NXX-XXXX, NXX.NXX.XXXX and
// NXX NXX XXXX (N = 2-9).
func nanp(s string, i int) int {
	p := i
	if p+1 < len(s) && s[p] == '1' && (s[p+1] == '-' || s[p+1] == ' ' || s[p+1] == '.') {
		p += 2
	}
	paren := p < len(s) && s[p] == '('
	if paren {
		p++
	}
	digits := func(k int) bool {
		if len(s)-p < k || s[p] < '2' && k == 3 {
			return false
		}
		for j := 0; j < k; j++ {
			if !isDigit(s[p+j]) {
				return false
			}
		}
		p += k
		return true
	}
	if !digits(3) {
		return 0
	}
	var sep byte
	if paren {
		if p >= len(s) || s[p] != ')' {
			return 0
		}
		p++
		if p < len(s) && s[p] == ' ' {
			p++
		}
	} else {
		if p >= len(s) || s[p] != '-' && s[p] != '.' && s[p] != ' ' {
			return 0
		}
		sep = s[p]
		p++
	}
	if !digits(3) {
		return 0
	}
	if p >= len(s) || sep != 0 && s[p] != sep || sep == 0 && s[p] != '-' && s[p] != '.' && s[p] != ' ' {
		return 0
	}
	p++
	if len(s)-p < 4 {
		return 0
	}
	for j := 0; j < 4; j++ {
		if !isDigit(s[p+j]) {
			return 0
		}
	}
	p += 4
	if !endsWord(s, p) || p+1 < len(s) && (s[p] == '-' || s[p] == '.') && isDigit(s[p+1]) {
		return 0
	}
	return p
}

// ibanLengths are the IBAN lengths by country (SWIFT IBAN registry).
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
	"BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
	"DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
	"FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
	"GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
	"JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
	"LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27,
	"MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28,
	"PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
	"SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
	"TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}

// iban detects IBANs in electronic (DE89370400440532013000) or print
// (DE89 3704 0044 0532 0130 00) form: a known country, that country's
// length, and the ISO 7064 mod-97 check.
func iban(s string, i int) int {
	if len(s)-i < 15 || !is(s[i+1], cUpper) || !isDigit(s[i+2]) || !isDigit(s[i+3]) {
		return 0
	}
	want := ibanLengths[s[i:i+2]]
	if want == 0 {
		return 0
	}
	var b [34]byte
	nb, p := 0, i
	for p < len(s) && nb < want {
		c := s[p]
		if is(c, cUpper|cDigit) {
			b[nb] = c
			nb++
			p++
			continue
		}
		if c == ' ' && nb%4 == 0 && p+1 < len(s) && is(s[p+1], cUpper|cDigit) {
			p++
			continue
		}
		break
	}
	if nb != want || !endsWord(s, p) {
		return 0
	}
	rem := 0
	add := func(c byte) {
		if isDigit(c) {
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A'+10)) % 97
		}
	}
	for _, c := range b[4:nb] {
		add(c)
	}
	for _, c := range b[:4] {
		add(c)
	}
	if rem != 1 {
		return 0
	}
	return p
}

// awsKey detects AWS access key ids: AKIA (long-term) or ASIA (temporary)
// and 16 more upper-case letters or digits.
func awsKey(s string, i int) int {
	if len(s)-i < 20 || s[i:i+4] != "AKIA" && s[i:i+4] != "ASIA" {
		return 0
	}
	for j := i + 4; j < i+20; j++ {
		if !is(s[j], cUpper|cDigit) {
			return 0
		}
	}
	if !endsWord(s, i+20) {
		return 0
	}
	return i + 20
}

// apiKeyShapes are well-known API key prefixes and the shortest body
// (the rest of the [A-Za-z0-9_-] run) that counts.
var apiKeyShapes = []struct {
	prefix  string
	minBody int
}{
	{"sk-", 20},         // OpenAI (sk-, sk-proj-), Anthropic (sk-ant-), OpenRouter (sk-or-)
	{"sk_live_", 16},    // Stripe
	{"sk_test_", 16},    // Stripe
	{"rk_live_", 16},    // Stripe restricted
	{"ghp_", 30},        // GitHub personal access token
	{"gho_", 30},        // GitHub OAuth
	{"ghu_", 30},        // GitHub user-to-server
	{"ghs_", 30},        // GitHub server-to-server
	{"ghr_", 30},        // GitHub refresh
	{"github_pat_", 40}, // GitHub fine-grained
	{"glpat-", 20},      // GitLab
	{"xoxb-", 10},       // Slack bot
	{"xoxp-", 10},       // Slack user
	{"xoxa-", 10},       // Slack app
	{"xoxr-", 10},       // Slack refresh
	{"xoxs-", 10},       // Slack session
	{"xoxe-", 10},       // Slack export/rotating
	{"AIza", 30},        // Google API key
	{"hf_", 30},         // Hugging Face
	{"npm_", 30},        // npm
	{"pypi-", 40},       // PyPI
}

// apiKeyByFirst indexes apiKeyShapes by first byte, so an ordinary word
// costs one table lookup.
var apiKeyByFirst = func() (t [256][]uint8) {
	for j, k := range apiKeyShapes {
		t[k.prefix[0]] = append(t[k.prefix[0]], uint8(j))
	}
	return t
}()

// apiKey detects the shapes above. Only the start of a token run is tried
// (so each run is read once) and the body must mix letters and digits,
// which keeps "sk-learn-compatible-estimators" out.
func apiKey(s string, i int) int {
	cands := apiKeyByFirst[s[i]]
	if len(cands) == 0 || i > 0 && is(s[i-1], cToken) {
		return 0
	}
	for _, j := range cands {
		k := apiKeyShapes[j]
		if !strings.HasPrefix(s[i:], k.prefix) {
			continue
		}
		p := i + len(k.prefix)
		letter, digit := false, false
		for p < len(s) && is(s[p], cToken) {
			letter = letter || is(s[p], cUpper|cLower)
			digit = digit || isDigit(s[p])
			p++
		}
		if p-i-len(k.prefix) >= k.minBody && letter && digit {
			return p
		}
		return 0
	}
	return 0
}

// bearer detects "Bearer <token>" (any case) and returns the token's span:
// the scheme word is not sensitive and stays readable. The token must be
// 16+ bytes mixing letters and digits, so "Bearer authentication" and
// "Bearer YOUR_TOKEN_HERE" are not flagged.
func bearer(s string, i int) (int, int) {
	if len(s)-i < 7+16 || !strings.EqualFold(s[i:i+6], "bearer") || s[i+6] != ' ' && s[i+6] != '\t' {
		return 0, 0
	}
	st := i + 7
	for st < len(s) && st-i < 16 && (s[st] == ' ' || s[st] == '\t') {
		st++
	}
	p := st
	letter, digit := false, false
	for p < len(s) && is(s[p], cBearer) {
		letter = letter || is(s[p], cUpper|cLower)
		digit = digit || isDigit(s[p])
		p++
	}
	// A sentence may end right after the token.
	for p > st && s[p-1] == '.' {
		p--
	}
	if p-st < 16 || !letter || !digit {
		return 0, 0
	}
	return st, p
}

// jwt detects JSON Web Tokens: a run of base64url and dots that starts a
// token, has three (JWS) or five (JWE) segments, header and payload
// starting with "eyJ" (base64 of `{"`), and a header that decodes to a JSON
// object. Only run starts are tried, so each run is read once.
func jwt(s string, i int) int {
	if i > 0 && (is(s[i-1], cToken) || s[i-1] == '.') || !strings.HasPrefix(s[i:], "eyJ") {
		return 0
	}
	p, dots := i, 0
	var dot [4]int
	for p < len(s) && (is(s[p], cToken) || s[p] == '.') {
		if s[p] == '.' {
			if dots < len(dot) {
				dot[dots] = p
			}
			dots++
		}
		p++
	}
	if dots != 2 && dots != 4 {
		return 0
	}
	if !strings.HasPrefix(s[dot[0]+1:], "eyJ") && dots == 2 {
		return 0
	}
	hdr := s[i:dot[0]]
	if len(hdr) > 2048 {
		return 0
	}
	var buf [1536]byte
	n, err := base64.RawURLEncoding.Decode(buf[:], []byte(hdr))
	if err != nil || !json.Valid(buf[:n]) || buf[0] != '{' {
		return 0
	}
	return p
}

// pemMemo remembers where the next "-----END " is, so that many BEGIN
// lines without an END cost one search, not one each.
type pemMemo struct {
	searched bool
	from     int // the search started here
	at       int // -1: none at or after from
}

func (m *pemMemo) nextEnd(s string, from int) int {
	if m.searched && from >= m.from && (m.at < 0 || from <= m.at) {
		return m.at
	}
	m.searched, m.from = true, from
	if j := strings.Index(s[from:], "-----END "); j >= 0 {
		m.at = from + j
	} else {
		m.at = -1
	}
	return m.at
}

// privateKey detects PEM private key blocks ("-----BEGIN [RSA |EC |
// OPENSSH |ENCRYPTED |PGP ]PRIVATE KEY[ BLOCK]-----" to the matching END
// line). Without an END line the block runs over the base64 lines that
// follow: a truncated key is still a leaked key.
func (m *pemMemo) privateKey(s string, i int) int {
	const begin = "-----BEGIN "
	if !strings.HasPrefix(s[i:], begin) {
		return 0
	}
	p := i + len(begin)
	j := strings.Index(s[p:min(len(s), p+64)], "-----")
	if j < 0 || !strings.Contains(s[p:p+j], "PRIVATE KEY") {
		return 0
	}
	p += j + 5
	if e := m.nextEnd(s, p); e >= 0 {
		q := e + len("-----END ")
		if k := strings.Index(s[q:min(len(s), q+64)], "-----"); k >= 0 {
			return q + k + 5
		}
	}
	for p < len(s) && (is(s[p], cToken) && s[p] != '-' || strings.IndexByte("+/=\r\n\\", s[p]) >= 0) {
		p++
	}
	return p
}
