package bedrock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"mime"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"

	"tollgate.dev/tollgate/dataplane/eventstream"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

var update = flag.Bool("update", false, "rewrite golden files")

var testMeta = translate.StreamMeta{ID: "chatcmpl-tollgate-1", Created: 1700000000, Model: "nova"}

// testNow pins the SigV4 clock so signed requests are golden-testable.
var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testTranslator() *Translator { return &Translator{Now: func() time.Time { return testNow }} }

func testProvider() *routetable.Provider {
	return &routetable.Provider{ID: "ai/bedrock", Namespace: "ai", Name: "bedrock", Type: routetable.ProviderBedrock,
		Region: "us-east-1", AWSAccessKeyID: "AKIDEXAMPLE", AWSSecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		Locality: routetable.LocalityExternal}
}

// fixtures lists testdata/dir/*.in.json.
func fixtures(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.in.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no fixtures in testdata/%s", dir)
	}
	return files
}

func goldenPath(in string) string { return strings.TrimSuffix(in, ".in.json") + ".out.json" }

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

// mapFetcher serves images from memory; the media type comes from the URL's
// extension.
type mapFetcher map[string]string

func (m mapFetcher) Fetch(_ context.Context, url string) (string, []byte, error) {
	b64, ok := m[url]
	if !ok {
		return "", nil, fmt.Errorf("no such image %s", url)
	}
	var data []byte
	if err := json.Unmarshal([]byte(`"`+b64+`"`), &data); err != nil {
		return "", nil, err
	}
	return mime.TypeByExtension(path.Ext(url)), data, nil
}

// requestFixture is one testdata/requests/*.in.json: a canonical request and
// how the target differs from testProvider.
type requestFixture struct {
	TargetModel  string              `json:"target_model"`
	APIKey       string              `json:"api_key"`
	SessionToken string              `json:"session_token"`
	Media        map[string]string   `json:"media"`
	Provider     json.RawMessage     `json:"provider"`
	Request      *openai.ChatRequest `json:"request"`
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
	if f.APIKey != "" {
		p.APIKey, p.AWSAccessKeyID, p.AWSSecretAccessKey = f.APIKey, "", ""
	}
	p.AWSSessionToken = f.SessionToken
	target := translate.Target{Provider: p, Model: f.TargetModel}
	if f.Media != nil {
		target.Media = mapFetcher(f.Media)
	}
	return f.Request, target
}

// requestGolden is what a request fixture translates to.
func requestGolden(t testing.TB, tr *Translator, req *openai.ChatRequest, target translate.Target) map[string]any {
	t.Helper()
	hr, err := tr.ChatRequest(context.Background(), req, target)
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
	return map[string]any{"method": hr.Method, "url": hr.URL.String(), "headers": headers, "body": decoded}
}

func TestRequestGolden(t *testing.T) {
	for _, in := range fixtures(t, "requests") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			req, target := loadRequestFixture(t, in)
			got := requestGolden(t, testTranslator(), req, target)
			checkJSON(t, goldenPath(in), got)
			// Signing is deterministic for a pinned clock.
			again := requestGolden(t, testTranslator(), req, target)
			if d := cmp.Diff(got, again); d != "" {
				t.Errorf("second translation differs:\n%s", d)
			}
		})
	}
}

func TestResponseGolden(t *testing.T) {
	for _, in := range fixtures(t, "responses") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := New().ChatResponse(body, translate.Target{Provider: testProvider()}, testMeta)
			if err != nil {
				t.Fatalf("ChatResponse: %v", err)
			}
			checkJSON(t, goldenPath(in), resp)
		})
	}
}

// streamFixture describes a ConverseStream answer as readable JSON; the test
// encodes it with eventstream.AppendMessage.
type streamFixture struct {
	Frames []struct {
		// Event is the :event-type of an "event" message.
		Event string `json:"event"`
		// Exception is the :exception-type of an "exception" message.
		Exception string `json:"exception"`
		// Headers are sent as given (after Event / Exception defaults).
		Headers map[string]string `json:"headers"`
		// Payload is sent compacted; PayloadText verbatim.
		Payload     json.RawMessage `json:"payload"`
		PayloadText string          `json:"payload_text"`
	} `json:"frames"`
	// Truncate drops this many bytes from the end of the encoded stream.
	Truncate int `json:"truncate"`
}

// encodeStream turns a stream fixture into event-stream bytes.
func encodeStream(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f streamFixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []byte
	for i, fr := range f.Frames {
		var hs []eventstream.Header
		switch {
		case fr.Event != "":
			hs = append(hs, eventstream.StringHeader(":event-type", fr.Event),
				eventstream.StringHeader(":content-type", "application/json"),
				eventstream.StringHeader(":message-type", "event"))
		case fr.Exception != "":
			hs = append(hs, eventstream.StringHeader(":exception-type", fr.Exception),
				eventstream.StringHeader(":content-type", "application/json"),
				eventstream.StringHeader(":message-type", "exception"))
		}
		names := make([]string, 0, len(fr.Headers))
		for k := range fr.Headers {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			hs = append(hs, eventstream.StringHeader(k, fr.Headers[k]))
		}
		payload := []byte(fr.PayloadText)
		if len(fr.Payload) > 0 {
			var c bytes.Buffer
			if err := json.Compact(&c, fr.Payload); err != nil {
				t.Fatalf("%s frame %d: %v", path, i, err)
			}
			payload = c.Bytes()
		}
		out, err = eventstream.AppendMessage(out, &eventstream.Message{Headers: hs, Payload: payload})
		if err != nil {
			t.Fatalf("%s frame %d: %v", path, i, err)
		}
	}
	return out[:len(out)-f.Truncate]
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
			res.End = map[string]any{"unexpected_eof": err.Error()}
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
	for _, in := range fixtures(t, "streams") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			res := collectStream(t, bytes.NewReader(encodeStream(t, in)))
			checkStreamContract(t, res)
			checkJSON(t, goldenPath(in), res)
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
		if usageAt >= 0 {
			t.Errorf("chunk %d after the usage chunk", i)
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
		} else if finishes > 0 {
			t.Errorf("chunk %d: delta after finish_reason", i)
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
		if usageAt >= 0 && usageAt != len(res.Chunks)-1 {
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
	for _, in := range fixtures(t, "streams") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data := encodeStream(t, in)
			want := collectStream(t, bytes.NewReader(data))
			readers := map[string]io.Reader{
				"one-byte":     iotest.OneByteReader(bytes.NewReader(data)),
				"data-err-eof": iotest.DataErrReader(bytes.NewReader(data)),
			}
			for seed := int64(0); seed < 25; seed++ {
				readers[fmt.Sprintf("seed-%02d", seed)] = &splitReader{data: data, rnd: rand.New(rand.NewSource(seed)), max: 1 + int(seed)*7}
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
	cr := &countingReader{r: bytes.NewReader(encodeStream(t, "testdata/streams/text.in.json"))}
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
