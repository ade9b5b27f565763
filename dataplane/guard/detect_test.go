package guard

import (
	"strings"
	"testing"
	"time"
)

// found renders the matches of s as "Kind:value" for readable failures.
func found(s string, ks Kinds) []string {
	var out []string
	for _, m := range Scan(nil, s, ks) {
		out = append(out, m.Kind.String()+":"+s[m.Start:m.End])
	}
	return out
}

func TestDetectors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // "Kind:value"; empty: nothing may be flagged
	}{
		// E-mail.
		{"email", "write to jane.doe+tag@example.co.uk today", []string{"Email:jane.doe+tag@example.co.uk"}},
		{"email at sentence end", "Mail bob@corp.example.", []string{"Email:bob@corp.example"}},
		{"email in json", `{"to":"ops@acme.io"}`, []string{"Email:ops@acme.io"}},
		{"email no tld", "ssh root@localhost", nil},
		{"mention", "thanks @alice and @bob", nil},
		{"go module version", "golang.org/x/net@v0.31.0", nil},
		{"npm version", "npm i left-pad@1.3.0", nil},
		{"retina asset", "icon@2x.png", nil},
		{"numeric tld", "a@b.c1", nil},

		// Phone numbers.
		{"e164", "call +4915112345678 now", []string{"Phone:+4915112345678"}},
		{"intl grouped", "Tel: +44 20 7946 0958.", []string{"Phone:+44 20 7946 0958"}},
		{"intl trunk in parens", "+44 (0) 20 7946 0958", []string{"Phone:+44 (0) 20 7946 0958"}},
		{"nanp parens", "Call (415) 555-0132 today", []string{"Phone:(415) 555-0132"}},
		{"nanp dashes", "415-555-0132", []string{"Phone:415-555-0132"}},
		{"nanp dots with 1", "1.800.555.0199", []string{"Phone:1.800.555.0199"}},
		{"uk national", "ring 020 7946 0958", []string{"Phone:020 7946 0958"}},
		{"fr national", "06 12 34 56 78", []string{"Phone:06 12 34 56 78"}},
		{"iso date", "on 2024-01-15 at 10:30", nil},
		{"eu date", "on 15.01.2024 and 01-02-2024", nil},
		{"plain number", "order 4155550132 shipped", nil},
		{"amount", "costs 1,234,567.89 dollars", nil},
		{"area code 1xx", "123-456-7890", nil},
		{"short intl", "+49 30", nil},
		{"math", "x = 3 + 4", nil},
		{"too long intl", "+1234567890123456789", nil},

		// Payment cards.
		{"visa", "card 4111111111111111 exp", []string{"PaymentCard:4111111111111111"}},
		{"visa spaced", "4111 1111 1111 1111", []string{"PaymentCard:4111 1111 1111 1111"}},
		{"mastercard dashed", "5555-5555-5555-4444", []string{"PaymentCard:5555-5555-5555-4444"}},
		{"mastercard 2-series", "2223003122003222", []string{"PaymentCard:2223003122003222"}},
		{"amex", "3782 822463 10005", []string{"PaymentCard:3782 822463 10005"}},
		{"discover", "6011111111111117", []string{"PaymentCard:6011111111111117"}},
		{"card then expiry", "4111 1111 1111 1111 12 27", []string{"PaymentCard:4111 1111 1111 1111"}},
		{"luhn fails", "4111111111111112", nil},
		{"luhn fails spaced", "4111 1111 1111 1112", nil},
		{"unknown iin", "9111111111111111", nil},
		{"too long", "41111111111111111111111", nil},
		{"mixed separators", "4111-1111 1111-1111", nil},
		{"decimal", "pi is 3.4111111111111111", nil},
		{"in word", "id4111111111111111", nil},

		// IBAN.
		{"iban de", "IBAN DE89370400440532013000.", []string{"IBAN:DE89370400440532013000"}},
		{"iban de print", "DE89 3704 0044 0532 0130 00", []string{"IBAN:DE89 3704 0044 0532 0130 00"}},
		{"iban gb", "GB82WEST12345698765432", []string{"IBAN:GB82WEST12345698765432"}},
		{"iban bad checksum", "DE88370400440532013000", nil},
		{"iban wrong length", "DE8937040044053201300", nil},
		{"iban unknown country", "ZZ89370400440532013000", nil},

		// US SSN.
		{"ssn", "SSN 536-22-1234", []string{"USSSN:536-22-1234"}},
		{"ssn spaces", "536 22 1234", []string{"USSSN:536 22 1234"}},
		{"ssn area 000", "000-12-3456", nil},
		{"ssn area 666", "666-12-3456", nil},
		{"ssn area 9xx", "912-12-3456", nil},
		{"ssn group 00", "536-00-1234", nil},
		{"ssn serial 0000", "536-22-0000", nil},
		{"ssn advertising", "078-05-1120", nil},
		{"ssn longer", "536-22-1234-5", nil},

		// IP addresses.
		{"ipv4", "host 192.168.1.20 is down", []string{"IPAddress:192.168.1.20"}},
		{"ipv4 port", "10.0.0.1:8080", []string{"IPAddress:10.0.0.1"}},
		{"ipv4 sentence end", "from 8.8.8.8.", []string{"IPAddress:8.8.8.8"}},
		{"ipv4 octet range", "300.1.1.1", nil},
		{"ipv4 leading zero", "01.2.3.4", nil},
		{"version dotted 5", "1.2.3.4.5", nil},
		{"version word", "version 1.2.3.4", nil},
		{"version v", "v1.2.3.4 and V 2.0.0.1", nil},
		{"ipv6", "addr 2001:db8::8a2e:370:7334 ok", []string{"IPAddress:2001:db8::8a2e:370:7334"}},
		{"ipv6 link local", "fe80::1ff:fe23:4567:890a", []string{"IPAddress:fe80::1ff:fe23:4567:890a"}},
		{"ipv6 mapped", "::ffff:192.0.2.128", []string{"IPAddress:::ffff:192.0.2.128"}},
		{"ipv6 loopback", "::1", nil},
		{"clock", "at 12:30:45 sharp", nil},
		{"cpp scope", "std::vector a::b", nil},
		{"mac", "aa:bb:cc:dd:ee:ff", nil},

		// Credentials.
		{"aws", "key=AKIAIOSFODNN7EXAMPLE", []string{"AWSAccessKey:AKIAIOSFODNN7EXAMPLE"}},
		{"aws temp", "ASIAY34FZKBOKMUTVV7A", []string{"AWSAccessKey:ASIAY34FZKBOKMUTVV7A"}},
		{"aws too short", "AKIAIOSFODNN7EXAMPL", nil},
		{"aws too long", "AKIAIOSFODNN7EXAMPLEX", nil},
		{"pem", "k: -----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK==\n-----END RSA PRIVATE KEY----- done",
			[]string{"PrivateKey:-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK==\n-----END RSA PRIVATE KEY-----"}},
		{"pem escaped in json", `{"k":"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"}`,
			[]string{`PrivateKey:-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----`}},
		{"pem truncated", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\nAAAA then", []string{"PrivateKey:-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\nAAAA"}},
		{"public key", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----", nil},
		{"certificate", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", nil},
		{"bearer", "Authorization: Bearer 9f8a7b6c5d4e3f2a1b0c", []string{"BearerToken:9f8a7b6c5d4e3f2a1b0c"}},
		{"bearer lower", "bearer abcdEFGH1234ijkl5678.", []string{"BearerToken:abcdEFGH1234ijkl5678"}},
		{"bearer prose", "Bearer authentication is common", nil},
		{"bearer template", "Bearer YOUR_TOKEN_GOES_HERE", nil},
		{"jwt", "token eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
			[]string{"JWT:eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"}},
		{"jwt unsigned", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", []string{"JWT:eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."}},
		{"jwt bad header", "eyJub3QganNvbg.eyJzdWIiOiIxIn0.abc", nil},
		{"jwt two segments", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0", nil},
		{"bearer jwt", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", []string{"BearerToken:eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0"}}, // a final dot reads as the end of a sentence
		{"openai key", "OPENAI_API_KEY=sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vW7yZ", []string{"APIKey:sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vW7yZ"}},
		{"anthropic key", "sk-ant-api03-abcDEF123456ghiJKL789012", []string{"APIKey:sk-ant-api03-abcDEF123456ghiJKL789012"}},
		{"github token", "ghp_16C7e42F292c6912E7710c838347Ae178B4a", []string{"APIKey:ghp_16C7e42F292c6912E7710c838347Ae178B4a"}},
		{"slack token", "xoxb-2642861793-abcdef123456", []string{"APIKey:xoxb-2642861793-abcdef123456"}},
		{"google key", "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW", []string{"APIKey:AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"}},
		{"sklearn", "pip install sk-learn-compatible-estimators-package", nil},
		{"sk short", "sk-abc123", nil},
		{"prefix inside token", "my-sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vW7yZ", nil},

		// Everyday text that must stay clean.
		{"uuid", "id 550e8400-e29b-41d4-a716-446655440000", nil},
		{"isbn", "ISBN 978-3-16-148410-0", nil},
		{"timestamp", "at 2024-01-15T10:30:00Z and 2024-01-15 10:30:00.123", nil},
		{"file line col", "main.go:42:17: undefined: x", nil},
		{"thousands", "1 000 000 and 12 345 678 901 234", nil},
		{"git sha", "commit 4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39", nil},
		{"semver", "upgrade to 1.31.2 or 10.2.0-rc.1", nil},
		{"quantities", "cpu: 500m, memory: 2Gi, replicas: 3", nil},
		{"sha256 digest", "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", nil},

		// Mixed.
		{"several", "Mail a@b.io or call +1 415 555 0132 from 10.1.2.3",
			[]string{"Email:a@b.io", "Phone:+1 415 555 0132", "IPAddress:10.1.2.3"}},
		{"non ascii around", "é4111111111111111ü", []string{"PaymentCard:4111111111111111"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := found(tt.in, AllKinds)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("Scan(%q)\n got  %q\n want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestScanRespectsKinds(t *testing.T) {
	s := "a@b.io 4111111111111111 AKIAIOSFODNN7EXAMPLE"
	got := found(s, Kinds(0).With(KindPaymentCard))
	if len(got) != 1 || got[0] != "PaymentCard:4111111111111111" {
		t.Fatalf("got %q", got)
	}
	if got := Scan(nil, s, 0); len(got) != 0 {
		t.Fatalf("no kinds: got %v", got)
	}
}

func TestParseKind(t *testing.T) {
	// The CRD enum and the compiler's list must stay in step with the kinds.
	for _, n := range []string{"APIKey", "AWSAccessKey", "BearerToken", "Email", "IBAN", "IPAddress", "JWT", "PaymentCard", "Phone", "PrivateKey", "USSSN"} {
		k, ok := ParseKind(n)
		if !ok || k.String() != n {
			t.Errorf("ParseKind(%q) = %v, %v", n, k, ok)
		}
	}
	if _, ok := ParseKind("Nope"); ok {
		t.Error("ParseKind accepted an unknown name")
	}
}

// TestScanLinear feeds inputs built to make naive scanners quadratic and
// checks they finish quickly (each is 256 KB).
func TestScanLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	const n = 256 << 10
	for _, unit := range []string{
		"-----BEGIN PRIVATE KEY-----", // BEGIN lines without END
		"a@", "@a.", "a.a@",
		"sk-", "eyJ.", "eyJhbGciOiJub25lIn0.",
		"1.", "1:", "1 ", "+1 ", "0 12 ",
		"Bearer ", "DE89 ",
	} {
		s := strings.Repeat(unit, n/len(unit))
		start := time.Now()
		Scan(nil, s, AllKinds)
		// Quadratic behaviour on 256 KB costs seconds; linear costs
		// well under 100 ns a byte even on a loaded machine.
		if perByte := float64(time.Since(start).Nanoseconds()) / n; perByte > 500 {
			t.Errorf("%q repeated: %.0f ns/byte, want linear time", unit, perByte)
		}
	}
}
