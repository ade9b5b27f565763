package openai

import (
	stdjson "encoding/json"
	"testing"

	json "github.com/go-json-experiment/json/v1"
)

func TestContentPartMarshal(t *testing.T) {
	cases := []struct {
		part ContentPart
		want string
	}{
		{ContentPart{Type: "text", Text: ""}, `{"type":"text","text":""}`},
		{ContentPart{Type: "text", Text: "hi"}, `{"type":"text","text":"hi"}`},
		{ContentPart{Type: "refusal"}, `{"type":"refusal","refusal":""}`},
		{ContentPart{Type: "image_url", ImageURL: &ImageURL{URL: "https://x/y.png"}}, `{"type":"image_url","image_url":{"url":"https://x/y.png"}}`},
	}
	for _, c := range cases {
		b, err := json.Marshal(c.part)
		if err != nil || string(b) != c.want {
			t.Errorf("Marshal(%+v) = %s, %v; want %s", c.part, b, err, c.want)
		}
		var back ContentPart
		if err := json.Unmarshal(b, &back); err != nil || back.Type != c.part.Type || back.Text != c.part.Text {
			t.Errorf("round trip of %s: %+v, %v", b, back, err)
		}
	}
}

func TestEmbeddingEncodeBase64(t *testing.T) {
	r := EmbeddingResponse{Data: []Embedding{
		{Embedding: json.RawMessage(`[1, -2.5, 0]`)},
		{Embedding: json.RawMessage(`"AACAPwAAIMAAAAAA"`)},
	}}
	if err := r.EncodeBase64(); err != nil {
		t.Fatal(err)
	}
	// float32 1 = 0x3f800000, -2.5 = 0xc0200000, little-endian.
	for i, d := range r.Data {
		if string(d.Embedding) != `"AACAPwAAIMAAAAAA"` {
			t.Errorf("vector %d = %s", i, d.Embedding)
		}
	}
	bad := EmbeddingResponse{Data: []Embedding{{Embedding: json.RawMessage(`[1, "x"]`)}}}
	if err := bad.EncodeBase64(); err == nil {
		t.Error("a malformed vector must be an error")
	}
}

// FuzzContentString checks that Content's json v2 methods read and write a
// string content exactly as encoding/json reads and writes a Go string
// (escapes, invalid UTF-8 replaced by U+FFFD, HTML characters escaped).
func FuzzContentString(f *testing.F) {
	for _, s := range []string{`"hi"`, `"a\"b"`, `"\u00e9"`, "\"\xff\"", `""`, `"tab	here"`, `"ünïcode"`, `"x\\"`, `"<a&b>"`, `"\u2028"`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want *string
		if stdjson.Unmarshal(b, &want) != nil {
			return
		}
		var c Content
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("Content of %q: %v; encoding/json accepts it", b, err)
		}
		if want == nil {
			if c.Kind != ContentNull {
				t.Fatalf("Content of %q = %+v; want null", b, c)
			}
			return
		}
		if c.Kind != ContentString || c.Text != *want {
			t.Fatalf("Content of %q = %q; encoding/json gives %q", b, c.Text, *want)
		}
		got, err := json.Marshal(c)
		wantOut, _ := stdjson.Marshal(*want)
		if err != nil || string(got) != string(wantOut) {
			t.Fatalf("Marshal(Content %q) = %s, %v; encoding/json gives %s", c.Text, got, err, wantOut)
		}
		if viaStd, err := stdjson.Marshal(c); err != nil || string(viaStd) != string(wantOut) {
			t.Fatalf("encoding/json.Marshal(Content %q) = %s, %v; want %s", c.Text, viaStd, err, wantOut)
		}
	})
}
