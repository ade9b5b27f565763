package translatetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"testing"
	"testing/iotest"

	json "github.com/go-json-experiment/json/v1"
	"github.com/google/go-cmp/cmp"

	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

// MaxChunks bounds Drain for golden and replay tests: a translator that
// yields more for one fixture is looping.
const MaxChunks = 100000

// Drain reads cr to its terminal error and checks that the error repeats
// on the next call, as the ChunkReader contract asks. More than limit
// chunks fail the test. Chunks is nil when there were none.
func Drain(t testing.TB, cr translate.ChunkReader, limit int) ([]*openai.ChatChunk, error) {
	t.Helper()
	var chunks []*openai.ChatChunk
	for i := 0; ; i++ {
		if i > limit {
			t.Fatalf("stream did not end: more than %d chunks", limit)
		}
		c, err := cr.Next()
		if err == nil {
			chunks = append(chunks, c)
			continue
		}
		// The terminal error must repeat.
		if _, err2 := cr.Next(); err2 == nil || err2.Error() != err.Error() {
			t.Fatalf("after terminal %v, Next returned %v", err, err2)
		}
		return chunks, err
	}
}

// StreamResult is what a stream fixture translates to: every chunk and how
// the stream ended (see DescribeEnd).
type StreamResult struct {
	Chunks []*openai.ChatChunk `json:"chunks"`
	End    map[string]any      `json:"end"`
}

// Clean reports whether the stream ended with io.EOF.
func (r StreamResult) Clean() bool { return r.End["eof"] == true }

// DescribeEnd is how a terminal error is written in golden files.
func DescribeEnd(err error) map[string]any {
	var ae *openai.APIError
	switch {
	case err == io.EOF:
		return map[string]any{"eof": true}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return map[string]any{"error": err.Error()}
	case errors.As(err, &ae):
		return map[string]any{"api_error": ae, "status": ae.Status, "retryable": ae.Retryable}
	default:
		return map[string]any{"error": err.Error()}
	}
}

// Collect drains cr (see Drain) into a StreamResult.
func Collect(t testing.TB, cr translate.ChunkReader) StreamResult {
	t.Helper()
	return CollectWith(t, cr, DescribeEnd)
}

// CollectWith is Collect with a suite's own way of describing the end.
func CollectWith(t testing.TB, cr translate.ChunkReader, describe func(error) map[string]any) StreamResult {
	t.Helper()
	chunks, err := Drain(t, cr, MaxChunks)
	if chunks == nil {
		chunks = []*openai.ChatChunk{}
	}
	return StreamResult{Chunks: chunks, End: describe(err)}
}

// Contract checks translate.ChunkReader's rules on a stream's chunks:
// the envelope is Meta's; per choice the first chunk carries the assistant
// role and no later one a role, nothing follows its finish_reason, and a
// clean end has exactly one; a tool call's id, name and type are in its
// first delta only; at most one usage chunk, without choices, and last.
type Contract struct {
	Meta translate.StreamMeta
	// OneChoice requires exactly one choice in every non-usage chunk, for
	// upstream APIs that have no n.
	OneChoice bool
	// RequireUsage requires a usage chunk at the end of a clean stream.
	RequireUsage bool
}

