package anthropic

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/google/go-cmp/cmp"

	"tollgate.dev/tollgate/dataplane/routetable"
	wire "tollgate.dev/tollgate/dataplane/schema/anthropic"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/sse"
	"tollgate.dev/tollgate/dataplane/translate"
)

func mustRequest(t *testing.T, js string) *openai.ChatRequest {
	t.Helper()
	var r openai.ChatRequest
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func TestBuildRequestErrors(t *testing.T) {
	tests := []struct {
		name, req, param string
	}{
		{"n>1", `{"model":"m","n":2,"messages":[{"role":"user","content":"hi"}]}`, "n"},
		{"invalid arguments", `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{\"x\":"}}]}]}`, "messages[1].tool_calls[0].function.arguments"},
		{"non-object arguments", `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "messages[1].tool_calls[0].function.arguments"},
		{"tool without id", `{"model":"m","messages":[{"role":"tool","content":"x"}]}`, "messages[0].tool_call_id"},
		{"only system", `{"model":"m","messages":[{"role":"system","content":"x"}]}`, "messages"},
		{"function role", `{"model":"m","messages":[{"role":"function","content":"x"}]}`, "messages[0].role"},
		{"audio", `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA==","format":"wav"}}]}]}`, "messages[0].content[0].type"},
		{"bad image url", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"bad data url", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,%%%"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"non-pdf file", `{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:text/csv;base64,YSxi"}}]}]}`, "messages[0].content[0].file.file_data"},
		{"file id", `{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}`, "messages[0].content[0].file"},
		{"image in system", `{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},{"role":"user","content":"hi"}]}`, "messages[0].content[0].type"},
		{"reserved tool name", `{"model":"m","tools":[{"type":"function","function":{"name":"tollgate_json_response"}}],"messages":[{"role":"user","content":"hi"}]}`, "tools[0].function.name"},
		{"unknown named tool", `{"model":"m","tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"function","function":{"name":"b"}},"messages":[{"role":"user","content":"hi"}]}`, "tool_choice"},
		{"json_schema without schema", `{"model":"m","response_format":{"type":"json_schema"},"messages":[{"role":"user","content":"hi"}]}`, "response_format.json_schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := BuildRequest(mustRequest(t, tt.req), "claude", testProvider())
			var ae *openai.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("got %v, want *openai.APIError", err)
			}
			if ae.Status != http.StatusBadRequest || ae.Type != openai.TypeInvalidRequest || ae.Retryable {
				t.Errorf("got status %d type %s retryable %v", ae.Status, ae.Type, ae.Retryable)
			}
			if ae.Param == nil || *ae.Param != tt.param {
				t.Errorf("param = %v, want %q", ae.Param, tt.param)
			}
			if strings.Contains(ae.Message, "sk-ant") {
				t.Errorf("message leaks the key: %s", ae.Message)
			}
		})
	}
}

func TestBuildRequestOptions(t *testing.T) {
	f, tr := false, true
	base := func() *openai.ChatRequest {
		return &openai.ChatRequest{Model: "m", Messages: []openai.Message{{Role: "user", Content: openai.TextContent("hi")}},
			Tools: []openai.Tool{{Type: "function", Function: openai.FunctionDecl{Name: "f"}}}}
	}
	tests := []struct {
		name   string
		mutate func(*openai.ChatRequest)
		want   *wire.ToolChoice
	}{
		{"unset", func(*openai.ChatRequest) {}, nil},
		{"none", func(r *openai.ChatRequest) { r.ToolChoice = &openai.ToolChoice{Mode: "none"} }, &wire.ToolChoice{Type: "none"}},
		{"none ignores parallel", func(r *openai.ChatRequest) {
			r.ToolChoice = &openai.ToolChoice{Mode: "none"}
			r.ParallelToolCalls = &f
		}, &wire.ToolChoice{Type: "none"}},
		{"required", func(r *openai.ChatRequest) { r.ToolChoice = &openai.ToolChoice{Mode: "required"} }, &wire.ToolChoice{Type: "any"}},
		{"required serial", func(r *openai.ChatRequest) {
			r.ToolChoice = &openai.ToolChoice{Mode: "required"}
			r.ParallelToolCalls = &f
		}, &wire.ToolChoice{Type: "any", DisableParallelToolUse: &tr}},
		{"parallel true is default", func(r *openai.ChatRequest) { r.ParallelToolCalls = &tr }, nil},
		{"no tools drops choice", func(r *openai.ChatRequest) {
			r.Tools = nil
			r.ToolChoice = &openai.ToolChoice{Mode: "required"}
		}, nil},
		{"json_object with tool_choice none", func(r *openai.ChatRequest) {
			r.ToolChoice = &openai.ToolChoice{Mode: "none"}
			r.ResponseFormat = &openai.ResponseFormat{Type: "json_object"}
		}, &wire.ToolChoice{Type: "tool", Name: JSONToolName}},
		{"json_object with named tool keeps it", func(r *openai.ChatRequest) {
			r.ToolChoice = &openai.ToolChoice{Mode: "function", Function: "f"}
			r.ResponseFormat = &openai.ResponseFormat{Type: "json_object"}
		}, &wire.ToolChoice{Type: "tool", Name: "f"}},
		{"text format is a no-op", func(r *openai.ChatRequest) { r.ResponseFormat = &openai.ResponseFormat{Type: "text"} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base()
			tt.mutate(r)
			out, err := BuildRequest(r, "claude", testProvider())
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, out.ToolChoice); d != "" {
				t.Errorf("tool_choice (-want +got):\n%s", d)
			}
		})
	}
}

