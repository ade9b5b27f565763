package mcp

import (
	"encoding/json"
	"strings"
	"testing"

	"tollgate.dev/tollgate/dataplane/routetable"
)

func TestToolAllowed(t *testing.T) {
	for _, c := range []struct {
		name        string
		allow, deny []string
		tool        string
		want        bool
	}{
		{"empty allows all", nil, nil, "anything", true},
		{"allow glob", []string{"get_*"}, nil, "get_issue", true},
		{"allow glob misses", []string{"get_*"}, nil, "create_issue", false},
		{"deny wins", []string{"*"}, []string{"delete_*"}, "delete_repo", false},
		{"deny only", nil, []string{"delete_*"}, "list_repos", true},
		{"bad allow matches nothing", []string{"[oops"}, nil, "x", false},
		{"bad deny denies all", nil, []string{"[oops"}, "x", false},
		{"exact", []string{"echo"}, nil, "echo", true},
	} {
		s := &routetable.MCPServer{Allow: c.allow, Deny: c.deny}
		if got := ToolAllowed(s, c.tool); got != c.want {
			t.Errorf("%s: ToolAllowed(%q) = %v, want %v", c.name, c.tool, got, c.want)
		}
	}
}

func TestResolve(t *testing.T) {
	tb := &routetable.Table{MCPServers: []routetable.MCPServer{
		{ID: "ns/b", Prefix: "a__b", Keys: []string{"k"}},
		{ID: "ns/a", Prefix: "a", Keys: []string{"k", "k"}},
		{ID: "ns/c", Prefix: "c", Keys: []string{"other"}, Deny: []string{"x"}},
	}}
	ix := newServerIndex(tb)
	if ss := ix.serversFor("k"); len(ss) != 2 || ss[0].ID != "ns/a" || ss[1].ID != "ns/b" {
		t.Fatalf("serversFor(k) = %v", ss)
	}
	// "a__b__tool" reads as a's "b__tool" or b's "tool"; both are offered,
	// in ID order.
	got := ix.resolve("k", "a__b__tool")
	if len(got) != 2 || got[0].server.ID != "ns/a" || got[0].upstream != "b__tool" || got[1].upstream != "tool" {
		t.Errorf("resolve overlapping = %+v", got)
	}
	for _, name := range []string{"c__y", "a__", "a", "", "zz__tool"} {
		if got := ix.resolve("k", name); len(got) != 0 {
			t.Errorf("resolve(k, %q) = %+v, want none", name, got)
		}
	}
	if got := ix.resolve("other", "c__x"); len(got) != 0 {
		t.Errorf("denied tool resolved: %+v", got)
	}
	if got := ix.resolve("other", "c__y"); len(got) != 1 {
		t.Errorf("resolve(other, c__y) = %+v", got)
	}
}

func TestScrubber(t *testing.T) {
	s := &routetable.MCPServer{
		AuthValue: "Bearer abcdefgh12345678",
		Endpoint:  "https://user:pa55word-long@mcp.example.com/mcp?api_key=querysecret99",
	}
	sc := newScrubber(s)
	in := `header Bearer abcdefgh12345678, bare abcdefgh12345678, pw pa55word-long, q querysecret99, short "Bearer"`
	out := sc.String(in)
	for _, secret := range []string{"abcdefgh12345678", "pa55word-long", "querysecret99"} {
		if strings.Contains(out, secret) {
			t.Errorf("%q survived: %s", secret, out)
		}
	}
	if !strings.Contains(out, `short "Bearer"`) {
		t.Errorf("short words must survive: %s", out)
	}
	// JSON forms: a secret with characters JSON escapes.
	sc = newScrubber(&routetable.MCPServer{AuthValue: `tok"en<&>value`})
	b, _ := json.Marshal(map[string]string{"v": `x tok"en<&>value y`})
	if got := string(sc.JSON(b)); strings.Contains(got, "value") || !strings.Contains(got, redacted) {
		t.Errorf("JSON scrub = %s", got)
	}
	if got := sc.JSON([]byte(`{"a":1}`)); string(got) != `{"a":1}` {
		t.Errorf("clean JSON changed: %s", got)
	}
}

func TestRedactArguments(t *testing.T) {
	sc := newScrubber(&routetable.MCPServer{AuthValue: "injected-credential-1"})
	for _, c := range []struct{ in, want string }{
		{`{"q":"weather"}`, `{"q":"weather"}`},
		{`{"Password":"x","user_token":"y","API-Key":"z","client_secret":"s","authorization":"a"}`,
			`{"API-Key":"[REDACTED]","Password":"[REDACTED]","authorization":"[REDACTED]","client_secret":"[REDACTED]","user_token":"[REDACTED]"}`},
		{`{"deep":[{"credentials":{"a":1}}]}`, `{"deep":[{"credentials":"[REDACTED]"}]}`},
		{`{"n":12345678901234567890,"f":1.5}`, `{"f":1.5,"n":12345678901234567890}`},
		{`{"text":"my key is injected-credential-1"}`, `{"text":"my key is [REDACTED]"}`},
		{`{"h":"Bearer eyJhbGciOi"}`, `{"h":"[REDACTED]"}`},
		{`{"k":"sk-proj-0123456789abcdef"}`, `{"k":"[REDACTED]"}`},
		{`{"author":"ann","tokens_used":3}`, `{"author":"ann","tokens_used":"[REDACTED]"}`},
		{`not json`, `"[UNPARSEABLE]"`},
		{`["a", "b"]`, `["a","b"]`},
	} {
		if got := string(redactArguments(json.RawMessage(c.in), sc)); got != c.want {
			t.Errorf("redact(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

func FuzzRedactArguments(f *testing.F) {
	f.Add(`{"password":"x","a":[1,"Bearer zzzzzzzz"]}`)
	f.Add(`[]`)
	f.Add(`"s"`)
	sc := newScrubber(&routetable.MCPServer{AuthValue: "fuzz-credential-0001"})
	f.Fuzz(func(t *testing.T, in string) {
		out := redactArguments(json.RawMessage(in), sc)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON out of %q: %s", in, out)
		}
		if strings.Contains(string(out), "fuzz-credential-0001") {
			t.Fatalf("credential survived: %s", out)
		}
	})
}
