package ollama

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
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

var testMeta = translate.StreamMeta{ID: "chatcmpl-tollgate-1", Created: 1700000000, Model: "local-llm"}

func testProvider() *routetable.Provider {
	return &routetable.Provider{ID: "ai/ollama", Namespace: "ai", Name: "ollama", Type: routetable.ProviderOllama,
		BaseURL: "http://ollama.ai.svc:11434/", Locality: routetable.LocalityInCluster}
}

// fakeMedia serves one known image URL.
type fakeMedia struct{}

func (fakeMedia) Fetch(_ context.Context, url string) (string, []byte, error) {
	if url == "https://example.com/cat.png" {
		return "image/png", []byte("\x89PNG fake"), nil
	}
	return "", nil, fmt.Errorf("fetch %s: status 404", url)
}

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
	Model    string              `json:"model"`
	Provider json.RawMessage     `json:"provider"`
	Request  *openai.ChatRequest `json:"request"`
}

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
	return f.Request, translate.Target{Provider: p, Model: f.Model, Media: fakeMedia{}}
}

func TestRequestGolden(t *testing.T) {
	for _, in := range fixtures(t, "requests", ".json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			req, target := loadRequestFixture(t, in)
			before, _ := json.Marshal(req)
			hr, err := New().ChatRequest(context.Background(), req, target)
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
			var decoded map[string]any
			if err := json.Unmarshal(body, &decoded); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if _, ok := decoded["stream"]; !ok {
				t.Fatal("stream must always be sent: Ollama streams by default")
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
			resp, err := New().ChatResponse(body, translate.Target{Provider: testProvider()}, testMeta)
			if err != nil {
				t.Fatalf("ChatResponse: %v", err)
			}
			checkJSON(t, goldenPath(in, ".json"), resp)
		})
	}
}

type streamResult struct {
	Chunks []*openai.ChatChunk `json:"chunks"`
	End    map[string]any      `json:"end"`
}

func collectStream(t testing.TB, r io.Reader) streamResult {
	t.Helper()
	cr := New().ChatStream(r, translate.Target{Provider: testProvider()}, testMeta)
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
	for _, in := range fixtures(t, "streams", ".ndjson") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			res := collectStream(t, bytes.NewReader(data))
			checkStreamContract(t, res.Chunks, res.End["eof"] == true)
			checkJSON(t, goldenPath(in, ".json"), res)
		})
	}
}

// checkStreamContract asserts translate.ChunkReader's rules (one choice).
func checkStreamContract(t testing.TB, chunks []*openai.ChatChunk, clean bool) {
	t.Helper()
	finishes, usageAt := 0, -1
	seenTool := map[int]bool{}
	for i, c := range chunks {
		if c.ID != testMeta.ID || c.Created != testMeta.Created || c.Model != testMeta.Model || c.Object != openai.ObjectChatCompletionChunk {
			t.Fatalf("chunk %d: wrong envelope %+v", i, c)
		}
		if c.Usage != nil {
			usageAt = i
			if len(c.Choices) != 0 {
				t.Fatalf("usage chunk %d has choices", i)
			}
			continue
		}
		if len(c.Choices) != 1 {
			t.Fatalf("chunk %d: %d choices", i, len(c.Choices))
		}
		ch := c.Choices[0]
		if (i == 0) != (ch.Delta.Role == openai.RoleAssistant) {
			t.Fatalf("chunk %d: role %q", i, ch.Delta.Role)
		}
		if finishes > 0 {
			t.Fatalf("chunk %d after finish", i)
		}
		if ch.FinishReason != nil {
			finishes++
		}
		if ch.Delta.Content != nil && strings.Contains(*ch.Delta.Content, "<think>") {
			t.Fatalf("chunk %d: thinking in content", i)
		}
		for _, tc := range ch.Delta.ToolCalls {
			if tc.Index == nil {
				t.Fatalf("chunk %d: tool call without index", i)
			}
			first := !seenTool[*tc.Index]
			seenTool[*tc.Index] = true
			if first != (tc.ID != "" && tc.Function.Name != "" && tc.Type == "function") {
				t.Fatalf("chunk %d: tool call %d id/name/type must be in its first delta only: %+v", i, *tc.Index, tc)
			}
			if !json.Valid([]byte(tc.Function.Arguments)) {
				t.Fatalf("chunk %d: arguments %q are not JSON", i, tc.Function.Arguments)
			}
		}
	}
	if clean {
		if finishes != 1 {
			t.Fatalf("%d finish reasons, want 1", finishes)
		}
		if usageAt != len(chunks)-1 {
			t.Fatalf("usage chunk at %d, want last (%d)", usageAt, len(chunks)-1)
		}
	} else if finishes > 1 {
		t.Fatalf("%d finish reasons", finishes)
	}
}

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
	for _, in := range fixtures(t, "streams", ".ndjson") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			want := collectStream(t, bytes.NewReader(data))
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
				got := collectStream(t, readers[n])
				if d := cmp.Diff(want, got); d != "" {
					t.Fatalf("%s split differs (-whole +split):\n%s", n, d)
				}
			}
		})
	}
}

type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) { c.reads++; return c.r.Read(p) }

func TestStreamIsLazy(t *testing.T) {
	data, err := os.ReadFile("testdata/streams/text.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	cr := &countingReader{r: bytes.NewReader(data)}
	r := New().ChatStream(cr, translate.Target{Provider: testProvider()}, testMeta)
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