func TestMaxTokensResolution(t *testing.T) {
	n := func(i int) *int { return &i }
	tests := []struct {
		name     string
		maxTok   *int
		maxCompl *int
		provider *routetable.Provider
		want     int
	}{
		{"max_completion_tokens wins", n(10), n(20), testProvider(), 20},
		{"max_tokens", n(10), nil, testProvider(), 10},
		{"model entry", nil, nil, &routetable.Provider{DefaultMaxTokens: 100, Models: []routetable.Model{{Name: "claude", MaxOutputTokens: 64000}}}, 64000},
		{"model entry without max", nil, nil, &routetable.Provider{DefaultMaxTokens: 100, Models: []routetable.Model{{Name: "claude"}}}, 100},
		{"other model entry", nil, nil, &routetable.Provider{Models: []routetable.Model{{Name: "other", MaxOutputTokens: 5}}}, DefaultMaxTokens},
		{"built-in default", nil, nil, testProvider(), DefaultMaxTokens},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &openai.ChatRequest{MaxTokens: tt.maxTok, MaxCompletionTokens: tt.maxCompl,
				Messages: []openai.Message{{Role: "user", Content: openai.TextContent("hi")}}}
			out, err := BuildRequest(r, "claude", tt.provider)
			if err != nil {
				t.Fatal(err)
			}
			if *out.MaxTokens != tt.want {
				t.Errorf("max_tokens = %d, want %d", *out.MaxTokens, tt.want)
			}
		})
	}
}

func TestThinkingBudget(t *testing.T) {
	tests := []struct {
		effort string
		max    int
		want   int
	}{
		{"minimal", 4096, 1024},
		{"low", 4096, 2048},
		{"medium", 4096, 4095},
		{"medium", 32000, 8192},
		{"high", 32000, 16384},
		{"xhigh", 64000, 32768},
		{"high", 1024, 0}, // cap 1023 is below Anthropic's minimum
		{"low", 1025, 1024},
		{"none", 32000, 0},
		{"bogus", 32000, 0},
	}
	for _, tt := range tests {
		if got := ThinkingBudget(tt.effort, tt.max); got != tt.want {
			t.Errorf("ThinkingBudget(%q, %d) = %d, want %d", tt.effort, tt.max, got, tt.want)
		}
	}
}

