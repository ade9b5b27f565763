package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

var update = flag.Bool("update", false, "rewrite golden files")

var testMeta = translate.StreamMeta{ID: "chatcmpl-tollgate-1", Created: 1700000000, Model: "gpt-public"}

func testProvider() *routetable.Provider {
	return &routetable.Provider{ID: "ai/openai", Namespace: "ai", Name: "openai", Type: routetable.ProviderOpenAI,
		BaseURL: "https://api.openai.com", APIKey: "sk-test-key", Locality: routetable.LocalityExternal}
}

// flavorOf picks the translator from a fixture's name prefix: azure_,
// compat_, else OpenAI.
func flavorOf(path string) *Translator {
	base := filepath.Base(path)
	switch {
	case strings.HasPrefix(base, "azure_"):
		return NewAzure()
	case strings.HasPrefix(base, "compat_"):
		return NewCompatible()
	}
	return NewOpenAI()
}

// fixtures lists testdata/dir/*ext, skipping golden files.
func fixtures(t testing.TB, dir, ext string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*"+ext))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if !strings.Contains(filepath.Base(f), ".golden.") {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no fixtures in testdata/%s", dir)
	}
	return out
}

func goldenPath(in, ext string) string {
	return strings.TrimSuffix(in, filepath.Ext(in)) + ".golden" + ext
}

// checkJSON compares got with a golden JSON file semantically, or rewrites
// it with -update.
func checkJSON(t *testing.T, path string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var g, w any
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("golden %s: %v", path, err)
	}
	if d := cmp.Diff(w, g); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, d)
	}
}

type requestFixture struct {
	Model    string          `json:"model"`
	Provider json.RawMessage `json:"provider"`
	Request  json.RawMessage `json:"request"`
}

// loadRequestFixture reads a fixture; the request goes through
// ParseChatRequest, as it does in the proxy.
func loadRequestFixture(t testing.TB, path string) (*openai.ChatRequest, translate.Target) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f requestFixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	p := testProvider()
	if len(f.Provider) > 0 {
		if err := json.Unmarshal(f.Provider, p); err != nil {
			t.Fatalf("%s provider: %v", path, err)
		}
	}
	req, aerr := ParseChatRequest(f.Request)
	if aerr != nil {
		t.Fatalf("%s: ParseChatRequest: %v", path, aerr)
	}
	return req, translate.Target{Provider: p, Model: f.Model}
}

func TestRequestGolden(t *testing.T) {
	for _, in := range fixtures(t, "requests", ".json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			req, target := loadRequestFixture(t, in)
			before, _ := json.Marshal(req)
			hr, err := flavorOf(in).ChatRequest(context.Background(), req, target)
			if err != nil {
				t.Fatalf("ChatRequest: %v", err)
			}
			if after, _ := json.Marshal(req); !bytes.Equal(before, after) {
				t.Fatal("ChatRequest mutated the canonical request")
			}
			body, err := io.ReadAll(hr.Body)
			if err != nil {
				t.Fatal(err)
			}
			var decoded any
			if err := json.Unmarshal(body, &decoded); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			headers := map[string]string{}
			for k := range hr.Header {
				headers[k] = hr.Header.Get(k)
			}
			checkJSON(t, goldenPath(in, ".json"), map[string]any{
				"method": hr.Method, "url": hr.URL.String(), "headers": headers, "body": decoded,
			})
		})
	}
}

func TestResponseGolden(t *testing.T) {
	for _, in := range fixtures(t, "responses", ".json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := flavorOf(in).ChatResponse(body, translate.Target{Provider: testProvider()}, testMeta)
			if err != nil {
				t.Fatalf("ChatResponse: %v", err)
			}
			checkJSON(t, goldenPath(in, ".json"), resp)
		})
	}
}

// streamResult is what a stream fixture translates to: every chunk and how
// the stream ended.
type streamResult struct {
	Chunks []*openai.ChatChunk `json:"chunks"`
	End    map[string]any      `json:"end"`
}

func collectStream(t testing.TB, tr *Translator, r io.Reader) streamResult {
	t.Helper()
	cr := tr.ChatStream(r, translate.Target{Provider: testProvider()}, testMeta)
	res := streamResult{Chunks: []*openai.ChatChunk{}}
	for i := 0; ; i++ {
		if i > 100000 {
			t.Fatal("stream did not end")
		}
		c, err := cr.Next()
		if err == nil {
			res.Chunks = append(res.Chunks, c)
			continue
		}
		var ae *openai.APIError
		switch {
		case err == io.EOF:
			res.End = map[string]any{"eof": true}
		case errors.Is(err, io.ErrUnexpectedEOF):
			res.End = map[string]any{"error": err.Error()}
		case errors.As(err, &ae):
			res.End = map[string]any{"api_error": ae, "status": ae.Status, "retryable": ae.Retryable}
		default:
			res.End = map[string]any{"error": err.Error()}
		}
		if _, err2 := cr.Next(); err2 == nil || err2.Error() != err.Error() {
			t.Fatalf("after terminal %v, Next returned %v", err, err2)
		}
		return res
	}
}

