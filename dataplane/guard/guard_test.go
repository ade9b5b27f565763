package guard

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
)

const (
	anEmail  = "jane.doe@example.com"
	aCard    = "4111 1111 1111 1111"
	anAWSKey = "AKIAIOSFODNN7EXAMPLE"
	anIP     = "10.20.30.40"
)

func route(dp *routetable.DataPolicy) *routetable.Route {
	return &routetable.Route{ID: "team-a/chat", Namespace: "team-a", Name: "chat", DataPolicy: dp}
}

func vkey(dp *routetable.DataPolicy) *routetable.Key {
	return &routetable.Key{ID: "team-a/app", Namespace: "team-a", Name: "app", DataPolicy: dp}
}

// request carries sensitive values in every place the guard must look.
func request() *openai.ChatRequest {
	return &openai.ChatRequest{
		Model: "gpt",
		Messages: []openai.Message{
			{Role: openai.RoleSystem, Content: openai.TextContent("Operator on call: " + anEmail)},
			{Role: openai.RoleUser, Content: openai.PartsContent(
				openai.ContentPart{Type: openai.PartText, Text: "Pay with " + aCard + " please"},
				openai.ContentPart{Type: openai.PartImageURL, ImageURL: &openai.ImageURL{URL: "https://x.test/a.png"}},
			)},
			{Role: openai.RoleAssistant, ToolCalls: []openai.ToolCall{{ID: "c1", Type: "function",
				Function: openai.FunctionCall{Name: "lookup", Arguments: `{"host":"` + anIP + `","to":"` + anEmail + `"}`}}}},
			{Role: openai.RoleTool, ToolCallID: "c1", Content: openai.TextContent("aws_access_key_id=" + anAWSKey)},
		},
	}
}