func TestThinkingDropsSamplingParams(t *testing.T) {
	temp, topP, mx := 0.3, 0.5, 500
	r := &openai.ChatRequest{ReasoningEffort: "high", Temperature: &temp, TopP: &topP, MaxTokens: &mx,
		Messages: []openai.Message{{Role: "user", Content: openai.TextContent("hi")}}}
	out, err := BuildRequest(r, "claude", testProvider())
	if err != nil {
		t.Fatal(err)
	}
	// max_tokens 500 cannot hold the 1024 minimum: no thinking, so the
	// sampling parameters are kept (temperature only: Anthropic rejects both).
	if out.Thinking != nil || out.Temperature == nil || *out.Temperature != 0.3 || out.TopP != nil {
		t.Fatalf("got thinking %+v temperature %v top_p %v", out.Thinking, out.Temperature, out.TopP)
	}
	mx = 20000
	out, err = BuildRequest(r, "claude", testProvider())
	if err != nil {
		t.Fatal(err)
	}
	if out.Thinking == nil || out.Thinking.BudgetTokens != 16384 || out.Temperature != nil || out.TopP != nil {
		t.Fatalf("got thinking %+v temperature %v top_p %v", out.Thinking, out.Temperature, out.TopP)
	}
}

func TestChatRequestHeaders(t *testing.T) {
	p := testProvider()
	p.BaseURL = "http://anthropic.internal:8080/proxy"
	p.APIVersion = "2024-01-01"
	p.Headers = map[string]string{"X-Api-Key": "override", "Content-Type": "text/plain", "anthropic-beta": "b1"}
	req := &openai.ChatRequest{Stream: true, Messages: []openai.Message{{Role: "user", Content: openai.TextContent("hi")}}}
	hr, err := New().ChatRequest(context.Background(), req, translate.Target{Provider: p, Model: "claude"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"X-Api-Key": "sk-ant-test-key", "Anthropic-Version": "2024-01-01", "Content-Type": "application/json",
		"Anthropic-Beta": "b1", "Accept": "text/event-stream",
	}
	for k, v := range want {
		if got := hr.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if hr.URL.String() != "http://anthropic.internal:8080/proxy/v1/messages" || hr.Method != http.MethodPost {
		t.Errorf("got %s %s", hr.Method, hr.URL)
	}
	if hr.GetBody == nil || hr.ContentLength <= 0 {
		t.Error("request body must be replayable for retries")
	}
	var body map[string]any
	if err := json.NewDecoder(hr.Body).Decode(&body); err != nil || body["stream"] != true {
		t.Errorf("stream flag missing: %v %v", body, err)
	}
	if _, err := New().ChatRequest(context.Background(), req, translate.Target{Model: "x"}); err == nil {
		t.Error("nil provider must fail")
	}
}

func TestFinishReason(t *testing.T) {
	tests := []struct {
		stop     string
		realTool bool
		want     string
	}{
		{"end_turn", false, "stop"},
		{"stop_sequence", false, "stop"},
		{"max_tokens", false, "length"},
		{"model_context_window_exceeded", false, "length"},
		{"tool_use", true, "tool_calls"},
		{"tool_use", false, "stop"},
		{"refusal", false, "content_filter"},
		{"pause_turn", false, "stop"},
		{"", false, "stop"},
		{"something_new", false, "stop"},
	}
	for _, tt := range tests {
		if got := FinishReason(tt.stop, tt.realTool); got != tt.want {
			t.Errorf("FinishReason(%q, %v) = %q, want %q", tt.stop, tt.realTool, got, tt.want)
		}
	}
}

func TestError(t *testing.T) {
	body := func(typ, msg string) []byte {
		return []byte(`{"type":"error","error":{"type":"` + typ + `","message":"` + msg + `"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}`)
	}
	tests := []struct {
		name       string
		status     int
		header     http.Header
		body       []byte
		wantStatus int
		wantType   string
		wantMsg    string
		retryable  bool
		retryAfter time.Duration
	}{
		{"400", 400, nil, body("invalid_request_error", "messages: at least one message is required"), 400, "invalid_request_error", "messages: at least one message is required", false, 0},
		{"401", 401, nil, body("authentication_error", "invalid x-api-key"), 401, "authentication_error", "invalid x-api-key", false, 0},
		{"403", 403, nil, body("permission_error", "no access"), 403, "permission_error", "no access", false, 0},
		{"404", 404, nil, body("not_found_error", "model: claude-9"), 404, "not_found_error", "model: claude-9", false, 0},
		{"413", 413, nil, body("request_too_large", "Request exceeds the maximum allowed number of bytes."), 413, "invalid_request_error", "Request exceeds the maximum allowed number of bytes.", false, 0},
		{"429 retry-after", 429, http.Header{"Retry-After": {"30"}}, body("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"), 429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", true, 30 * time.Second},
		{"429 bad retry-after", 429, http.Header{"Retry-After": {"soon"}}, body("rate_limit_error", "slow down"), 429, "rate_limit_error", "slow down", true, 0},
		{"500", 500, nil, body("api_error", "Internal server error"), 502, "server_error", "Internal server error", true, 0},
		{"529", 529, http.Header{"Retry-After": {"5"}}, body("overloaded_error", "Overloaded"), 503, "server_error", "Overloaded", true, 5 * time.Second},
		{"504 html", 504, nil, []byte("<html>gateway timeout</html>"), 504, "server_error", "anthropic: upstream returned status 504", true, 0},
		{"503 plain", 503, nil, []byte("upstream connect error"), 503, "server_error", "anthropic: upstream returned status 503: upstream connect error", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			e := New().Error(tt.status, h, tt.body)
			if e.Status != tt.wantStatus || e.Type != tt.wantType || e.Message != tt.wantMsg || e.Retryable != tt.retryable || e.RetryAfter != tt.retryAfter {
				t.Errorf("got status %d type %q msg %q retryable %v retry-after %v", e.Status, e.Type, e.Message, e.Retryable, e.RetryAfter)
			}
			var env openai.ErrorBody
			if err := json.Unmarshal(e.MarshalBody(), &env); err != nil || env.Error == nil {
				t.Errorf("MarshalBody is not an OpenAI envelope: %v", err)
			}
		})
	}
}

func TestErrorRetryAfterDate(t *testing.T) {
	h := http.Header{"Retry-After": {time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)}}
	d := New().Error(429, h, []byte(`{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`)).RetryAfter
	if d < 85*time.Second || d > 91*time.Second {
		t.Errorf("got %v, want about 90s", d)
	}
}

func TestChatResponseMalformed(t *testing.T) {
	_, err := New().ChatResponse([]byte(`{"content": "nope"`), translate.Target{}, testMeta)
	var ae *openai.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadGateway {
		t.Fatalf("got %v", err)
	}
}

func TestStreamErrorEventTypes(t *testing.T) {
	tests := []struct {
		typ    string
		status int
	}{
		{"overloaded_error", 503},
		{"api_error", 502},
		{"rate_limit_error", 429},
		{"invalid_request_error", 400},
		{"", 502},
	}
	for _, tt := range tests {
		stream := "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"" + tt.typ + "\",\"message\":\"m\"}}\n\n"
		_, err := NewStreamReader(strings.NewReader(stream), testMeta).Next()
		var ae *openai.APIError
		if !errors.As(err, &ae) || ae.Status != tt.status {
			t.Errorf("%q: got %v", tt.typ, err)
		}
	}
}

func TestStreamEmptyBody(t *testing.T) {
	_, err := NewStreamReader(strings.NewReader(""), testMeta).Next()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
	}
}

