package anthropic

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/sse"
	"tollgate.dev/tollgate/dataplane/translate"
	tt "tollgate.dev/tollgate/dataplane/translate/translatetest"
)

var testMeta = translate.StreamMeta{ID: "chatcmpl-tollgate-1", Created: 1700000000, Model: "claude"}

// contract is the ChunkReader contract for Anthropic: one choice, usage
// always sent at the end.
var contract = tt.Contract{Meta: testMeta, OneChoice: true, RequireUsage: true}

func testProvider() *routetable.Provider {
	return &routetable.Provider{ID: "ai/anthropic", Namespace: "ai", Name: "anthropic", Type: routetable.ProviderAnthropic,
		BaseURL: "https://api.anthropic.com/", APIKey: "sk-ant-test-key", Locality: routetable.LocalityExternal}
}

func loadRequestFixture(t testing.TB, path string) (*openai.ChatRequest, translate.Target) {
	t.Helper()
	raw, target := tt.LoadRequestFixture(t, path, testProvider())
	return tt.DecodeRequest(t, path, raw), target
}

func TestRequestGolden(t *testing.T) {
	for _, in := range tt.Fixtures(t, "requests", ".json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			req, target := loadRequestFixture(t, in)
			hr, err := New().ChatRequest(context.Background(), req, target)
			if err != nil {
				t.Fatalf("ChatRequest: %v", err)
			}
			tt.CheckJSON(t, tt.GoldenPath(in, ".json"), tt.RequestGolden(t, hr))
		})
	}
}

func TestResponseGolden(t *testing.T) {
	for _, in := range tt.Fixtures(t, "responses", ".json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			resp, err := New().ChatResponse(tt.ReadFile(t, in), translate.Target{Provider: testProvider()}, testMeta)
			if err != nil {
				t.Fatalf("ChatResponse: %v", err)
			}
			tt.CheckJSON(t, tt.GoldenPath(in, ".json"), resp)
		})
	}
}

func collectStream(t testing.TB, r io.Reader) tt.StreamResult {
	t.Helper()
	return tt.Collect(t, New().ChatStream(r, translate.Target{Provider: testProvider()}, testMeta))
}

func TestStreamGolden(t *testing.T) {
	for _, in := range tt.Fixtures(t, "streams", ".sse") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			res := collectStream(t, bytes.NewReader(tt.ReadFile(t, in)))
			contract.Check(t, res.Chunks, res.Clean())
			tt.CheckJSON(t, tt.GoldenPath(in, ".json"), res)
		})
	}
}

func TestStreamRandomSplits(t *testing.T) {
	for _, in := range tt.Fixtures(t, "streams", ".sse") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			tt.CheckSplits(t, tt.ReadFile(t, in), func(r io.Reader) tt.StreamResult { return collectStream(t, r) })
		})
	}
}

func TestStreamIsLazy(t *testing.T) {
	tt.CheckLazy(t, tt.ReadFile(t, "testdata/streams/text.sse"), func(r io.Reader) translate.ChunkReader {
		return New().ChatStream(r, translate.Target{Provider: testProvider()}, testMeta)
	})
}

// --- inbound ---

func TestInboundRequestGolden(t *testing.T) {
	for _, in := range tt.Fixtures(t, "inbound/requests", ".json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			req, aerr := ParseMessagesRequest(tt.ReadFile(t, in))
			if aerr != nil {
				t.Fatalf("ParseMessagesRequest: %v", aerr)
			}
			tt.CheckJSON(t, tt.GoldenPath(in, ".json"), req)
		})
	}
}

func TestInboundResponseGolden(t *testing.T) {
	for _, in := range tt.Fixtures(t, "inbound/responses", ".json") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			var resp openai.ChatResponse
			if err := json.Unmarshal(tt.ReadFile(t, in), &resp); err != nil {
				t.Fatal(err)
			}
			out := MessagesResponse(&resp, "claude-sonnet-4-5")
			var decoded any
			if err := json.Unmarshal(out, &decoded); err != nil {
				t.Fatalf("MessagesResponse is not JSON: %v", err)
			}
			tt.CheckJSON(t, tt.GoldenPath(in, ".json"), decoded)
		})
	}
}

// encodeInboundStream replays a .jsonl fixture of OpenAI chunks through a
// MessagesStreamWriter. A line "ERROR <status> <message>" closes the
// stream with that error.
func encodeInboundStream(t testing.TB, path string) []byte {
	t.Helper()
	data := tt.ReadFile(t, path)
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
	for _, in := range tt.Fixtures(t, "inbound/streams", ".jsonl") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			out := encodeInboundStream(t, in)
			tt.CheckText(t, tt.GoldenPath(in, ".sse"), out)
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