// Check fails t on the first broken rule; clean says the stream ended
// with io.EOF.
func (k Contract) Check(t testing.TB, chunks []*openai.ChatChunk, clean bool) {
	t.Helper()
	type state struct {
		started  bool
		finishes int
		tools    map[int]bool
	}
	states := map[int]*state{}
	usageAt := -1
	for i, c := range chunks {
		if c.ID != k.Meta.ID || c.Created != k.Meta.Created || c.Model != k.Meta.Model || c.Object != openai.ObjectChatCompletionChunk {
			t.Fatalf("chunk %d: wrong envelope %+v", i, c)
		}
		if usageAt >= 0 {
			t.Fatalf("chunk %d after the usage chunk", i)
		}
		if c.Usage != nil {
			usageAt = i
			if len(c.Choices) != 0 {
				t.Fatalf("usage chunk %d has choices", i)
			}
			continue
		}
		if len(c.Choices) == 0 {
			t.Fatalf("chunk %d: no choices and no usage", i)
		}
		if k.OneChoice && len(c.Choices) != 1 {
			t.Fatalf("chunk %d: %d choices", i, len(c.Choices))
		}
		for _, ch := range c.Choices {
			st := states[ch.Index]
			if st == nil {
				st = &state{tools: map[int]bool{}}
				states[ch.Index] = st
			}
			if !st.started && ch.Delta.Role != openai.RoleAssistant {
				t.Fatalf("chunk %d: first chunk of choice %d has role %q, want assistant", i, ch.Index, ch.Delta.Role)
			}
			if st.started && ch.Delta.Role != "" {
				t.Fatalf("chunk %d: role %q repeated for choice %d", i, ch.Delta.Role, ch.Index)
			}
			st.started = true
			if st.finishes > 0 {
				t.Fatalf("chunk %d: choice %d continues after its finish_reason", i, ch.Index)
			}
			if ch.FinishReason != nil {
				st.finishes++
			}
			for _, tc := range ch.Delta.ToolCalls {
				if tc.Index == nil || *tc.Index < 0 {
					t.Fatalf("chunk %d: tool call without valid index: %+v", i, tc)
				}
				first := !st.tools[*tc.Index]
				st.tools[*tc.Index] = true
				if first != (tc.ID != "" && tc.Function.Name != "" && tc.Type == "function") {
					t.Fatalf("chunk %d: tool call %d id/name/type must be in its first delta only: %+v", i, *tc.Index, tc)
				}
			}
		}
	}
	if !clean {
		return
	}
	if k.OneChoice && len(states) != 1 {
		t.Fatalf("clean end with %d choices, want 1", len(states))
	}
	for idx, st := range states {
		if st.finishes != 1 {
			t.Fatalf("choice %d: %d finish reasons, want 1", idx, st.finishes)
		}
	}
	if k.RequireUsage && usageAt != len(chunks)-1 {
		t.Fatalf("usage chunk at %d, want last (%d)", usageAt, len(chunks)-1)
	}
}

// Splits are the ways a stream body is replayed: one byte at a time, half
// reads, data with io.EOF, and random piece lengths from fixed seeds.
func Splits(data []byte) []Split {
	s := []Split{
		{"one-byte", iotest.OneByteReader(bytes.NewReader(data))},
		{"half", iotest.HalfReader(bytes.NewReader(data))},
		{"data-err-eof", iotest.DataErrReader(bytes.NewReader(data))},
	}
	for seed := int64(0); seed < 25; seed++ {
		s = append(s, Split{fmt.Sprintf("seed-%02d", seed), &splitReader{data: data, rnd: rand.New(rand.NewSource(seed)), max: 1 + int(seed)*7}})
	}
	for seed := int64(0); seed < 50; seed++ {
		s = append(s, Split{fmt.Sprintf("small-%02d", seed), &splitReader{data: data, rnd: rand.New(rand.NewSource(seed)), max: 1 + int(seed)%17}})
	}
	return s
}

// Split is one named way of reading a body.
type Split struct {
	Name string
	R    io.Reader
}

// CheckSplits reads data whole and then at every split of Splits, and
// fails unless each read gives what the whole one gave.
func CheckSplits[R any](t *testing.T, data []byte, read func(io.Reader) R) {
	t.Helper()
	want := read(bytes.NewReader(data))
	for _, s := range Splits(data) {
		got := read(s.R)
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("%s split differs (-whole +split):\n%s", s.Name, d)
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

// countingReader records whether anything was read.
type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) { c.reads++; return c.r.Read(p) }

// CheckLazy checks that open reads nothing before the first Next, and that
// the first Next reads and returns the assistant-role chunk.
func CheckLazy(t *testing.T, data []byte, open func(io.Reader) translate.ChunkReader) {
	t.Helper()
	cr := &countingReader{r: bytes.NewReader(data)}
	r := open(cr)
	if cr.reads != 0 {
		t.Fatalf("ChatStream read %d times before Next", cr.reads)
	}
	c, err := r.Next()
	if err != nil || len(c.Choices) == 0 || c.Choices[0].Delta.Role != openai.RoleAssistant {
		t.Fatalf("first chunk %+v, %v", c, err)
	}
	if cr.reads == 0 {
		t.Fatal("Next did not read upstream")
	}
}

// FuzzStream drains a fuzzed stream (see Drain; more than limit chunks
// fail), checks that every chunk marshals and that k holds, and returns
// the terminal error for the suite's own checks.
func FuzzStream(t *testing.T, cr translate.ChunkReader, limit int, k Contract) error {
	t.Helper()
	chunks, err := Drain(t, cr, limit)
	for _, c := range chunks {
		if _, err := json.Marshal(c); err != nil {
			t.Fatalf("chunk does not marshal: %v", err)
		}
	}
	k.Check(t, chunks, err == io.EOF)
	return err
}

// KnownEnd reports whether err is an end a ChunkReader may return: io.EOF,
// a cut stream (io.ErrUnexpectedEOF) or an *openai.APIError.
func KnownEnd(err error) bool {
	var ae *openai.APIError
	return err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ae)
}