// --- inbound ---

// TestParseMessagesNativeOnly: what has no canonical form is accepted,
// left out of the struct and named in NativeOnly, so an Anthropic provider
// can still serve it from the client's own body.
func TestParseMessagesNativeOnly(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"url document", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"text","text":"read"},{"type":"document","source":{"type":"url","url":"https://x/y.pdf"}}]}]}`, `a document with a "url" source`},
		{"server tool", `{"model":"m","max_tokens":1,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[{"role":"user","content":"hi"}]}`, `server tool "web_search_20250305"`},
		{"server tool result", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"x"}},{"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[]},{"type":"text","text":"found"}]},{"role":"user","content":"more"}]}`, `content block type "server_tool_use"`},
		{"search result", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"search_result","source":"https://x","title":"t","content":[{"type":"text","text":"c"}]},{"type":"text","text":"q"}]}]}`, `content block type "search_result"`},
		{"plain", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`, ``},
	} {
		req, aerr := ParseMessagesRequest([]byte(tc.body))
		if aerr != nil {
			t.Errorf("%s: %v", tc.name, aerr)
			continue
		}
		if req.NativeOnly != tc.want {
			t.Errorf("%s: NativeOnly = %q, want %q", tc.name, req.NativeOnly, tc.want)
		}
		if string(req.NativeBody(openai.DialectAnthropic)) != tc.body {
			t.Errorf("%s: the client's body is not kept", tc.name)
		}
	}
}