// allText is every string the request would send upstream.
func allText(r *openai.ChatRequest) string {
	var b strings.Builder
	for _, m := range r.Messages {
		b.WriteString(m.Content.PlainText())
		b.WriteByte('\n')
		for _, tc := range m.ToolCalls {
			b.WriteString(tc.Function.Arguments)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func TestNoPolicyIsANoOp(t *testing.T) {
	g := New(nil)
	req := request()
	before := allText(req)
	res, aerr := g.Evaluate(req, route(nil), vkey(nil))
	if aerr != nil || res.Findings != "" || res.SovereignOnly || res.Restore != nil {
		t.Fatalf("got %+v, %v", res, aerr)
	}
	if allText(req) != before {
		t.Fatal("request changed")
	}
	if res, aerr := g.Evaluate(req, nil, nil); aerr != nil || res.Findings != "" {
		t.Fatalf("nil route and key: %+v %v", res, aerr)
	}
}

// TestPolicyDropsRawBody: only what the guard scanned may leave, so under
// any data policy (even Allow, even with nothing found) the client's raw
// body, which can carry text in fields the struct does not model, must not
// be forwarded; without a policy it is kept.
func TestPolicyDropsRawBody(t *testing.T) {
	g := New(nil)
	for _, tc := range []struct {
		name     string
		dp       *routetable.DataPolicy
		keepsRaw bool
	}{
		{"no policy", nil, true},
		{"allow", &routetable.DataPolicy{Action: routetable.DataAllow}, false},
		{"redact, nothing found", &routetable.DataPolicy{Action: routetable.DataRedact, Detectors: []string{"IBAN"}}, false},
	} {
		req := request()
		req.Native = &openai.Native{Dialect: openai.DialectOpenAI, Body: []byte(`{"model":"gpt","messages":[],"notes":"` + anEmail + `"}`)}
		if _, aerr := g.Evaluate(req, route(tc.dp), vkey(nil)); aerr != nil {
			t.Fatalf("%s: %v", tc.name, aerr)
		}
		if kept := req.Native != nil; kept != tc.keepsRaw {
			t.Errorf("%s: raw body kept = %v, want %v", tc.name, kept, tc.keepsRaw)
		}
	}
}

func TestAllowRecordsFindings(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := New(reg)
	req := request()
	before := allText(req)
	res, aerr := g.Evaluate(req, route(&routetable.DataPolicy{Action: routetable.DataAllow}), vkey(nil))
	if aerr != nil {
		t.Fatal(aerr)
	}
	if want := "AWSAccessKey=1,Email=2,IPAddress=1,PaymentCard=1"; res.Findings != want {
		t.Errorf("Findings = %q, want %q", res.Findings, want)
	}
	if res.SovereignOnly || res.Restore != nil || allText(req) != before {
		t.Errorf("Allow changed the request or restricted it: %+v", res)
	}
	if v := counterValue(t, g.findings.WithLabelValues("team-a", "chat", "Email", "Allow")); v != 2 {
		t.Errorf("metric Email = %v, want 2", v)
	}
}

func TestSovereignOnly(t *testing.T) {
	g := New(nil)
	dp := &routetable.DataPolicy{Action: routetable.DataSovereignOnly, Detectors: []string{"PaymentCard"}}
	res, aerr := g.Evaluate(request(), route(dp), vkey(nil))
	if aerr != nil || !res.SovereignOnly || res.Findings != "PaymentCard=1" {
		t.Fatalf("with a card: %+v, %v", res, aerr)
	}
	clean := &openai.ChatRequest{Messages: []openai.Message{{Role: "user", Content: openai.TextContent("write to " + anEmail)}}}
	res, aerr = g.Evaluate(clean, route(dp), vkey(nil))
	if aerr != nil || res.SovereignOnly || res.Findings != "" {
		t.Fatalf("without a card: %+v, %v", res, aerr)
	}
}

func TestRefuse(t *testing.T) {
	g := New(nil)
	res, aerr := g.Evaluate(request(), route(nil), vkey(&routetable.DataPolicy{Action: routetable.DataRefuse}))
	if aerr == nil {
		t.Fatal("not refused")
	}
	if aerr.Status != http.StatusBadRequest || aerr.Type != openai.TypeInvalidRequest || aerr.Code == nil || *aerr.Code != CodeSensitiveData {
		t.Errorf("error = %+v", aerr)
	}
	body := string(aerr.MarshalBody())
	for _, v := range []string{anEmail, aCard, "4111", anAWSKey, anIP, "jane"} {
		if strings.Contains(body, v) || strings.Contains(res.Findings, v) {
			t.Errorf("refusal leaks %q: %s", v, body)
		}
	}
	for _, want := range []string{"PaymentCard=1", "Email=2", "VirtualKey team-a/app"} {
		if !strings.Contains(body, want) {
			t.Errorf("refusal body lacks %q: %s", want, body)
		}
	}
}

func TestRedactRoundTrip(t *testing.T) {
	g := New(nil)
	req := request()
	res, aerr := g.Evaluate(req, route(&routetable.DataPolicy{Action: routetable.DataRedact}), vkey(nil))
	if aerr != nil || res.SovereignOnly {
		t.Fatalf("%+v %v", res, aerr)
	}
	sent := allText(req)
	for _, v := range []string{anEmail, aCard, anAWSKey, anIP} {
		if strings.Contains(sent, v) {
			t.Errorf("upstream text still contains %q:\n%s", v, sent)
		}
	}
	for _, ph := range []string{"[EMAIL_1]", "[PAYMENT_CARD_1]", "[AWS_ACCESS_KEY_1]", "[IP_ADDRESS_1]"} {
		if !strings.Contains(sent, ph) {
			t.Errorf("upstream text lacks %s:\n%s", ph, sent)
		}
	}
	if strings.Contains(sent, "[EMAIL_2]") {
		t.Error("the same address got two placeholders")
	}
	if !strings.Contains(req.Messages[2].ToolCalls[0].Function.Arguments, `"to":"[EMAIL_1]"`) {
		t.Errorf("tool arguments: %s", req.Messages[2].ToolCalls[0].Function.Arguments)
	}
	if res.Redacted != 5 {
		t.Errorf("Redacted = %d, want 5", res.Redacted)
	}
	if res.Restore == nil {
		t.Fatal("no Restore")
	}
	answer := "Sent to [EMAIL_1] from [IP_ADDRESS_1]; card [PAYMENT_CARD_1], key [AWS_ACCESS_KEY_1]."
	want := "Sent to " + anEmail + " from " + anIP + "; card [PAYMENT_CARD_1], key [AWS_ACCESS_KEY_1]."
	if got := res.Restore(answer); got != want {
		t.Errorf("Restore = %q\nwant      %q", got, want)
	}
}

func TestRestoreAcrossStreamChunks(t *testing.T) {
	g := New(nil)
	req := &openai.ChatRequest{Messages: []openai.Message{{Role: "user", Content: openai.TextContent("mail " + anEmail + " and b@c.io")}}}
	res, _ := g.Evaluate(req, route(&routetable.DataPolicy{Action: routetable.DataRedact}), nil)
	if got := req.Messages[0].Content.Text; got != "mail [EMAIL_1] and [EMAIL_2]" {
		t.Fatalf("redacted = %q", got)
	}
	chunks := []string{"Write to ", "[", "EMAIL", "_1", "] or [EMA", "IL_2]", " [link](x) [", "done"}
	var out strings.Builder
	for _, c := range chunks {
		out.WriteString(res.Restore(c))
	}
	if want := "Write to " + anEmail + " or b@c.io [link](x) [done"; out.String() != want {
		t.Errorf("streamed = %q\nwant       %q", out.String(), want)
	}
}

func TestStricterPolicyWins(t *testing.T) {
	g := New(nil)
	tests := []struct {
		name          string
		route, key    *routetable.DataPolicy
		refuse, sov   bool
		findings      string
		redacted      int
		stillContains []string
	}{
		{"route redacts, key refuses cards", &routetable.DataPolicy{Action: routetable.DataRedact},
			&routetable.DataPolicy{Action: routetable.DataRefuse, Detectors: []string{"PaymentCard"}},
			true, false, "AWSAccessKey=1,Email=2,IPAddress=1,PaymentCard=1", 0, nil},
		{"key allows, route keeps cards local", &routetable.DataPolicy{Action: routetable.DataSovereignOnly, Detectors: []string{"PaymentCard"}},
			&routetable.DataPolicy{Action: routetable.DataAllow},
			false, true, "AWSAccessKey=1,Email=2,IPAddress=1,PaymentCard=1", 0, []string{aCard, anEmail}},
		{"redact e-mail and keep cards local", &routetable.DataPolicy{Action: routetable.DataSovereignOnly, Detectors: []string{"PaymentCard"}},
			&routetable.DataPolicy{Action: routetable.DataRedact, Detectors: []string{"Email"}},
			false, true, "Email=2,PaymentCard=1", 2, []string{aCard, anAWSKey}},
		{"key only", nil, &routetable.DataPolicy{Action: routetable.DataRedact, Detectors: []string{"AWSAccessKey"}},
			false, false, "AWSAccessKey=1", 1, []string{aCard, anEmail}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request()
			res, aerr := g.Evaluate(req, route(tt.route), vkey(tt.key))
			if (aerr != nil) != tt.refuse || res.SovereignOnly != tt.sov || res.Findings != tt.findings || res.Redacted != tt.redacted {
				t.Fatalf("got %+v, err %v", res, aerr)
			}
			for _, v := range tt.stillContains {
				if !strings.Contains(allText(req), v) {
					t.Errorf("%q was redacted", v)
				}
			}
		})
	}
}

func TestCustomPatterns(t *testing.T) {
	g := New(nil)
	dp := &routetable.DataPolicy{
		Action:    routetable.DataRedact,
		Detectors: []string{"Email"},
		CustomPatterns: []routetable.CustomPattern{
			{Name: "employee-id", Regex: `\bEMP-[0-9]{6}\b`},
			{Name: "project", Regex: `(?i)project (falcon|heron)`},
			{Name: "broken", Regex: `(unclosed`},
			{Name: "empty-match", Regex: `x*`},
		},
	}
	req := &openai.ChatRequest{Messages: []openai.Message{{Role: "user",
		Content: openai.TextContent("EMP-123456 and EMP-123456 work on Project Falcon with " + anEmail + ", not EMP-12345")}}}
	res, aerr := g.Evaluate(req, route(dp), nil)
	if aerr != nil {
		t.Fatal(aerr)
	}
	if want := "Email=1,employee-id=2,project=1"; res.Findings != want {
		t.Errorf("Findings = %q, want %q", res.Findings, want)
	}
	want := "[EMPLOYEE_ID_1] and [EMPLOYEE_ID_1] work on [PROJECT_1] with [EMAIL_1], not EMP-12345"
	if got := req.Messages[0].Content.Text; got != want {
		t.Errorf("redacted = %q\nwant       %q", got, want)
	}
	// Custom values may be secrets: not restored. E-mail is.
	if got := res.Restore("[EMPLOYEE_ID_1] [EMAIL_1]"); got != "[EMPLOYEE_ID_1] "+anEmail {
		t.Errorf("Restore = %q", got)
	}
	if v := counterValue(t, g.badRegex); v != 1 {
		t.Errorf("pattern errors = %v, want 1", v)
	}
	// Compiled once: a second request and a new table (new pointers, same
	// patterns) reuse the compiled expressions.
	re := g.regexps[`\bEMP-[0-9]{6}\b`]
	dp2 := *dp
	g.Evaluate(&openai.ChatRequest{}, route(&dp2), nil)
	if g.regexps[`\bEMP-[0-9]{6}\b`] != re || counterValue(t, g.badRegex) != 1 {
		t.Error("patterns were compiled again")
	}
}

func TestPlanCacheFollowsTables(t *testing.T) {
	g := New(nil)
	req := func() *openai.ChatRequest {
		return &openai.ChatRequest{Messages: []openai.Message{{Role: "user", Content: openai.TextContent(aCard)}}}
	}
	r := route(&routetable.DataPolicy{Action: routetable.DataAllow})
	if _, aerr := g.Evaluate(req(), r, nil); aerr != nil {
		t.Fatal(aerr)
	}
	// A new table: same route id, a stricter policy.
	r2 := route(&routetable.DataPolicy{Action: routetable.DataRefuse})
	if _, aerr := g.Evaluate(req(), r2, nil); aerr == nil {
		t.Fatal("the cached plan of the old table was used")
	}
}

func TestSharedMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	g1 := New(reg)
	g2 := New(reg) // the server registers the same counter first in production
	if g1.findings != g2.findings {
		t.Fatal("second Guard did not reuse the registered counter")
	}
}

func TestRestoreSafeForConcurrentUse(t *testing.T) {
	g := New(nil)
	req := &openai.ChatRequest{Messages: []openai.Message{{Role: "user", Content: openai.TextContent(anEmail)}}}
	res, _ := g.Evaluate(req, route(&routetable.DataPolicy{Action: routetable.DataRedact}), nil)
	done := make(chan bool)
	for range 4 {
		go func() {
			for range 100 {
				res.Restore("x [EMAIL_1] y")
			}
			done <- true
		}()
	}
	for range 4 {
		<-done
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestInspectAdapter(t *testing.T) {
	g := New(nil)
	req := &openai.ChatRequest{Messages: []openai.Message{{Role: "user", Content: openai.TextContent("mail " + anEmail)}}}
	v, aerr := g.Inspect(req, route(&routetable.DataPolicy{Action: routetable.DataRedact}), nil)
	if aerr != nil || v.Findings != "Email=1" || v.SovereignOnly || v.Restore == nil {
		t.Fatalf("verdict %+v, %v", v, aerr)
	}
	if got := v.Restore("hi [EMAIL_1]"); got != "hi "+anEmail {
		t.Fatalf("Restore = %q", got)
	}
}

func TestEvaluateTexts(t *testing.T) {
	g := New(nil)
	texts := []string{"contact " + anEmail, "nothing here", "card " + aCard}
	res, aerr := g.EvaluateTexts(texts, route(&routetable.DataPolicy{Action: routetable.DataRedact, Detectors: []string{"Email"}}), nil)
	if aerr != nil || res.Findings != "Email=1" || texts[0] != "contact [EMAIL_1]" || texts[2] != "card "+aCard {
		t.Fatalf("%+v %v %q", res, aerr, texts)
	}
	if _, aerr := g.EvaluateTexts(texts, route(&routetable.DataPolicy{Action: routetable.DataRefuse}), nil); aerr == nil {
		t.Fatal("card not refused")
	}
}
