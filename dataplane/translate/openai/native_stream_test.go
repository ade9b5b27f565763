package openai

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
)

// nativeEvents drains a native stream: the events' data, its end, the
// usage it metered, and how many events went out as the upstream's bytes.
func nativeEvents(t testing.TB, tr *Translator, r io.Reader, meta translate.StreamMeta) (events []string, end error, usage *openai.Usage) {
	t.Helper()
	er := tr.ChatStreamNative(r, translate.Target{}, meta)
	for n := 0; ; n++ {
		if n > tt.MaxChunks {
			t.Fatal("native stream does not end")
		}
		_, b, err := er.Next()
		if err != nil {
			if _, _, again := er.Next(); again != err {
				t.Fatalf("end did not stick: %v then %v", err, again)
			}
			return events, err, er.Usage()
		}
		events = append(events, string(b))
	}
}

// checkNativeStream holds the native stream to the translating one over
// the same bytes: event for event, what a client decodes is what
// ChatStream returns (usage chunk and usage only when asked for), ending
// in [DONE] exactly when ChatStream ends cleanly, with the same error
// otherwise and the same metered usage.
func checkNativeStream(t testing.TB, tr *Translator, data []byte, includeUsage bool) (events []string) {
	t.Helper()
	meta := testMeta
	meta.IncludeUsage = includeUsage
	events, end, usage := nativeEvents(t, tr, bytes.NewReader(data), meta)
	canon, cerr := tt.Drain(t, tr.ChatStream(bytes.NewReader(data), translate.Target{}, testMeta), tt.MaxChunks)
	if (end == io.EOF) != (cerr == io.EOF) || (end != io.EOF && end.Error() != cerr.Error()) {
		t.Fatalf("native end %v, translating end %v", end, cerr)
	}
	var want []*openai.ChatChunk
	var canonUsage *openai.Usage
	for _, c := range canon {
		if c.Usage != nil {
			canonUsage = c.Usage
		}
		if !includeUsage {
			if len(c.Choices) == 0 && c.Usage != nil {
				continue
			}
			c.Usage = nil
		}
		want = append(want, c)
	}
	if end == io.EOF {
		if len(events) == 0 || events[len(events)-1] != "[DONE]" {
			t.Fatalf("clean native stream does not end with [DONE]: %q", events)
		}
		events = events[:len(events)-1]
	}
	if len(events) != len(want) {
		t.Fatalf("%d native events, %d translated chunks\nnative: %q", len(events), len(want), events)
	}
	for i, ev := range events {
		var got openai.ChatChunk
		if err := json.Unmarshal([]byte(ev), &got); err != nil || strings.ContainsAny(ev, "\r\n") {
			t.Fatalf("event %d is not one line of JSON: %v\n%s", i, err, ev)
		}
		for j := range got.Choices {
			if string(got.Choices[j].Logprobs) == "null" {
				got.Choices[j].Logprobs = nil // the translated chunk drops a null
			}
		}
		g, _ := json.Marshal(&got)
		w, _ := json.Marshal(want[i])
		if !bytes.Equal(g, w) {
			t.Fatalf("event %d:\nnative %s\n  decodes to %s\ntranslated %s", i, ev, g, w)
		}
	}
	if cerr == io.EOF {
		if u, w := mustJSON(t, usage), mustJSON(t, canonUsage); u != w {
			t.Fatalf("metered usage %s, translated %s", u, w)
		}
	}
	return events
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNativeStream(t *testing.T) {
	for _, in := range tt.Fixtures(t, "streams", ".sse") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data := tt.ReadFile(t, in)
			for _, usage := range []bool{false, true} {
				checkNativeStream(t, flavorOf(in), data, usage)
			}
		})
	}
}

// TestNativeStreamKeepsUnmodelledFields: OpenAI's own chunks pass as its
// bytes, so fields the canonical chunk lacks (search annotations,
// obfuscation padding, service_tier) reach the client; the envelope is the
// gateway's.
func TestNativeStreamKeepsUnmodelledFields(t *testing.T) {
	events := checkNativeStream(t, NewOpenAI(), tt.ReadFile(t, "testdata/streams/unmodelled_fields.sse"), true)
	all := strings.Join(events, "\n")
	for _, want := range []string{`"obfuscation":"a1b2"`, `"url_citation"`, `"service_tier":"default"`} {
		if !strings.Contains(all, want) {
			t.Errorf("native stream lost %s:\n%s", want, all)
		}
	}
	for _, ev := range events {
		if !strings.HasPrefix(ev, `{"id":"chatcmpl-tollgate-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-public"`) {
			t.Errorf("envelope not replaced: %s", ev)
		}
	}
}

func TestNativeStreamRandomSplits(t *testing.T) {
	for _, in := range tt.Fixtures(t, "streams", ".sse") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			tr := flavorOf(in)
			tt.CheckSplits(t, tt.ReadFile(t, in), func(r io.Reader) []string {
				events, end, _ := nativeEvents(t, tr, r, testMeta)
				return append(events, mustJSON(t, tt.DescribeEnd(end)))
			})
		})
	}
}

// FuzzNativeStream: for any upstream bytes and every flavor, the native
// stream says what the translating one says (see checkNativeStream).
func FuzzNativeStream(f *testing.F) {
	for _, in := range tt.Fixtures(f, "streams", ".sse") {
		f.Add(tt.ReadFile(f, in), true)
	}
	f.Add([]byte("data: {\"ID\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"a\"}}]}\n\ndata: [DONE]\n\n"), false)
	f.Add([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"a\"},\"finish_reason\":\"eos\"}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"b\"}}]}\n\ndata: [DONE]\n\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, includeUsage bool) {
		for _, tr := range []*Translator{NewOpenAI(), NewAzure(), NewCompatible()} {
			checkNativeStream(t, tr, data, includeUsage)
		}
	})
}
