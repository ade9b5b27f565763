package anthropic

import (
	"bytes"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	wire "tollgate.dev/tollgate/dataplane/schema/anthropic"
)

// FuzzAppendBlockDelta holds the hand-written content_block_delta to the
// encoder's: both must decode to the same event.
func FuzzAppendBlockDelta(f *testing.F) {
	for _, s := range []string{"Hello", "<b>&</b>", "line\nbreak \"q\" \\", "\u2028\u2029", "\xff\xfeinvalid", "日本 ✓", "\x00\x1f"} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, index int) {
		for _, typ := range []string{wire.DeltaText, wire.DeltaThinking, wire.DeltaSignature, wire.DeltaInputJSON} {
			d := wire.StreamDelta{Type: typ}
			switch typ {
			case wire.DeltaText:
				d.Text = s
			case wire.DeltaThinking:
				d.Thinking = s
			case wire.DeltaSignature:
				d.Signature = s
			default:
				d.PartialJSON = s
			}
			e := blockDeltaEvent{Type: wire.EventContentBlockDelta, Index: index, Delta: d}
			got, ok := appendBlockDelta(nil, &e)
			if !ok {
				if s != "" {
					t.Fatalf("%s: declined %q", typ, s)
				}
				continue
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(e); err != nil {
				t.Fatal(err)
			}
			var a, b any
			if err := json.Unmarshal(got, &a); err != nil {
				t.Fatalf("%s: hand-written event is not JSON: %v\n%s", typ, err, got)
			}
			_ = json.Unmarshal(buf.Bytes(), &b)
			ga, _ := json.Marshal(a)
			gb, _ := json.Marshal(b)
			if !bytes.Equal(ga, gb) {
				t.Fatalf("%s: hand-written %s, encoder %s", typ, got, buf.Bytes())
			}
		}
	})
}
