package openai

import (
	"bytes"
	"context"
	"os"
	"reflect"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
)

// FuzzStreamReader feeds arbitrary bytes to the stream translator of every
// flavor: it must never panic, must end, and must keep the ChunkReader
// contract (envelope, role first, one finish_reason per choice, tool call
// headers once, usage last).
func FuzzStreamReader(f *testing.F) {
	for _, in := range tt.Fixtures(f, "streams", ".sse") {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("data: {\"choices\":[{\"index\":1023,\"delta\":{\"tool_calls\":[{\"index\":1023}]}}]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{}, {\"index\":0}]}}]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("event: error\ndata: \"boom\"\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, tr := range []*Translator{NewOpenAI(), NewAzure(), NewCompatible()} {
			err := tt.FuzzStream(t, tr.ChatStream(bytes.NewReader(data), translate.Target{}, testMeta), len(data)+10, contract)
			if !tt.KnownEnd(err) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
		}
	})
}

// FuzzParseChatRequest feeds arbitrary bodies to the inbound parser: it
// must never panic, rejections must be 400 invalid_request_error, and an
// accepted request must re-marshal and translate for every flavor.
func FuzzParseChatRequest(f *testing.F) {
	for _, dir := range []string{"parse"} {
		for _, in := range tt.Fixtures(f, dir, ".json") {
			b, err := os.ReadFile(in)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"tool","tool_call_id":"x","content":"r"}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"function","function":{"name":"f"}},"tools":[{"type":"function","function":{"name":"f","parameters":null}}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"stop":[],"n":1e3,"temperature":"hot"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, aerr := ParseChatRequest(body)
		if aerr != nil {
			if aerr.Status != 400 || aerr.Type != openai.TypeInvalidRequest || aerr.Message == "" {
				t.Fatalf("rejection %+v", aerr)
			}
			return
		}
		if req.Model == "" || len(req.Messages) == 0 {
			t.Fatalf("accepted invalid request: %+v", req)
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("canonical request does not marshal: %v", err)
		}
		// Known schema gap: ContentPart.Text is omitempty, so an explicit
		// "text": "" part (valid) re-marshals as {"type":"text"} (invalid).
		if _, aerr := ParseChatRequest(b); aerr != nil && !hasEmptyTextPart(req) {
			t.Fatalf("re-marshalled request rejected: %v\n%s", aerr, b)
		}
		for _, tr := range []*Translator{NewOpenAI(), NewAzure(), NewCompatible()} {
			if _, err := tr.ChatRequest(context.Background(), req, translate.Target{Provider: testProvider(), Model: "m"}); err != nil {
				t.Fatalf("%s: %v", tr.Flavor(), err)
			}
		}
	})
}

// FuzzFastChunk holds the reflection-free chunk decoder to encoding/json:
// whenever it accepts an event, encoding/json must accept it too and
// decode exactly the same values.
func FuzzFastChunk(f *testing.F) {
	for _, in := range tt.Fixtures(f, "streams", ".sse") {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			if d, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
				f.Add(bytes.TrimSpace(d))
			}
		}
	}
	f.Add([]byte(`{"choices":[{"index":0,"delta":{"content":"a\u00e9\ud83d\ude00\n\"\\\/"},"finish_reason":null}],"x":[1,-2.5e+3,true,false,null,{"y":"\u0041"}]}`))
	f.Add([]byte(`{"Choices":[],"choices":[{"Index":1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		data = bytes.TrimSpace(data)
		var fast wireChunk
		if !fastChunk(data, &fast) {
			return
		}
		var slow wireChunk
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&slow); err != nil || dec.InputOffset() != int64(len(data)) {
			t.Fatalf("fast path accepted what encoding/json rejects (%v): %q", err, data)
		}
		if len(fast.Choices) == 0 && len(slow.Choices) == 0 {
			fast.Choices, slow.Choices = nil, nil
		}
		for i := range fast.Choices {
			fast.Choices[i].Delta.unmodelled = false // only the fast path notices unmodelled fields
		}
		fast.envelope, fast.envelopeRepeated = [4]span{}, false // and where the envelope is
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast %+v\nslow %+v\nfor %q", fast, slow, data)
		}
	})
}

func hasEmptyTextPart(req *openai.ChatRequest) bool {
	for _, m := range req.Messages {
		for _, p := range m.Content.Parts {
			if p.Type == openai.PartText && p.Text == "" {
				return true
			}
		}
	}
	return false
}

// FuzzPassthroughBody holds the byte-preserving upstream body to the
// re-encoded one: for any accepted request and every flavor, what the
// upstream decodes from passthroughBody's output (by encoding/json rules)
// must equal what it decodes from the canonical encoding, and a body the
// scanner declines must still translate.
func FuzzPassthroughBody(f *testing.F) {
	for _, in := range tt.Fixtures(f, "requests", ".json") {
		var fx struct {
			Request json.RawMessage `json:"request"`
		}
		if err := json.Unmarshal(tt.ReadFile(f, in), &fx); err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(fx.Request))
	}
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"model":"n"}`))
	f.Add([]byte(`{"model":"m","messages":[{"Role":"user","content":"x","Content":"y"}],"Stream":true}`))
	f.Add([]byte(`{"model":"m","max_tokens":5,"max_completion_tokens":null,"messages":[{"role":"user","content":"\u00e9\ud800"}],"x":{"y":[1,2,{"z":null}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, aerr := ParseChatRequest(body)
		if aerr != nil || req.Native == nil {
			return
		}
		canonical := *req
		canonical.Native = nil
		for _, tr := range []*Translator{NewOpenAI(), NewAzure(), NewCompatible()} {
			want, err := tr.ChatBody(&canonical, "target-model")
			if err != nil {
				t.Fatalf("%s: canonical: %v", tr.Flavor(), err)
			}
			got, ok := tr.passthroughBody(req, tr.historyFor(req.Messages), "target-model")
			if !ok {
				continue
			}
			var a, b openai.ChatRequest
			if err := json.Unmarshal(got, &a); err != nil {
				t.Fatalf("%s: passthrough body does not decode: %v\n%s", tr.Flavor(), err, got)
			}
			if err := json.Unmarshal(want, &b); err != nil {
				t.Fatalf("%s: canonical body does not decode: %v", tr.Flavor(), err)
			}
			ga, _ := json.Marshal(&a)
			gb, _ := json.Marshal(&b)
			if !bytes.Equal(ga, gb) {
				t.Fatalf("%s: passthrough and canonical bodies differ\n in: %s\npass: %s\ncanonical: %s", tr.Flavor(), body, ga, gb)
			}
		}
	})
}
