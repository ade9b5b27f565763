package anthropic

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
)

// A Messages request a Claude client sends: prompt caching, top_k, a
// document block's citations flag, service tier, metadata.
const nativeRequest = `{"model":"claude-public","max_tokens":1024,"top_k":40,"service_tier":"auto",` +
	`"system":[{"type":"text","text":"You are terse.","cache_control":{"type":"ephemeral","ttl":"1h"}}],` +
	`"messages":[{"role":"user","content":[{"type":"text","text":"Summarise.","cache_control":{"type":"ephemeral"}}]}],` +
	`"metadata":{"user_id":"u-1"}}`

func TestNativeRequest(t *testing.T) {
	req, aerr := ParseMessagesRequest([]byte(nativeRequest))
	if aerr != nil {
		t.Fatal(aerr)
	}
	req.Native.Beta = "context-1m-2025-08-07, interleaved-thinking-2025-05-14"
	p := testProvider()
	p.Headers = map[string]string{"anthropic-beta": "interleaved-thinking-2025-05-14,token-efficient-tools-2025-02-19"}
	hr, err := New().ChatRequest(context.Background(), req, translate.Target{Provider: p, Model: "claude-sonnet-4-5"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hr.Body)
	want := strings.Replace(nativeRequest, `"model":"claude-public"`, `"model":"claude-sonnet-4-5"`, 1)
	if string(body) != want {
		t.Errorf("native body\n got %s\nwant %s", body, want)
	}
	if got, want := hr.Header.Get("anthropic-beta"), "interleaved-thinking-2025-05-14,token-efficient-tools-2025-02-19,context-1m-2025-08-07"; got != want {
		t.Errorf("anthropic-beta = %q, want %q", got, want)
	}
	if hr.Header.Get("x-api-key") != p.APIKey || hr.Header.Get("anthropic-version") == "" {
		t.Errorf("credential or version header missing: %v", hr.Header)
	}
}

// TestNativeRequestFallsBack: without the client's body (a data policy
// cleared it, or the client spoke OpenAI) the request is translated, and
// what the canonical form lacks is gone.
func TestNativeRequestFallsBack(t *testing.T) {
	req, aerr := ParseMessagesRequest([]byte(nativeRequest))
	if aerr != nil {
		t.Fatal(aerr)
	}
	req.Native = nil
	hr, err := New().ChatRequest(context.Background(), req, translate.Target{Provider: testProvider(), Model: "claude-sonnet-4-5"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hr.Body)
	if bytes.Contains(body, []byte("cache_control")) && bytes.Contains(body, []byte("top_k")) {
		t.Errorf("translated body kept client-only fields: %s", body)
	}
	if hr.Header.Get("anthropic-beta") != "" {
		t.Errorf("anthropic-beta sent without a client asking: %q", hr.Header.Get("anthropic-beta"))
	}
	other := &openai.ChatRequest{Model: "m", Messages: []openai.Message{{Role: "user", Content: openai.TextContent("hi")}},
		Native: &openai.Native{Dialect: openai.DialectOpenAI, Body: []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)}}
	hr, err = New().ChatRequest(context.Background(), other, translate.Target{Provider: testProvider(), Model: "claude-sonnet-4-5"})
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(hr.Body); !bytes.Contains(body, []byte(`"max_tokens"`)) {
		t.Errorf("an OpenAI-dialect body was sent to Anthropic as is: %s", body)
	}
}

func TestNativeResponse(t *testing.T) {
	for _, in := range tt.Fixtures(t, "responses", ".json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			body := tt.ReadFile(t, in)
			out, usage, ok := New().(Translator).ChatResponseBytes(body, translate.Target{Provider: testProvider()}, testMeta)
			if !ok {
				t.Fatal("declined a Messages answer")
			}
			var got, up map[string]any
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			_ = json.Unmarshal(body, &up)
			if got["id"] != messageID(testMeta.ID) || got["model"] != testMeta.Model {
				t.Errorf("envelope not replaced: id %v model %v", got["id"], got["model"])
			}
			delete(got, "id")
			delete(got, "model")
			delete(up, "id")
			delete(up, "model")
			gb, _ := json.Marshal(got)
			ub, _ := json.Marshal(up)
			if !bytes.Equal(gb, ub) {
				t.Errorf("answer changed beyond the envelope\n got %s\nwant %s", gb, ub)
			}
			want, err := New().ChatResponse(body, translate.Target{Provider: testProvider()}, testMeta)
			if err != nil {
				t.Fatal(err)
			}
			if u, w := mustJSON(t, usage), mustJSON(t, want.Usage); u != w {
				t.Errorf("usage %s, canonical %s", u, w)
			}
		})
	}
	for _, body := range []string{`{"type":"error","error":{"type":"overloaded_error","message":"x"}}`, `{"type":"message"}`, `[1]`, `{"type":"message","usage":{}} x`} {
		if _, _, ok := New().(Translator).ChatResponseBytes([]byte(body), translate.Target{}, testMeta); ok {
			t.Errorf("accepted %s", body)
		}
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// nativeResult is what a client gets from a native stream.
type nativeResult struct {
	Events []nativeOut    `json:"events"`
	End    map[string]any `json:"end"`
	Usage  *openai.Usage  `json:"usage"`
	Error  *nativeOut     `json:"error_event,omitempty"`
}

type nativeOut struct {
	Name string `json:"event"`
	Data string `json:"data"`
}

func readNative(t testing.TB, r io.Reader) nativeResult {
	t.Helper()
	er := New().(Translator).ChatStreamNative(r, translate.Target{Provider: testProvider()}, testMeta)
	var res nativeResult
	for n := 0; ; n++ {
		if n > tt.MaxChunks {
			t.Fatal("native stream does not end")
		}
		name, data, err := er.Next()
		if err != nil {
			res.End = tt.DescribeEnd(err)
			if err != io.EOF {
				n, d := er.ErrorEvent(err)
				res.Error = &nativeOut{n, string(d)}
			}
			if _, _, again := er.Next(); again != err {
				t.Fatalf("terminal error did not stick: %v then %v", err, again)
			}
			break
		}
		res.Events = append(res.Events, nativeOut{name, string(data)})
	}
	res.Usage = er.Usage()
	return res
}

// TestNativeStreamGolden replays every Anthropic stream fixture natively:
// events pass as they came, message_start with the gateway's id and model,
// and the metered usage equals what the translating reader reports.
func TestNativeStreamGolden(t *testing.T) {
	for _, in := range tt.Fixtures(t, "streams", ".sse") {
		name := strings.TrimSuffix(filepath.Base(in), ".sse")
		t.Run(name, func(t *testing.T) {
			data := tt.ReadFile(t, in)
			res := readNative(t, bytes.NewReader(data))
			tt.CheckJSON(t, filepath.Join("testdata", "native", name+".golden.json"), res)
			canon := collectStream(t, bytes.NewReader(data))
			if canon.Clean() != (res.End["eof"] == true) {
				t.Errorf("native end %v, translating reader end %v", res.End, canon.End)
			}
			if canon.Clean() {
				if u, w := mustJSON(t, res.Usage), mustJSON(t, canon.Chunks[len(canon.Chunks)-1].Usage); u != w {
					t.Errorf("usage %s, translating reader %s", u, w)
				}
			}
		})
	}
}

func TestNativeStreamRandomSplits(t *testing.T) {
	for _, in := range tt.Fixtures(t, "streams", ".sse") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			tt.CheckSplits(t, tt.ReadFile(t, in), func(r io.Reader) nativeResult { return readNative(t, r) })
		})
	}
}

