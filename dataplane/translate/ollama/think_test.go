package ollama

import (
	"math/rand"
	"testing"
)

func TestThinkSplitter(t *testing.T) {
	tests := []struct{ in, reasoning, content string }{
		{"plain answer", "", "plain answer"},
		{"  <think>step 1\nstep 2</think>\n\nAnswer.", "step 1\nstep 2", "Answer."},
		{"<think></think>Answer", "", "Answer"},
		{"<think>never closed", "never closed", ""},
		{"<thinking is a word", "", "<thinking is a word"},
		{"<thi", "", "<thi"},
		{"   ", "", ""},
		{"a <think>not leading</think>", "", "a <think>not leading</think>"},
		{"<think>a</thin k></think>b", "a</thin k>", "b"},
	}
	for _, tc := range tests {
		// Every split of the input must give the same result.
		rnd := rand.New(rand.NewSource(1))
		for trial := 0; trial < 50; trial++ {
			var sp thinkSplitter
			var r, c string
			rest := tc.in
			for rest != "" {
				n := 1 + rnd.Intn(len(rest))
				if trial == 0 {
					n = len(rest)
				}
				rr, cc := sp.feed(rest[:n])
				r, c, rest = r+rr, c+cc, rest[n:]
			}
			rr, cc := sp.flush()
			r, c = r+rr, c+cc
			if r != tc.reasoning || c != tc.content {
				t.Fatalf("%q (trial %d): reasoning %q content %q", tc.in, trial, r, c)
			}
		}
	}
}