func TestParseMessagesRequestErrors(t *testing.T) {
	tests := []struct {
		name, body, param string
	}{
		{"not json", `{"model":`, ""},
		{"no model", `{"max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`, "model"},
		{"no max_tokens", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, "max_tokens"},
		{"zero max_tokens", `{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}`, "max_tokens"},
		{"no messages", `{"model":"m","max_tokens":1,"messages":[]}`, "messages"},
		{"system role", `{"model":"m","max_tokens":1,"messages":[{"role":"system","content":"hi"}]}`, "messages.0.role"},
		{"content number", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":5}]}`, ""},
		{"image system", `{"model":"m","max_tokens":1,"system":[{"type":"image"}],"messages":[{"role":"user","content":"hi"}]}`, "system.0.type"},
		{"tool_use in user", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_use","id":"a","name":"b","input":{}}]}]}`, "messages.0.content.0.type"},
		{"tool_result in assistant", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"tool_result","tool_use_id":"a"}]}]}`, "messages.1.content.0.type"},
		{"tool_result without id", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result"}]}]}`, "messages.0.content.0.tool_use_id"},
		{"tool_use without id", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"tool_use","name":"b"}]}]}`, "messages.1.content.0"},
		{"image without source", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image"}]}]}`, "messages.0.content.0.source"},
		{"document without source", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document"}]}]}`, "messages.0.content.0.source"},
		{"block without type", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"text":"x"}]}]}`, "messages.0.content.0.type"},
		{"tool without name", `{"model":"m","max_tokens":1,"tools":[{"input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"hi"}]}`, "tools.0.name"},
		{"tool choice bogus", `{"model":"m","max_tokens":1,"tool_choice":{"type":"maybe"},"messages":[{"role":"user","content":"hi"}]}`, "tool_choice.type"},
		{"tool choice without name", `{"model":"m","max_tokens":1,"tool_choice":{"type":"tool"},"messages":[{"role":"user","content":"hi"}]}`, "tool_choice.name"},
		{"thinking bogus", `{"model":"m","max_tokens":1,"thinking":{"type":"on"},"messages":[{"role":"user","content":"hi"}]}`, "thinking.type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := ParseMessagesRequest([]byte(tt.body))
			if err == nil {
				t.Fatalf("accepted: %+v", req)
			}
			if err.Status != http.StatusBadRequest || err.Retryable {
				t.Errorf("status %d retryable %v", err.Status, err.Retryable)
			}
			got := ""
			if err.Param != nil {
				got = *err.Param
			}
			if got != tt.param {
				t.Errorf("param %q, want %q (%s)", got, tt.param, err.Message)
			}
			var env wire.ErrorResponse
			if json.Unmarshal(ErrorBody(err), &env) != nil || env.Type != "error" || env.Error.Type != "invalid_request_error" {
				t.Errorf("ErrorBody = %s", ErrorBody(err))
			}
		})
	}
}