func TestStreamGolden(t *testing.T) {
	for _, in := range fixtures(t, "streams", ".sse") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			res := collectStream(t, flavorOf(in), bytes.NewReader(data))
			checkStreamContract(t, res.Chunks, res.End["eof"] == true)
			checkJSON(t, goldenPath(in, ".json"), res)
		})
	}
}

// checkStreamContract asserts translate.ChunkReader's rules, per choice.
func checkStreamContract(t testing.TB, chunks []*openai.ChatChunk, clean bool) {
	t.Helper()
	type state struct {
		started  bool
		finishes int
		tools    map[int]bool
	}
	states := map[int]*state{}
	usageAt := -1
	for i, c := range chunks {
		if c.ID != testMeta.ID || c.Created != testMeta.Created || c.Model != testMeta.Model || c.Object != openai.ObjectChatCompletionChunk {
			t.Fatalf("chunk %d: wrong envelope %+v", i, c)
		}
		if c.Usage != nil {
			if usageAt >= 0 {
				t.Fatalf("second usage chunk at %d", i)
			}
			usageAt = i
			if len(c.Choices) != 0 {
				t.Fatalf("usage chunk %d has choices", i)
			}
			continue
		}
		if usageAt >= 0 {
			t.Fatalf("chunk %d after the usage chunk", i)
		}
		if len(c.Choices) == 0 {
			t.Fatalf("chunk %d: no choices and no usage", i)
		}
		for _, ch := range c.Choices {
			st := states[ch.Index]
			if st == nil {
				st = &state{tools: map[int]bool{}}
				states[ch.Index] = st
			}
			if st.started == (ch.Delta.Role == openai.RoleAssistant) {
				t.Fatalf("chunk %d choice %d: role %q (started %v)", i, ch.Index, ch.Delta.Role, st.started)
			}
			st.started = true
			if st.finishes > 0 {
				t.Fatalf("chunk %d: choice %d continues after its finish_reason", i, ch.Index)
			}
			if ch.FinishReason != nil {
				st.finishes++
			}
			for _, tc := range ch.Delta.ToolCalls {
				if tc.Index == nil {
					t.Fatalf("chunk %d: tool call without index", i)
				}
				first := !st.tools[*tc.Index]
				st.tools[*tc.Index] = true
				if first != (tc.ID != "" && tc.Function.Name != "" && tc.Type == "function") {
					t.Fatalf("chunk %d: tool call %d id/name/type must be in its first delta only: %+v", i, *tc.Index, tc)
				}
			}
		}
	}
	if clean {
		for idx, st := range states {
			if st.finishes != 1 {
				t.Fatalf("choice %d: %d finish reasons, want 1", idx, st.finishes)
			}
		}
		if usageAt >= 0 && usageAt != len(chunks)-1 {
			t.Fatalf("usage chunk at %d, want last", usageAt)
		}
	}
}

// splitReader returns data in pieces of random length.
type splitReader struct {
	data []byte
	rnd  *rand.Rand
	max  int
}

func (s *splitReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := 1 + s.rnd.Intn(s.max)
	n = min(n, len(p), len(s.data))
	copy(p, s.data[:n])
	s.data = s.data[n:]
	return n, nil
}

func TestStreamRandomSplits(t *testing.T) {
	for _, in := range fixtures(t, "streams", ".sse") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			tr := flavorOf(in)
			want := collectStream(t, tr, bytes.NewReader(data))
			readers := map[string]io.Reader{"one-byte": iotest.OneByteReader(bytes.NewReader(data))}
			for seed := int64(0); seed < 25; seed++ {
				readers["seed-"+string(rune('a'+seed))] = &splitReader{data: data, rnd: rand.New(rand.NewSource(seed)), max: 1 + int(seed)*7}
			}
			names := make([]string, 0, len(readers))
			for n := range readers {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				got := collectStream(t, tr, readers[n])
				if d := cmp.Diff(want, got); d != "" {
					t.Fatalf("%s split differs (-whole +split):\n%s", n, d)
				}
			}
		})
	}
}

// countingReader records whether anything was read.
type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) { c.reads++; return c.r.Read(p) }

func TestStreamIsLazy(t *testing.T) {
	data, err := os.ReadFile("testdata/streams/text.sse")
	if err != nil {
		t.Fatal(err)
	}
	cr := &countingReader{r: bytes.NewReader(data)}
	r := NewOpenAI().ChatStream(cr, translate.Target{Provider: testProvider()}, testMeta)
	if cr.reads != 0 {
		t.Fatalf("ChatStream read %d times before Next", cr.reads)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if cr.reads == 0 {
		t.Fatal("Next did not read upstream")
	}
}
