package anthropic

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
	"tollgate.dev/tollgate/dataplane/sse"
	"tollgate.dev/tollgate/dataplane/translate"
)

var update = flag.Bool("update", false, "rewrite golden files")

var testMeta = translate.StreamMeta{ID: "chatcmpl-tollgate-1", Created: 1700000000, Model: "claude"}

func testProvider() *routetable.Provider {
	return &routetable.Provider{ID: "ai/anthropic", Namespace: "ai", Name: "anthropic", Type: routetable.ProviderAnthropic,
		BaseURL: "https://api.anthropic.com/", APIKey: "sk-ant-test-key", Locality: routetable.LocalityExternal}
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

// checkJSON compares got (any JSON-marshalable value) with a golden JSON
// file semantically, or rewrites it with -update.
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

func checkText(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
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
	return f.Request, translate.Target{Provider: p, Model: f.Model}
}

func TestRequestGolden(t *testing.T) {
	for _, in := range fixtures(t, "requests", ".json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			req, target := loadRequestFixture(t, in)
			hr, err := New().ChatRequest(context.Background(), req, target)
			if err != nil {
				t.Fatalf("ChatRequest: %v", err)
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
			resp, err := New().ChatResponse(body, translate.Target{Provider: testProvider()}, testMeta)
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
		// The terminal error must repeat.
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
			res := collectStream(t, bytes.NewReader(data))
			checkStreamContract(t, res)
			checkJSON(t, goldenPath(in, ".json"), res)
		})
	}
}

// checkStreamContract asserts translate.ChunkReader's rules on a result.
func checkStreamContract(t *testing.T, res streamResult) {
	t.Helper()
	finishes, usageAt := 0, -1
	seenTool := map[int]bool{}
	for i, c := range res.Chunks {
		if c.ID != testMeta.ID || c.Created != testMeta.Created || c.Model != testMeta.Model || c.Object != openai.ObjectChatCompletionChunk {
			t.Errorf("chunk %d: wrong envelope %+v", i, c)
		}
		if c.Usage != nil {
			usageAt = i
			if len(c.Choices) != 0 {
				t.Errorf("usage chunk %d has choices", i)
			}
			continue
		}
		if len(c.Choices) != 1 {
			t.Fatalf("chunk %d: %d choices", i, len(c.Choices))
		}
		ch := c.Choices[0]
		if (i == 0) != (ch.Delta.Role == openai.RoleAssistant) {
			t.Errorf("chunk %d: role %q", i, ch.Delta.Role)
		}
		if ch.FinishReason != nil {
			finishes++
		}
		for _, tc := range ch.Delta.ToolCalls {
			if tc.Index == nil {
				t.Fatalf("chunk %d: tool call without index", i)
			}
			first := !seenTool[*tc.Index]
			seenTool[*tc.Index] = true
			if first != (tc.ID != "" && tc.Function.Name != "" && tc.Type == "function") {
				t.Errorf("chunk %d: tool call %d id/name/type must be in its first delta only: %+v", i, *tc.Index, tc)
			}
		}
	}
	if res.End["eof"] == true {
		if finishes != 1 {
			t.Errorf("%d finish reasons, want 1", finishes)
		}
		if usageAt != len(res.Chunks)-1 {
			t.Errorf("usage chunk at %d, want last (%d)", usageAt, len(res.Chunks)-1)
		}
	} else if finishes > 1 {
		t.Errorf("%d finish reasons", finishes)
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
	r := New().ChatStream(cr, translate.Target{Provider: testProvider()}, testMeta)
	if cr.reads != 0 {
		t.Fatalf("ChatStream read %d times before Next", cr.reads)
	}
	c, err := r.Next()
	if err != nil || c.Choices[0].Delta.Role != openai.RoleAssistant {
		t.Fatalf("first chunk %+v, %v", c, err)
	}
	if cr.reads == 0 {
		t.Fatal("Next did not read upstream")
	}
}

// --- inbound ---

func TestInboundRequestGolden(t *testing.T) {
	for _, in := range fixtures(t, "inbound/requests", ".json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			req, aerr := ParseMessagesRequest(body)
			if aerr != nil {
				t.Fatalf("ParseMessagesRequest: %v", aerr)
			}
			checkJSON(t, goldenPath(in, ".json"), req)
		})
	}
}

func TestInboundResponseGolden(t *testing.T) {
	for _, in := range fixtures(t, "inbound/responses", ".json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var resp openai.ChatResponse
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatal(err)
			}
			out := MessagesResponse(&resp, "claude-sonnet-4-5")
			var decoded any
			if err := json.Unmarshal(out, &decoded); err != nil {
				t.Fatalf("MessagesResponse is not JSON: %v", err)
			}
			checkJSON(t, goldenPath(in, ".json"), decoded)
		})
	}
}

// encodeInboundStream replays a .jsonl fixture of OpenAI chunks through a
// MessagesStreamWriter. A line "ERROR <status> <message>" closes the
// stream with that error.
func encodeInboundStream(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := NewMessagesStreamWriter(sse.NewWriter(&buf), "chatcmpl-tollgate-1", "claude-sonnet-4-5")
	var closeErr error
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if rest, ok := strings.CutPrefix(line, "ERROR "); ok {
			status, msg, _ := strings.Cut(rest, " ")
			code := 0
			for _, r := range status {
				code = code*10 + int(r-'0')
			}
			closeErr = openai.NewError(code, openai.ErrorTypeForStatus(code), "", "", msg)
			break
		}
		var c openai.ChatChunk
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err := w.WriteChunk(&c); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(closeErr); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(nil); err != nil {
		t.Fatal("second Close must be a no-op")
	}
	return buf.Bytes()
}

func TestInboundStreamGolden(t *testing.T) {
	for _, in := range fixtures(t, "inbound/streams", ".jsonl") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			out := encodeInboundStream(t, in)
			checkText(t, goldenPath(in, ".sse"), out)
			checkAnthropicStream(t, out)
		})
	}
}

// checkAnthropicStream parses an encoded stream back and checks the event
// grammar: message_start first, blocks opened and closed in index order,
// deltas only inside open blocks (or to a closed tool block), then
// message_delta and message_stop, or an error event.
func checkAnthropicStream(t *testing.T, out []byte) {
	t.Helper()
	r := sse.NewReader(bytes.NewReader(out), 0)
	var types []string
	open, next := -1, 0
	for {
		ev, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var data struct {
			Type  string `json:"type"`
			Index int    `json:"index"`
		}
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatalf("event data is not JSON: %s", ev.Data)
		}
		if data.Type != ev.Type {
			t.Fatalf("event %q carries type %q", ev.Type, data.Type)
		}
		types = append(types, ev.Type)
		switch ev.Type {
		case "content_block_start":
			if open != -1 || data.Index != next {
				t.Fatalf("block %d started while %d open (next %d)", data.Index, open, next)
			}
			open = data.Index
			next++
		case "content_block_delta":
			if data.Index >= next {
				t.Fatalf("delta for unstarted block %d", data.Index)
			}
		case "content_block_stop":
			if data.Index != open {
				t.Fatalf("stop for block %d while %d open", data.Index, open)
			}
			open = -1
		}
	}
	if len(types) == 0 || types[0] != "message_start" {
		t.Fatalf("stream must start with message_start: %v", types)
	}
	last := types[len(types)-1]
	if last == "error" {
		return
	}
	if open != -1 || last != "message_stop" || types[len(types)-2] != "message_delta" {
		t.Fatalf("stream must end with message_delta, message_stop and no open block: %v", types)
	}
}