func TestParseMessagesRequestMapping(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		effort string
		choice *openai.ToolChoice
	}{
		{"budget 1024", `{"thinking":{"type":"enabled","budget_tokens":1024}}`, "low", nil},
		{"budget 5000", `{"thinking":{"type":"enabled","budget_tokens":5000}}`, "medium", nil},
		{"budget 31999", `{"thinking":{"type":"enabled","budget_tokens":31999}}`, "high", nil},
		{"adaptive", `{"thinking":{"type":"adaptive"}}`, "medium", nil},
		{"disabled", `{"thinking":{"type":"disabled"}}`, "", nil},
		{"tool choice none", `{"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"none"}}`, "", &openai.ToolChoice{Mode: "none"}},
		{"tool choice tool", `{"tools":[{"name":"f"}],"tool_choice":{"type":"tool","name":"f"}}`, "", &openai.ToolChoice{Mode: "function", Function: "f"}},
		{"tool choice without tools", `{"tool_choice":{"type":"any"}}`, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}],` + tt.body[1:]
			req, err := ParseMessagesRequest([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if req.ReasoningEffort != tt.effort {
				t.Errorf("effort %q, want %q", req.ReasoningEffort, tt.effort)
			}
			if d := cmp.Diff(tt.choice, req.ToolChoice); d != "" {
				t.Errorf("tool_choice (-want +got):\n%s", d)
			}
		})
	}
}

// TestRoundTrip sends an Anthropic request through the canonical form and
// back out to Anthropic: everything with a canonical field must survive.
func TestRoundTrip(t *testing.T) {
	in := `{"model":"claude","max_tokens":2048,"system":"Be brief.","stop_sequences":["END"],"temperature":0.4,
	"metadata":{"user_id":"u1"},
	"tools":[{"name":"Read","description":"Read a file","input_schema":{"type":"object","properties":{"p":{"type":"string"}}}}],
	"tool_choice":{"type":"auto","disable_parallel_tool_use":true},
	"messages":[
	 {"role":"user","content":[{"type":"text","text":"Read a and b"}]},
	 {"role":"assistant","content":[{"type":"thinking","thinking":"two reads","signature":"sig"},{"type":"text","text":"Reading."},
	   {"type":"tool_use","id":"t1","name":"Read","input":{"p":"a"}},{"type":"tool_use","id":"t2","name":"Read","input":{"p":"b"}}]},
	 {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"A"},{"type":"tool_result","tool_use_id":"t2","content":[{"type":"text","text":"B1"},{"type":"text","text":"B2"}]},{"type":"text","text":"Compare."}]}
	]}`
	canon, aerr := ParseMessagesRequest([]byte(in))
	if aerr != nil {
		t.Fatal(aerr)
	}
	out, err := BuildRequest(canon, "claude", testProvider())
	if err != nil {
		t.Fatal(err)
	}
	var want wire.MessagesRequest
	if err := json.Unmarshal([]byte(in), &want); err != nil {
		t.Fatal(err)
	}
	// The canonical form has no string/array distinction for Anthropic
	// content, so compare after normalising both to JSON with blocks.
	norm := func(r *wire.MessagesRequest) string {
		for i := range r.Messages {
			if r.Messages[i].Content.IsString {
				r.Messages[i].Content = wire.BlocksContent(wire.ContentBlock{Type: "text", Text: r.Messages[i].Content.Text})
			}
		}
		if r.System != nil && r.System.IsString {
			c := wire.BlocksContent(wire.ContentBlock{Type: "text", Text: r.System.Text})
			r.System = &c
		}
		b, _ := json.Marshal(r)
		var v any
		_ = json.Unmarshal(b, &v)
		pretty, _ := json.MarshalIndent(v, "", " ")
		return string(pretty)
	}
	if d := cmp.Diff(norm(&want), norm(out)); d != "" {
		t.Errorf("round trip (-in +out):\n%s", d)
	}
}

func TestErrorBodyTypes(t *testing.T) {
	tests := map[int]string{
		400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
		404: "not_found_error", 413: "request_too_large", 422: "invalid_request_error", 429: "rate_limit_error",
		500: "api_error", 502: "api_error", 503: "overloaded_error", 504: "timeout_error", 529: "overloaded_error",
	}
	for status, want := range tests {
		b := ErrorBody(openai.NewError(status, openai.ErrorTypeForStatus(status), "", "", "boom"))
		var env wire.ErrorResponse
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatal(err)
		}
		if env.Type != "error" || env.Error.Type != want || env.Error.Message != "boom" {
			t.Errorf("%d: got %s", status, b)
		}
	}
}

func TestStopReason(t *testing.T) {
	for in, want := range map[string]string{"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
		"function_call": "tool_use", "content_filter": "refusal", "": "end_turn"} {
		if got := StopReason(in); got != want {
			t.Errorf("StopReason(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMessagesStreamWriterEdgeCases(t *testing.T) {
	str := func(s string) *string { return &s }
	chunk := func(d openai.Delta, finish *string) *openai.ChatChunk {
		return &openai.ChatChunk{Choices: []openai.ChunkChoice{{Delta: d, FinishReason: finish}}}
	}
	t.Run("empty stream still frames a message", func(t *testing.T) {
		var buf bytes.Buffer
		w := NewMessagesStreamWriter(sse.NewWriter(&buf), "msg_x", "m")
		if err := w.Close(nil); err != nil {
			t.Fatal(err)
		}
		checkAnthropicStream(t, buf.Bytes())
		if !strings.Contains(buf.String(), `"stop_reason":"end_turn"`) {
			t.Errorf("got %s", buf.String())
		}
	})
	t.Run("tool calls without finish_reason end as tool_use, ids generated", func(t *testing.T) {
		var buf bytes.Buffer
		w := NewMessagesStreamWriter(sse.NewWriter(&buf), "chatcmpl-9", "m")
		for _, c := range []*openai.ChatChunk{
			chunk(openai.Delta{ToolCalls: []openai.ToolCall{{Function: openai.FunctionCall{Name: "f", Arguments: `{"a":`}}}}, nil),
			chunk(openai.Delta{ToolCalls: []openai.ToolCall{{Function: openai.FunctionCall{Arguments: `1}`}}}}, nil),
			chunk(openai.Delta{Content: str("")}, str("stop")),
		} {
			if err := w.WriteChunk(c); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(nil); err != nil {
			t.Fatal(err)
		}
		checkAnthropicStream(t, buf.Bytes())
		out := buf.String()
		for _, want := range []string{`"id":"toolu_9_0"`, `"partial_json":"{\"a\":"`, `"partial_json":"1}"`, `"stop_reason":"tool_use"`} {
			if !strings.Contains(out, want) {
				t.Errorf("missing %s in\n%s", want, out)
			}
		}
		if err := w.WriteChunk(chunk(openai.Delta{Content: str("late")}, nil)); err == nil {
			t.Error("write after Close must fail")
		}
	})
	t.Run("non-API errors do not leak", func(t *testing.T) {
		var buf bytes.Buffer
		w := NewMessagesStreamWriter(sse.NewWriter(&buf), "msg_x", "m")
		if err := w.WriteChunk(chunk(openai.Delta{Content: str("x")}, nil)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(errors.New("dial tcp 10.0.0.1:443: secret detail")); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), "10.0.0.1") || !strings.Contains(buf.String(), `"type":"api_error"`) {
			t.Errorf("got %s", buf.String())
		}
	})
}

// TestThinkingInToolLoops pins when reasoning_effort becomes Anthropic
// thinking: Claude rejects a thinking request whose final assistant turn
// (tool loop or prefill) does not start with signed thinking, so thinking is
// left off unless the client sent the signed reasoning back.
func TestThinkingInToolLoops(t *testing.T) {
	const (
		user     = `{"role":"user","content":"What is 27 * 453?"}`
		unsigned = `{"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"calc","arguments":"{}"}}]}`
		signed   = `{"role":"assistant","reasoning_content":"use calc","reasoning_signature":"sig","tool_calls":[{"id":"t1","type":"function","function":{"name":"calc","arguments":"{}"}}]}`
		result   = `{"role":"tool","tool_call_id":"t1","content":"12231"}`
		answer   = `{"role":"assistant","content":"12231"}`
		next     = `{"role":"user","content":"And divided by 3?"}`
		prefill  = `{"role":"assistant","content":"The answer is"}`
		tools    = `"tools":[{"type":"function","function":{"name":"calc"}}]`
	)
	tests := []struct {
		name, extra, messages string
		wantBudget            int
		wantMax               int
	}{
		{"first turn", "", user, 16384, DefaultMaxTokens + 16384},
		{"unsigned tool loop", "", user + "," + unsigned + "," + result, 0, DefaultMaxTokens},
		{"signed tool loop", "", user + "," + signed + "," + result, 16384, DefaultMaxTokens + 16384},
		{"unsigned loop closed by a user turn", "", user + "," + unsigned + "," + result + "," + answer + "," + next, 16384, DefaultMaxTokens + 16384},
		{"tool results then user text", "", user + "," + unsigned + "," + result + "," + next, 0, DefaultMaxTokens},
		{"unsigned prefill", "", user + "," + prefill, 0, DefaultMaxTokens},
		{"client max_tokens caps the budget", `"max_tokens":3000,`, user, 2999, 3000},
		{"client max_tokens too small", `"max_tokens":1024,`, user, 0, 1024},
		{"forced tool use", `"tool_choice":"required",`, user, 0, DefaultMaxTokens},
		{"named tool", `"tool_choice":{"type":"function","function":{"name":"calc"}},`, user, 0, DefaultMaxTokens},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRequest(t, `{"model":"m","reasoning_effort":"high","temperature":0.2,`+tt.extra+tools+`,"messages":[`+tt.messages+`]}`)
			out, err := BuildRequest(r, "claude", testProvider())
			if err != nil {
				t.Fatal(err)
			}
			budget := 0
			if out.Thinking != nil {
				budget = out.Thinking.BudgetTokens
			}
			if budget != tt.wantBudget || *out.MaxTokens != tt.wantMax {
				t.Fatalf("budget %d max_tokens %d, want %d %d", budget, *out.MaxTokens, tt.wantBudget, tt.wantMax)
			}
			if budget > 0 && (out.Temperature != nil || budget >= *out.MaxTokens) {
				t.Fatalf("thinking with temperature %v or budget %d >= max_tokens %d", out.Temperature, budget, *out.MaxTokens)
			}
			if budget == 0 && (out.Temperature == nil || *out.Temperature != 0.2) {
				t.Fatalf("without thinking temperature must be kept, got %v", out.Temperature)
			}
		})
	}
}

