package bedrock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/google/go-cmp/cmp"

	"tollgate.dev/tollgate/dataplane/eventstream"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
)

var testMeta = translate.StreamMeta{ID: "chatcmpl-tollgate-1", Created: 1700000000, Model: "nova"}

// contract is the ChunkReader contract for Bedrock: one choice, usage
// last when the metadata event sent it.
var contract = tt.Contract{Meta: testMeta, OneChoice: true}

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
	return tt.Fixtures(t, dir, ".in.json")
}

func goldenPath(in string) string { return strings.TrimSuffix(in, ".in.json") + ".out.json" }

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
	b := tt.ReadFile(t, path)
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
	return tt.RequestGolden(t, hr)
}

func TestRequestGolden(t *testing.T) {
	for _, in := range fixtures(t, "requests") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			req, target := loadRequestFixture(t, in)
			got := requestGolden(t, testTranslator(), req, target)
			tt.CheckJSON(t, goldenPath(in), got)
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
			resp, err := New().ChatResponse(tt.ReadFile(t, in), translate.Target{Provider: testProvider()}, testMeta)
			if err != nil {
				t.Fatalf("ChatResponse: %v", err)
			}
			tt.CheckJSON(t, goldenPath(in), resp)
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
	b := tt.ReadFile(t, path)
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
		var err error
		out, err = eventstream.AppendMessage(out, &eventstream.Message{Headers: hs, Payload: payload})
		if err != nil {
			t.Fatalf("%s frame %d: %v", path, i, err)
		}
	}
	return out[:len(out)-f.Truncate]
}

// collectStream drains a stream; a cut stream's end is written
// "unexpected_eof" in Bedrock's golden files.
func collectStream(t testing.TB, r io.Reader) tt.StreamResult {
	t.Helper()
	return tt.CollectWith(t, New().ChatStream(r, translate.Target{Provider: testProvider()}, testMeta), func(err error) map[string]any {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return map[string]any{"unexpected_eof": err.Error()}
		}
		return tt.DescribeEnd(err)
	})
}

func TestStreamGolden(t *testing.T) {
	for _, in := range fixtures(t, "streams") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			res := collectStream(t, bytes.NewReader(encodeStream(t, in)))
			contract.Check(t, res.Chunks, res.Clean())
			tt.CheckJSON(t, goldenPath(in), res)
		})
	}
}

func TestStreamRandomSplits(t *testing.T) {
	for _, in := range fixtures(t, "streams") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			tt.CheckSplits(t, encodeStream(t, in), func(r io.Reader) tt.StreamResult { return collectStream(t, r) })
		})
	}
}

func TestStreamIsLazy(t *testing.T) {
	tt.CheckLazy(t, encodeStream(t, "testdata/streams/text.in.json"), func(r io.Reader) translate.ChunkReader {
		return New().ChatStream(r, translate.Target{Provider: testProvider()}, testMeta)
	})
}