// FuzzNativeStream: any upstream bytes end in a known way, every forwarded
// event is one line of valid JSON, and a stream that ends cleanly meters
// what the translating reader meters.
func FuzzNativeStream(f *testing.F) {
	for _, in := range tt.Fixtures(f, "streams", ".sse") {
		f.Add(tt.ReadFile(f, in))
	}
	f.Add([]byte("event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":3}}\n\n"))
	f.Add([]byte("data: {\"type\":\"message_start\",\"message\":{\"id\":\"x\",\"model\":\"m\",\n\"usage\":{\"input_tokens\":1}}}\n\ndata: {\"type\":\"message_stop\"}\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res := readNative(t, bytes.NewReader(data))
		for _, ev := range res.Events {
			if strings.ContainsAny(ev.Data, "\r\n") || !json.Valid([]byte(ev.Data)) {
				t.Fatalf("forwarded event is not one line of JSON: %q", ev.Data)
			}
		}
		if res.Error != nil && !json.Valid([]byte(res.Error.Data)) {
			t.Fatalf("error event is not JSON: %q", res.Error.Data)
		}
		canon := tt.Collect(t, New().ChatStream(bytes.NewReader(data), translate.Target{}, testMeta))
		if res.End["eof"] == true && canon.Clean() {
			if u, w := mustJSON(t, res.Usage), mustJSON(t, canon.Chunks[len(canon.Chunks)-1].Usage); u != w {
				t.Fatalf("usage %s, translating reader %s", u, w)
			}
		}
	})
}

// TestNativeOnlyNeedsTheBody: a request with parts only Anthropic
// understands cannot be re-encoded (they would silently vanish), so without
// the client's body it is refused.
func TestNativeOnlyNeedsTheBody(t *testing.T) {
	req, aerr := ParseMessagesRequest([]byte(`{"model":"m","max_tokens":8,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[{"role":"user","content":"news"}]}`))
	if aerr != nil || req.NativeOnly == "" {
		t.Fatalf("parse: %v, NativeOnly %q", aerr, req.NativeOnly)
	}
	tg := translate.Target{Provider: testProvider(), Model: "claude-sonnet-4-5"}
	if _, err := New().ChatRequest(context.Background(), req, tg); err != nil {
		t.Fatalf("with the body: %v", err)
	}
	req.Native = nil // as a data policy leaves it
	_, err := New().ChatRequest(context.Background(), req, tg)
	var ae *openai.APIError
	if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, `server tool "web_search_20250305"`) {
		t.Fatalf("without the body: %v", err)
	}
}