// TestThinkingTopP pins top_p with thinking: only Anthropic's 0.95..1 range
// is sent, anything lower is dropped rather than rejected upstream.
func TestThinkingTopP(t *testing.T) {
	for _, tt := range []struct {
		topP float64
		sent bool
	}{{0.5, false}, {0.94, false}, {0.95, true}, {1, true}} {
		p := tt.topP
		r := &openai.ChatRequest{ReasoningEffort: "low", TopP: &p, Messages: []openai.Message{{Role: "user", Content: openai.TextContent("hi")}}}
		out, err := BuildRequest(r, "claude", testProvider())
		if err != nil {
			t.Fatal(err)
		}
		if out.Thinking == nil || (out.TopP != nil) != tt.sent || (tt.sent && *out.TopP != p) {
			t.Errorf("top_p %v: thinking %+v top_p %v, sent want %v", p, out.Thinking, out.TopP, tt.sent)
		}
	}
}

// TestConvertUsageCache pins the usage mapping: Anthropic's input_tokens
// exclude cache reads and writes, OpenAI's prompt_tokens include them, and
// cached_tokens are the cache reads only.
func TestConvertUsageCache(t *testing.T) {
	got := ConvertUsage(wire.Usage{InputTokens: 10, CacheReadInputTokens: 300, CacheCreationInputTokens: 50, OutputTokens: 7})
	if got.PromptTokens != 360 || got.CompletionTokens != 7 || got.TotalTokens != 367 ||
		got.PromptTokensDetails.CachedTokens != 300 || got.PromptTokensDetails.CacheWriteTokens != 50 {
		t.Errorf("got %+v %+v", got, got.PromptTokensDetails)
	}
}

