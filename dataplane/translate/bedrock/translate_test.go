package bedrock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/google/go-cmp/cmp"

	"tollgate.dev/tollgate/dataplane/eventstream"
	"tollgate.dev/tollgate/dataplane/routetable"
	wire "tollgate.dev/tollgate/dataplane/schema/bedrock"
	"tollgate.dev/tollgate/dataplane/schema/openai"
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

func target(model string) translate.Target {
	return translate.Target{Provider: testProvider(), Model: model}
}

type failingFetcher struct{}

func (failingFetcher) Fetch(context.Context, string) (string, []byte, error) {
	return "", nil, errors.New("image URL resolves to a forbidden address")
}

func TestBuildConverseErrors(t *testing.T) {
	const hi = `{"role":"user","content":"hi"}`
	tests := []struct {
		name, req, param string
		media            translate.MediaFetcher
	}{
		{"n>1", `{"model":"m","n":2,"messages":[` + hi + `]}`, "n", nil},
		{"logprobs", `{"model":"m","logprobs":true,"messages":[` + hi + `]}`, "logprobs", nil},
		{"invalid arguments", `{"model":"m","messages":[` + hi + `,{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{\"x\":"}}]}]}`, "messages[1].tool_calls[0].function.arguments", nil},
		{"non-object arguments", `{"model":"m","messages":[` + hi + `,{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "messages[1].tool_calls[0].function.arguments", nil},
		{"tool call without id", `{"model":"m","messages":[` + hi + `,{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]}`, "messages[1].tool_calls[0]", nil},
		{"tool message without id", `{"model":"m","messages":[{"role":"tool","content":"x"}]}`, "messages[0].tool_call_id", nil},
		{"only system", `{"model":"m","messages":[{"role":"system","content":"x"}]}`, "messages", nil},
		{"only empty user", `{"model":"m","messages":[{"role":"user","content":""}]}`, "messages", nil},
		{"function role", `{"model":"m","messages":[{"role":"function","content":"x"}]}`, "messages[0].role", nil},
		{"audio", `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA==","format":"wav"}}]}]}`, "messages[0].content[0].type", nil},
		{"file id", `{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}`, "messages[0].content[0].file", nil},
		{"file of unsupported type", `{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/zip;base64,UEsDBA=="}}]}]}`, "messages[0].content[0].file.file_data", nil},
		{"file with bad base64", `{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"%%%"}}]}]}`, "messages[0].content[0].file.file_data", nil},
		{"file in system", `{"model":"m","messages":[{"role":"system","content":[{"type":"file","file":{"file_data":"JVBE"}}]},` + hi + `]}`, "messages[0].content[0].type", nil},
		{"http image without fetcher", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`, "messages[0].content[0].image_url", nil},
		{"fetch refused", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://169.254.169.254/y.png"}}]}]}`, "messages[0].content[0].image_url", failingFetcher{}},
		{"bad data url", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,%%%"}}]}]}`, "messages[0].content[0].image_url", nil},
		{"unsupported image type", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/bmp;base64,Qk0="}}]}]}`, "messages[0].content[0].image_url", nil},
		{"empty image url", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":""}}]}]}`, "messages[0].content[0].image_url", nil},
		{"bad image in tool result", `{"model":"m","messages":[{"role":"tool","tool_call_id":"a","content":[{"type":"image_url","image_url":{"url":"data:text/plain,hi"}}]}]}`, "messages[0].content[0].image_url", nil},
		{"image in system", `{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},` + hi + `]}`, "messages[0].content[0].type", nil},
		{"image in assistant", `{"model":"m","messages":[` + hi + `,{"role":"assistant","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`, "messages[1].content[0].type", nil},
		{"reserved tool name", `{"model":"m","tools":[{"type":"function","function":{"name":"tollgate_json_response"}}],"messages":[` + hi + `]}`, "tools[0].function.name", nil},
		{"tool without name", `{"model":"m","tools":[{"type":"function","function":{}}],"messages":[` + hi + `]}`, "tools[0].function.name", nil},
		{"non-function tool", `{"model":"m","tools":[{"type":"web_search"}],"messages":[` + hi + `]}`, "tools[0].type", nil},
		{"unknown named tool", `{"model":"m","tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"function","function":{"name":"b"}},"messages":[` + hi + `]}`, "tool_choice", nil},
		{"json_schema without schema", `{"model":"m","response_format":{"type":"json_schema"},"messages":[` + hi + `]}`, "response_format.json_schema", nil},
		{"unknown response format", `{"model":"m","response_format":{"type":"yaml"},"messages":[` + hi + `]}`, "response_format.type", nil},
		{"max_tokens 0", `{"model":"m","max_tokens":0,"messages":[` + hi + `]}`, "max_tokens", nil},
		{"max_completion_tokens 0", `{"model":"m","max_completion_tokens":0,"messages":[` + hi + `]}`, "max_completion_tokens", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := target("amazon.nova-pro-v1:0")
			tg.Media = tt.media
			_, err := testTranslator().ChatRequest(context.Background(), mustRequest(t, tt.req), tg)
			var ae *openai.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("got %v, want *openai.APIError", err)
			}
			if ae.Status != http.StatusBadRequest || ae.Type != openai.TypeInvalidRequest || ae.Retryable {
				t.Errorf("got status %d type %s retryable %v", ae.Status, ae.Type, ae.Retryable)
			}
			if ae.Param == nil || *ae.Param != tt.param {
				t.Errorf("param = %v, want %q (%s)", ae.Param, tt.param, ae.Message)
			}
			if strings.Contains(ae.Message, "EXAMPLEKEY") {
				t.Errorf("message leaks the secret: %s", ae.Message)
			}
		})
	}
}

func TestChatRequestTargetErrors(t *testing.T) {
	req := mustRequest(t, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	noRegion := testProvider()
	noRegion.Region, noRegion.BaseURL = "", "https://bedrock.example.com"
	badURL := testProvider()
	badURL.BaseURL = "ftp://bedrock.example.com"
	noCreds := testProvider()
	noCreds.AWSAccessKeyID, noCreds.AWSSecretAccessKey = "", ""
	tests := []struct {
		name string
		t    translate.Target
	}{
		{"no provider", translate.Target{Model: "m"}},
		{"no model", translate.Target{Provider: testProvider()}},
		{"no region", translate.Target{Provider: noRegion, Model: "m"}},
		{"invalid base URL", translate.Target{Provider: badURL, Model: "m"}},
		{"no credentials", translate.Target{Provider: noCreds, Model: "m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := testTranslator().ChatRequest(context.Background(), req, tt.t)
			if err == nil {
				t.Fatal("want an error")
			}
			var ae *openai.APIError
			if errors.As(err, &ae) {
				t.Errorf("configuration error %v must not look like the client's fault", err)
			}
			if strings.Contains(err.Error(), "EXAMPLEKEY") {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestToolChoice(t *testing.T) {
	anyChoice := &wire.ToolChoice{Any: &struct{}{}}
	named := func(n string) *wire.ToolChoice { return &wire.ToolChoice{Tool: &wire.SpecificTool{Name: n}} }
	base := `"tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"hi"}]`
	history := `"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"g","arguments":"{}"}}]},{"role":"tool","tool_call_id":"a","content":"ok"}]`
	tests := []struct {
		name      string
		req       string
		want      *wire.ToolChoice
		tools     []string
		forcedTag bool
	}{
		{"unset is auto", `{` + base + `}`, nil, []string{"f"}, false},
		{"auto sends nothing", `{"tool_choice":"auto",` + base + `}`, nil, []string{"f"}, false},
		{"required is any", `{"tool_choice":"required",` + base + `}`, anyChoice, []string{"f"}, true},
		{"named", `{"tool_choice":{"type":"function","function":{"name":"f"}},` + base + `}`, named("f"), []string{"f"}, true},
		{"none drops tools", `{"tool_choice":"none",` + base + `}`, nil, nil, false},
		{"required without tools", `{"tool_choice":"required","messages":[{"role":"user","content":"hi"}]}`, nil, nil, false},
		{"none with history keeps declared tools", `{"tool_choice":"none","tools":[{"type":"function","function":{"name":"g"}}],` + history + `}`, nil, []string{"g"}, false},
		{"history without tools declares them", `{` + history + `}`, nil, []string{"g"}, false},
		{"parallel_tool_calls ignored", `{"parallel_tool_calls":false,` + base + `}`, nil, []string{"f"}, false},
		{"json_object alone forces the answer tool", `{"response_format":{"type":"json_object"},"messages":[{"role":"user","content":"hi"}]}`, named("tollgate_json_response"), []string{"tollgate_json_response"}, true},
		{"json_object with tools is any", `{"response_format":{"type":"json_object"},` + base + `}`, anyChoice, []string{"f", "tollgate_json_response"}, true},
		{"json_object with none forces the answer", `{"tool_choice":"none","response_format":{"type":"json_object"},` + base + `}`, named("tollgate_json_response"), []string{"tollgate_json_response"}, true},
		{"json_object keeps a named tool", `{"tool_choice":{"type":"function","function":{"name":"f"}},"response_format":{"type":"json_object"},` + base + `}`, named("f"), []string{"f", "tollgate_json_response"}, true},
		{"text format is a no-op", `{"response_format":{"type":"text"},` + base + `}`, nil, []string{"f"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := BuildConverse(context.Background(), mustRequest(t, tt.req), target("amazon.nova-pro-v1:0"))
			if err != nil {
				t.Fatal(err)
			}
			var got *wire.ToolChoice
			var names []string
			if out.ToolConfig != nil {
				got = out.ToolConfig.ToolChoice
				for _, tl := range out.ToolConfig.Tools {
					names = append(names, tl.ToolSpec.Name)
				}
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("toolChoice (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.tools, names); d != "" {
				t.Errorf("tools (-want +got):\n%s", d)
			}
		})
	}
}

func TestInferenceConfig(t *testing.T) {
	n := func(i int) *int { return &i }
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name     string
		req      string
		model    string
		provider *routetable.Provider
		want     wire.InferenceConfig
		thinking string
	}{
		{"default max tokens injected", `{}`, "amazon.nova-pro-v1:0", testProvider(), wire.InferenceConfig{MaxTokens: n(DefaultMaxTokens)}, ""},
		{"provider default", `{}`, "amazon.nova-pro-v1:0", &routetable.Provider{DefaultMaxTokens: 100}, wire.InferenceConfig{MaxTokens: n(100)}, ""},
		{"model entry wins over provider", `{}`, "m1", &routetable.Provider{DefaultMaxTokens: 100, Models: []routetable.Model{{Name: "m1", MaxOutputTokens: 9000}}}, wire.InferenceConfig{MaxTokens: n(9000)}, ""},
		{"max_completion_tokens wins", `{"max_tokens":10,"max_completion_tokens":20}`, "m", testProvider(), wire.InferenceConfig{MaxTokens: n(20)}, ""},
		{"temperature clamped to 1", `{"temperature":2}`, "m", testProvider(), wire.InferenceConfig{MaxTokens: n(DefaultMaxTokens), Temperature: f(1)}, ""},
		{"temperature 0 and top_p kept", `{"temperature":0,"top_p":0.1}`, "m", testProvider(), wire.InferenceConfig{MaxTokens: n(DefaultMaxTokens), Temperature: f(0), TopP: f(0.1)}, ""},
		{"stop string", `{"stop":"END"}`, "m", testProvider(), wire.InferenceConfig{MaxTokens: n(DefaultMaxTokens), StopSequences: []string{"END"}}, ""},
		{"empty stops dropped", `{"stop":["", "x"]}`, "m", testProvider(), wire.InferenceConfig{MaxTokens: n(DefaultMaxTokens), StopSequences: []string{"x"}}, ""},
		{"thinking raises default max tokens", `{"reasoning_effort":"low","temperature":0.5,"top_p":0.5}`, "anthropic.claude-sonnet-4", testProvider(),
			wire.InferenceConfig{MaxTokens: n(DefaultMaxTokens + 2048)}, `{"thinking":{"type":"enabled","budget_tokens":2048}}`},
		{"thinking within client max", `{"reasoning_effort":"medium","max_tokens":32000}`, "us.anthropic.claude-opus-4", testProvider(),
			wire.InferenceConfig{MaxTokens: n(32000)}, `{"thinking":{"type":"enabled","budget_tokens":8192}}`},
		{"client max too small for thinking keeps sampling", `{"reasoning_effort":"high","max_tokens":500,"temperature":0.3}`, "anthropic.claude-3-7-sonnet", testProvider(),
			wire.InferenceConfig{MaxTokens: n(500), Temperature: f(0.3)}, ""},
		{"reasoning none", `{"reasoning_effort":"none","temperature":0.3}`, "anthropic.claude-3-7-sonnet", testProvider(),
			wire.InferenceConfig{MaxTokens: n(DefaultMaxTokens), Temperature: f(0.3)}, ""},
		{"non-Claude ignores effort", `{"reasoning_effort":"high"}`, "deepseek.r1-v1:0", testProvider(), wire.InferenceConfig{MaxTokens: n(DefaultMaxTokens)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRequest(t, tt.req)
			r.Messages = []openai.Message{{Role: "user", Content: openai.TextContent("hi")}}
			out, err := BuildConverse(context.Background(), r, translate.Target{Provider: tt.provider, Model: tt.model})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, *out.InferenceConfig); d != "" {
				t.Errorf("inferenceConfig (-want +got):\n%s", d)
			}
			if got := string(out.AdditionalModelRequestFields); got != tt.thinking {
				t.Errorf("additionalModelRequestFields = %s, want %s", got, tt.thinking)
			}
		})
	}
}

func TestThinkingNeedsSignedTail(t *testing.T) {
	const loop = `{"role":"user","content":"q"},{"role":"assistant",%s"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"a","content":"r"}`
	signed := `"reasoning_content":"t","reasoning_signature":"s",`
	tests := []struct {
		name     string
		messages string
		thinking bool
	}{
		{"fresh question", `{"role":"user","content":"q"}`, true},
		{"signed tool loop", fmt.Sprintf(loop, signed), true},
		{"unsigned tool loop", fmt.Sprintf(loop, ""), false},
		{"unsigned tool loop, then user text in the same turn", fmt.Sprintf(loop, "") + `,{"role":"user","content":"and?"}`, false},
		{"finished tool loop, new question", fmt.Sprintf(loop, "") + `,{"role":"assistant","content":"done"},{"role":"user","content":"next"}`, true},
		{"unsigned prefill", `{"role":"user","content":"q"},{"role":"assistant","content":"Sure:"}`, false},
		{"signed prefill", `{"role":"user","content":"q"},{"role":"assistant","content":"Sure:",` + strings.TrimSuffix(signed, ",") + `}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := mustRequest(t, `{"model":"m","reasoning_effort":"low","tools":[{"type":"function","function":{"name":"f"}}],"messages":[`+tt.messages+`]}`)
			out, err := BuildConverse(context.Background(), req, target("anthropic.claude-sonnet-4"))
			if err != nil {
				t.Fatal(err)
			}
			if got := len(out.AdditionalModelRequestFields) > 0; got != tt.thinking {
				t.Errorf("thinking = %v, want %v (%s)", got, tt.thinking, out.AdditionalModelRequestFields)
			}
		})
	}
}

func TestSigning(t *testing.T) {
	req := mustRequest(t, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	sign := func(now time.Time, p *routetable.Provider) http.Header {
		tr := &Translator{Now: func() time.Time { return now }}
		hr, err := tr.ChatRequest(context.Background(), req, translate.Target{Provider: p, Model: "amazon.nova-pro-v1:0"})
		if err != nil {
			t.Fatal(err)
		}
		return hr.Header
	}
	a, b := sign(testNow, testProvider()), sign(testNow, testProvider())
	if a.Get("Authorization") != b.Get("Authorization") {
		t.Fatal("signature is not deterministic for a fixed clock")
	}
	if got := a.Get("X-Amz-Date"); got != "20260102T030405Z" {
		t.Errorf("X-Amz-Date = %q", got)
	}
	if !strings.HasPrefix(a.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/bedrock/aws4_request, SignedHeaders=") {
		t.Errorf("Authorization = %q", a.Get("Authorization"))
	}
	if a.Get("X-Amz-Security-Token") != "" {
		t.Error("security token sent without a session token")
	}
	later := sign(testNow.Add(time.Second), testProvider())
	if later.Get("Authorization") == a.Get("Authorization") {
		t.Error("signature does not depend on the clock")
	}
	p := testProvider()
	p.AWSSessionToken = "TOKEN"
	withToken := sign(testNow, p)
	if withToken.Get("X-Amz-Security-Token") != "TOKEN" || !strings.Contains(withToken.Get("Authorization"), "x-amz-security-token") {
		t.Errorf("session token not signed: %v", withToken)
	}
	p = testProvider()
	p.APIKey = "brk-key"
	bearer := sign(testNow, p)
	if bearer.Get("Authorization") != "Bearer brk-key" || bearer.Get("X-Amz-Date") != "" {
		t.Errorf("API key auth: %v", bearer)
	}
	// Without a pinned clock the wall clock is used.
	hr, err := New().ChatRequest(context.Background(), req, translate.Target{Provider: testProvider(), Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := time.Parse("20060102T150405Z", hr.Header.Get("X-Amz-Date"))
	if err != nil || time.Since(d).Abs() > time.Minute {
		t.Errorf("X-Amz-Date %q is not now: %v", hr.Header.Get("X-Amz-Date"), err)
	}
	body, _ := io.ReadAll(hr.Body)
	if !json.Valid(body) {
		t.Errorf("body is not JSON: %s", body)
	}
}

func TestError(t *testing.T) {
	const ns = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
	tests := []struct {
		name       string
		status     int
		errType    string // x-amzn-ErrorType header
		retryAfter string
		body       string
		wantStatus int
		wantType   string
		wantCode   string
		wantMsg    string
		retryable  bool
		wantRetry  time.Duration
	}{
		{"throttling", 429, "ThrottlingException" + ns, "7", `{"message":"Too many requests, please wait before trying again."}`, 429, openai.TypeRateLimit, "ThrottlingException", "Too many requests, please wait before trying again.", true, 7 * time.Second},
		{"validation", 400, "ValidationException" + ns, "", `{"message":"Malformed input request: #/messages/0: required key [content] not found"}`, 400, openai.TypeInvalidRequest, "ValidationException", "Malformed input request: #/messages/0: required key [content] not found", false, 0},
		{"model not ready", 429, "ModelNotReadyException", "", `{"message":"Model is not ready"}`, 429, openai.TypeRateLimit, "ModelNotReadyException", "Model is not ready", true, 0},
		{"service unavailable", 503, "ServiceUnavailableException", "3", `{"message":"Service unavailable"}`, 503, "", "ServiceUnavailableException", "Service unavailable", true, 3 * time.Second},
		{"internal server", 500, "InternalServerException", "", `{"message":"oops"}`, 502, "", "InternalServerException", "oops", true, 0},
		{"model timeout", 408, "ModelTimeoutException", "", `{"message":"slow"}`, 504, "", "ModelTimeoutException", "slow", true, 0},
		{"model error", 424, "ModelErrorException", "", `{"message":"model failed","originalStatusCode":500}`, 502, "", "ModelErrorException", "model failed", true, 0},
		{"access denied", 403, "AccessDeniedException" + ns, "", `{"Message":"You don't have access to the model with the specified model ID."}`, 403, "", "AccessDeniedException", "You don't have access to the model with the specified model ID.", false, 0},
		{"unrecognized client", 403, "UnrecognizedClientException", "", `{"message":"The security token included in the request is invalid."}`, 403, "", "UnrecognizedClientException", "The security token included in the request is invalid.", false, 0},
		{"not found", 404, "ResourceNotFoundException", "", `{"message":"Model not found"}`, 404, "", "ResourceNotFoundException", "Model not found", false, 0},
		{"quota", 400, "ServiceQuotaExceededException", "", `{"message":"quota"}`, 429, openai.TypeInsufficient, "ServiceQuotaExceededException", "quota", true, 0},
		{"type in body", 400, "", "", `{"__type":"com.amazon.coral.validate#ValidationException","message":"bad"}`, 400, openai.TypeInvalidRequest, "ValidationException", "bad", false, 0},
		{"unknown type keeps status", 409, "WeirdException", "", `{"message":"weird"}`, 409, "", "WeirdException", "weird", false, 0},
		{"no body", 502, "", "", ``, 502, "", "", "bedrock returned HTTP 502", true, 0},
		{"html body", 503, "", "", `<html>busy</html>`, 503, "", "", "bedrock returned HTTP 503", true, 0},
		{"signature mismatch is scrubbed", 403, "InvalidSignatureException", "", `{"message":"The request signature we calculated does not match the signature you provided. The Canonical String for this request should have been 'POST\n/model/x/converse\n\nx-amz-security-token:SECRET'"}`, 403, "", "InvalidSignatureException", "The request signature we calculated does not match the signature you provided.", false, 0},
		{"fractional retry-after", 429, "ThrottlingException", " 1.5 ", `{"message":"slow"}`, 429, openai.TypeRateLimit, "ThrottlingException", "slow", true, 1500 * time.Millisecond},
		{"garbage retry-after", 503, "ServiceUnavailableException", "soon", `{"message":"busy"}`, 503, "", "ServiceUnavailableException", "busy", true, 0},
		{"retry-after ignored on 400", 400, "ValidationException", "5", `{"message":"bad"}`, 400, openai.TypeInvalidRequest, "ValidationException", "bad", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.errType != "" {
				h.Set("x-amzn-ErrorType", tt.errType)
			}
			if tt.retryAfter != "" {
				h.Set("Retry-After", tt.retryAfter)
			}
			e := New().Error(tt.status, h, []byte(tt.body))
			if e.Status != tt.wantStatus || e.Retryable != tt.retryable || e.RetryAfter != tt.wantRetry {
				t.Errorf("status %d retryable %v retryAfter %v, want %d %v %v", e.Status, e.Retryable, e.RetryAfter, tt.wantStatus, tt.retryable, tt.wantRetry)
			}
			wantType := tt.wantType
			if wantType == "" {
				wantType = openai.ErrorTypeForStatus(tt.wantStatus)
			}
			if e.Type != wantType {
				t.Errorf("type %q, want %q", e.Type, wantType)
			}
			code := ""
			if e.Code != nil {
				code = *e.Code
			}
			if code != tt.wantCode {
				t.Errorf("code %q, want %q", code, tt.wantCode)
			}
			if e.Message != tt.wantMsg {
				t.Errorf("message %q, want %q", e.Message, tt.wantMsg)
			}
			if strings.Contains(e.Message, "SECRET") {
				t.Error("message leaks the session token")
			}
		})
	}
}

func TestErrorMessageBounded(t *testing.T) {
	long := strings.Repeat("é", 3000)
	e := New().Error(400, http.Header{}, []byte(`{"message":"`+long+`"}`))
	if len(e.Message) > maxMessageLen || !strings.HasPrefix(long, e.Message) {
		t.Errorf("message of %d bytes not cut cleanly to %d", len(e.Message), maxMessageLen)
	}
}

func TestRetryAfterDate(t *testing.T) {
	h := http.Header{}
	h.Set("x-amzn-ErrorType", "ThrottlingException")
	h.Set("Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
	e := New().Error(429, h, []byte(`{"message":"slow down"}`))
	if e.RetryAfter < 80*time.Second || e.RetryAfter > 91*time.Second {
		t.Errorf("RetryAfter = %v, want about 90s", e.RetryAfter)
	}
}

func TestChatResponseInvalid(t *testing.T) {
	for _, body := range []string{``, `{`, `[]`, `{}`, `{"stopReason":"end_turn","usage":{"inputTokens":1}}`, `{"output":{"message":{"content":"x"}}}`,
		`<html>502 Bad Gateway from https://bedrock-runtime.us-east-1.amazonaws.com AKIDEXAMPLE</html>`} {
		_, err := New().ChatResponse([]byte(body), target("m"), testMeta)
		if err == nil {
			t.Errorf("ChatResponse(%q) succeeded", body)
			continue
		}
		checkMalformed(t, err)
	}
}

// checkMalformed asserts err is the 502 invalid_upstream_response the
// other translators give for answers they cannot understand, and that its
// message quotes nothing from upstream.
func checkMalformed(t *testing.T, err error) {
	t.Helper()
	var ae *openai.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %T %v, want *openai.APIError", err, err)
	}
	if ae.Status != http.StatusBadGateway || ae.Type != openai.TypeServer || ae.Code == nil || *ae.Code != "invalid_upstream_response" || !ae.Retryable {
		t.Errorf("got status %d type %q code %v retryable %v", ae.Status, ae.Type, ae.Code, ae.Retryable)
	}
	if !strings.HasPrefix(ae.Message, "bedrock: ") {
		t.Errorf("message %q does not say bedrock", ae.Message)
	}
	for _, leak := range []string{"http", "AKID", "amazonaws", "127.0.0.1", "secret", "<html"} {
		if strings.Contains(ae.Message, leak) {
			t.Errorf("message %q quotes %q", ae.Message, leak)
		}
	}
}

// eventStream encodes event records {event type, JSON payload} as a
// ConverseStream body.
func eventStream(t *testing.T, events ...[2]string) []byte {
	t.Helper()
	var out []byte
	for _, ev := range events {
		var err error
		out, err = eventstream.AppendMessage(out, &eventstream.Message{Headers: []eventstream.Header{
			eventstream.StringHeader(":message-type", "event"), eventstream.StringHeader(":event-type", ev[0]),
			eventstream.StringHeader(":content-type", "application/json"),
		}, Payload: []byte(ev[1])})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestStreamMalformed(t *testing.T) {
	start := [2]string{"messageStart", `{"role":"assistant"}`}
	valid := eventStream(t, start, [2]string{"contentBlockDelta", `{"contentBlockIndex":0,"delta":{"text":"hi"}}`})
	corrupt := append([]byte(nil), valid...)
	corrupt[len(corrupt)-6] ^= 0xff // a payload byte of the second message: its checksum fails
	badPrelude := append([]byte(nil), valid...)
	badPrelude[0] ^= 0x01 // the first message's length: its prelude checksum fails
	for _, tc := range []struct {
		name  string
		body  []byte
		wantN int // chunks before the error
	}{
		{"tool use without a name", eventStream(t, start, [2]string{"contentBlockStart", `{"contentBlockIndex":0,"start":{"toolUse":{"toolUseId":"t1"}}}`}), 1},
		{"tool use without an id", eventStream(t, start, [2]string{"contentBlockStart", `{"contentBlockIndex":0,"start":{"toolUse":{"name":"f"}}}`}), 1},
		{"tool input for a text block", eventStream(t, start, [2]string{"contentBlockDelta", `{"contentBlockIndex":0,"delta":{"toolUse":{"input":"{}"}}}`}), 1},
		{"metadata before messageStop", eventStream(t, start, [2]string{"metadata", `{"usage":{"inputTokens":1,"outputTokens":1}}`}), 1},
		{"payload is not JSON", eventStream(t, start, [2]string{"contentBlockDelta", `<html>https://example.com AKIDEXAMPLE</html>`}), 1},
		{"payload of the wrong type", eventStream(t, [2]string{"messageStop", `{"stopReason":42}`}), 0},
		{"message checksum", corrupt, 1},
		{"prelude checksum", badPrelude, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := New().ChatStream(bytes.NewReader(tc.body), translate.Target{Provider: testProvider()}, testMeta)
			n := 0
			var err error
			for {
				var c *openai.ChatChunk
				if c, err = r.Next(); err != nil {
					break
				}
				if c != nil {
					n++
				}
			}
			if n != tc.wantN {
				t.Errorf("%d chunks before the error, want %d", n, tc.wantN)
			}
			checkMalformed(t, err)
			if _, again := r.Next(); again != err {
				t.Errorf("second Next = %v, want the same error", again)
			}
		})
	}
}

// A stream cut inside a message is still a cut stream, not a malformed one.
func TestStreamCutIsUnexpectedEOF(t *testing.T) {
	body := eventStream(t, [2]string{"messageStart", `{"role":"assistant"}`})
	r := New().ChatStream(bytes.NewReader(body[:len(body)-3]), translate.Target{Provider: testProvider()}, testMeta)
	if _, err := r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Next = %v, want io.ErrUnexpectedEOF", err)
	}
}