// TestToolResultsOpenTheUserTurn pins block order in the turn after
// tool_use: tool results first (Anthropic rejects anything else), in the
// client's order, then text, even when the client sent text in between.
func TestToolResultsOpenTheUserTurn(t *testing.T) {
	r := mustRequest(t, `{"model":"m","messages":[{"role":"user","content":"go"},
	 {"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"b","type":"function","function":{"name":"f","arguments":"{}"}}]},
	 {"role":"tool","tool_call_id":"a","content":"A"},
	 {"role":"user","content":"note"},
	 {"role":"tool","tool_call_id":"b","content":"B"},
	 {"role":"user","content":"more"}]}`)
	out, err := BuildRequest(r, "claude", testProvider())
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 3 {
		t.Fatalf("got %d turns", len(out.Messages))
	}
	var got []string
	for _, b := range out.Messages[2].Content.Blocks {
		got = append(got, b.Type+":"+b.ToolUseID+b.Text)
	}
	want := []string{"tool_result:a", "tool_result:b", "text:note", "text:more"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("block order (-want +got):\n%s", diff)
	}
}

// TestStreamWithoutMessageStart: a stream that is nothing but its end was
// cut or garbled upstream; it must not pass for a clean, empty answer.
func TestStreamWithoutMessageStart(t *testing.T) {
	cr := NewStreamReader(strings.NewReader("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"), testMeta)
	c, err := cr.Next()
	var ae *openai.APIError
	if c != nil || !errors.As(err, &ae) || !ae.Retryable {
		t.Fatalf("Next = %v, %v; want a retryable upstream error", c, err)
	}
}
