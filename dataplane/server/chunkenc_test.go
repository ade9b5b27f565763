package server

import (
	"bytes"
	"encoding"
	"fmt"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
)

func sp(s string) *string { return &s }

// invalidUTF8 is what json.Marshal writes for an invalid byte (\ufffd, or
// U+FFFD itself under GOEXPERIMENT=jsonv2).
func invalidUTF8() string {
	b, _ := json.Marshal("\xff")
	return string(b[1 : len(b)-1])
}
func ip(i int) *int { return &i }

// chunkCases are representative chunks of the shapes openai.AppendChunk writes
// (fast) and of the shapes it leaves to encoding/json (!fast).
func chunkCases() []struct {
	name  string
	c     openai.ChatChunk
	fast  bool
	wants string // a substring the output must contain, if set
} {
	base := func(choices ...openai.ChunkChoice) openai.ChatChunk {
		return openai.ChatChunk{ID: "chatcmpl-123", Object: openai.ObjectChatCompletionChunk, Created: 1700000000, Model: "gpt-4o-mini", Choices: choices}
	}
	withUsage := func(c openai.ChatChunk, u *openai.Usage) openai.ChatChunk { c.Usage = u; return c }
	withFP := func(c openai.ChatChunk, fp string) openai.ChatChunk { c.SystemFingerprint = fp; return c }
	return []struct {
		name  string
		c     openai.ChatChunk
		fast  bool
		wants string
	}{
		{"zero value", openai.ChatChunk{}, true, `"choices":null`},
		{"empty choices", base([]openai.ChunkChoice{}...), true, `"choices":[]`},
		{"role", base(openai.ChunkChoice{Delta: openai.Delta{Role: "assistant"}}), true, `"delta":{"role":"assistant"},"finish_reason":null`},
		{"role and empty content", base(openai.ChunkChoice{Delta: openai.Delta{Role: "assistant", Content: sp("")}}), true, `{"role":"assistant","content":""}`},
		{"content", base(openai.ChunkChoice{Delta: openai.Delta{Content: sp("Hello, world")}}), true, ""},
		{"content html", base(openai.ChunkChoice{Delta: openai.Delta{Content: sp(`<a href="x">&amp;</a>`)}}), true, `\u003ca href=\"x\"\u003e\u0026amp;\u003c/a\u003e`},
		{"content controls", base(openai.ChunkChoice{Delta: openai.Delta{Content: sp("a\x00b\x01\b\f\n\r\t\x1f\x7f\\\"")}}), true, `a\u0000b\u0001\b\f\n\r\t\u001f` + "\x7f" + `\\\"`},
		{"content unicode", base(openai.ChunkChoice{Delta: openai.Delta{Content: sp("héllo wörld — 日本語 🙂 \u2028 \u2029 \u2027 \u202a")}}), true, `\u2028 \u2029 ` + "\u2027 \u202a"},
		{"content invalid utf8", base(openai.ChunkChoice{Delta: openai.Delta{Content: sp("a\xffb\xc3(c\xe2\x82d\xed\xa0\x80e\xf4\x90\x80\x80")}}), true, `a\ufffdb\ufffd(c\ufffd\ufffdd\ufffd\ufffd\ufffde\ufffd\ufffd\ufffd\ufffd`},
		{"reasoning", base(openai.ChunkChoice{Delta: openai.Delta{ReasoningContent: sp("Let me think.")}}), true, `{"reasoning_content":"Let me think."}`},
		{"reasoning signature", base(openai.ChunkChoice{Delta: openai.Delta{ReasoningSignature: sp("EqQBCkgIARABGAIiQL")}}), true, `{"reasoning_signature":"EqQBCkgIARABGAIiQL"}`},
		{"everything in delta", base(openai.ChunkChoice{Index: 2, Delta: openai.Delta{Role: "assistant", Content: sp("c"), ReasoningContent: sp("r"),
			ToolCalls: []openai.ToolCall{{Index: ip(0), ID: "call_1", Type: "function", Function: openai.FunctionCall{Name: "f", Arguments: "{}"}}}, ReasoningSignature: sp("s")}}), true,
			`{"role":"assistant","content":"c","reasoning_content":"r","tool_calls":[`},
		{"finish", base(openai.ChunkChoice{Delta: openai.Delta{}, FinishReason: sp(openai.FinishStop)}), true, `"delta":{},"finish_reason":"stop"`},
		{"empty finish", base(openai.ChunkChoice{FinishReason: sp("")}), true, `"finish_reason":""`},
		{"tool call first delta", base(openai.ChunkChoice{Delta: openai.Delta{Role: "assistant", ToolCalls: []openai.ToolCall{
			{Index: ip(0), ID: "call_abc", Type: "function", Function: openai.FunctionCall{Name: "get_weather", Arguments: ""}}}}}), true,
			`"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":""}}]`},
		{"tool call arguments delta", base(openai.ChunkChoice{Delta: openai.Delta{ToolCalls: []openai.ToolCall{
			{Index: ip(1), Function: openai.FunctionCall{Arguments: `{"city":"Paris <FR>"}`}}}}}), true,
			`[{"index":1,"function":{"arguments":"{\"city\":\"Paris \u003cFR\u003e\"}"}}]`},
		{"tool call no index", base(openai.ChunkChoice{Delta: openai.Delta{ToolCalls: []openai.ToolCall{{ID: "x"}, {Type: "function"}, {Function: openai.FunctionCall{Name: "n"}}}}}), true,
			`[{"id":"x","function":{"arguments":""}},{"type":"function","function":{"arguments":""}},{"function":{"name":"n","arguments":""}}]`},
		{"tool calls empty slice", base(openai.ChunkChoice{Delta: openai.Delta{ToolCalls: []openai.ToolCall{}}}), true, `"delta":{}`},
		{"tool call finish", base(openai.ChunkChoice{Delta: openai.Delta{}, FinishReason: sp(openai.FinishToolCalls)}), true, ""},
		{"two choices", base(openai.ChunkChoice{Index: 0, Delta: openai.Delta{Content: sp("a")}}, openai.ChunkChoice{Index: 1, Delta: openai.Delta{Content: sp("b")}, FinishReason: sp("length")}), true, ""},
		{"negative numbers", openai.ChatChunk{Created: -1, Choices: []openai.ChunkChoice{{Index: -7, Delta: openai.Delta{ToolCalls: []openai.ToolCall{{Index: ip(-3)}}}}}}, true, ""},
		{"usage only", withUsage(base([]openai.ChunkChoice{}...), &openai.Usage{PromptTokens: 10, CompletionTokens: 20, TotalTokens: 30}), true,
			`"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":20,"total_tokens":30}}`},
		{"usage zero details", withUsage(base([]openai.ChunkChoice{}...), &openai.Usage{PromptTokensDetails: &openai.PromptTokensDetails{}, CompletionTokensDetails: &openai.CompletionTokensDetails{}}), true,
			`"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}`},
		{"usage all details", withUsage(base([]openai.ChunkChoice{}...), &openai.Usage{PromptTokens: 1200, CompletionTokens: 300, TotalTokens: 1500,
			PromptTokensDetails:     &openai.PromptTokensDetails{CachedTokens: 1000, CacheWriteTokens: 100, AudioTokens: 5},
			CompletionTokensDetails: &openai.CompletionTokensDetails{ReasoningTokens: 200, AudioTokens: 7}}), true,
			`{"cached_tokens":1000,"cache_write_tokens":100,"audio_tokens":5},"completion_tokens_details":{"reasoning_tokens":200,"audio_tokens":7}}`},
		{"usage negative", withUsage(base([]openai.ChunkChoice{}...), &openai.Usage{PromptTokens: -1, CompletionTokens: -2, TotalTokens: -3,
			PromptTokensDetails:     &openai.PromptTokensDetails{CachedTokens: -4, CacheWriteTokens: -5, AudioTokens: -6},
			CompletionTokensDetails: &openai.CompletionTokensDetails{ReasoningTokens: -7, AudioTokens: -8}}), true,
			`{"cached_tokens":-4,"cache_write_tokens":-5,"audio_tokens":-6},"completion_tokens_details":{"reasoning_tokens":-7,"audio_tokens":-8}}`},
		{"usage nil choices", withUsage(openai.ChatChunk{}, &openai.Usage{TotalTokens: 1}), true, `"choices":null,"usage":`},
		{"usage with finish", withUsage(base(openai.ChunkChoice{FinishReason: sp("stop")}), &openai.Usage{TotalTokens: 3}), true, ""},
		{"fingerprint", withFP(base(openai.ChunkChoice{Delta: openai.Delta{Content: sp("x")}}), "fp_44709d6fcb"), true, `,"system_fingerprint":"fp_44709d6fcb"}`},
		{"strings everywhere", openai.ChatChunk{ID: "<id>", Object: "o&", Model: "m\u2028", SystemFingerprint: "\xff", Choices: []openai.ChunkChoice{{Delta: openai.Delta{Role: "\"r\""}, FinishReason: sp("\t")}}}, true, ""},
		{"empty logprobs", base(openai.ChunkChoice{Delta: openai.Delta{Content: sp("x")}, Logprobs: json.RawMessage{}}), true, ""},

		{"logprobs", base(openai.ChunkChoice{Delta: openai.Delta{Content: sp("x")}, Logprobs: json.RawMessage(`{"content":[{"token":"x","logprob":-0.1,"bytes":[120],"top_logprobs":[]}]}`)}), false, `"logprobs":{"content":`},
		{"logprobs null", base(openai.ChunkChoice{Logprobs: json.RawMessage(`null`)}), false, `"logprobs":null`},
		{"logprobs in second choice", base(openai.ChunkChoice{}, openai.ChunkChoice{Index: 1, Logprobs: json.RawMessage(` { "a" : 1 } `)}), false, `"logprobs":{"a":1}`},
		{"refusal", base(openai.ChunkChoice{Delta: openai.Delta{Refusal: sp("I can't help with that.")}}), false, `{"refusal":"I can't help with that."}`},
		{"empty refusal", base(openai.ChunkChoice{Delta: openai.Delta{Role: "assistant", Refusal: sp("")}}), false, `{"role":"assistant","refusal":""}`},
	}
}

func TestAppendChunk(t *testing.T) {
	for _, tc := range chunkCases() {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(&tc.c)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := openai.AppendChunk([]byte("prefix"), &tc.c)
			if ok != tc.fast {
				t.Fatalf("openai.AppendChunk ok = %v, want %v", ok, tc.fast)
			}
			if ok && string(got) != "prefix"+string(want) {
				t.Fatalf("openai.AppendChunk:\n got %s\nwant prefix%s", got, want)
			}
			// (U+FFFD itself instead of \ufffd under GOEXPERIMENT=jsonv2.)
			if wants := strings.ReplaceAll(tc.wants, `\ufffd`, invalidUTF8()); !strings.Contains(string(want), wants) {
				t.Fatalf("json.Marshal = %s, does not contain %s", want, wants)
			}
			// Through the stream writer, fast path or not.
			if got := streamChunk(t, &tc.c); got != string(want) {
				t.Fatalf("openaiStream.chunk:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// streamChunk writes c through openaiStream.chunk (usage requested) and
// returns the event's data.
func streamChunk(t testing.TB, c *openai.ChatChunk) string {
	rec := httptest.NewRecorder()
	o := (openaiInbound{}).startStream(rec, translate.StreamMeta{}, true).(*openaiStream)
	if err := o.chunk(c); err != nil {
		t.Fatal(err)
	}
	// The second chunk reuses the buffers.
	if err := o.chunk(c); err != nil {
		t.Fatal(err)
	}
	events := strings.Split(rec.Body.String(), "\n\n")
	if len(events) != 3 || events[2] != "" || events[0] != events[1] || !strings.HasPrefix(events[0], "data: ") {
		t.Fatalf("stream = %q, want two identical data events", rec.Body.String())
	}
	return strings.TrimPrefix(events[0], "data: ")
}

// TestOpenAIStreamSkipsMeteringUsage: without include_usage the usage-only
// chunk is not sent and usage is stripped from the others.
func TestOpenAIStreamSkipsMeteringUsage(t *testing.T) {
	rec := httptest.NewRecorder()
	o := (openaiInbound{}).startStream(rec, translate.StreamMeta{}, false)
	u := &openai.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3}
	if err := o.chunk(&openai.ChatChunk{ID: "a", Choices: []openai.ChunkChoice{}, Usage: u}); err != nil {
		t.Fatal(err)
	}
	if err := o.chunk(&openai.ChatChunk{ID: "b", Choices: []openai.ChunkChoice{{FinishReason: sp("stop")}}, Usage: u}); err != nil {
		t.Fatal(err)
	}
	want := `data: {"id":"b","object":"","created":0,"model":"","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n"
	if rec.Body.String() != want {
		t.Fatalf("stream = %q, want %q", rec.Body.String(), want)
	}
}

// TestChunkEncoderKnowsEveryField pins the fields, types and tags of the
// types openai.AppendChunk writes by hand. If this fails, a field was added or
// changed: teach openai.AppendChunk to write it (in tag order, with its omitempty
// rule) or to report false when it is set, extend the tests and the fuzz
// target, then update this list.
func TestChunkEncoderKnowsEveryField(t *testing.T) {
	want := map[reflect.Type][]string{
		reflect.TypeFor[openai.ChatChunk](): {
			`ID string json:"id"`,
			`Object string json:"object"`,
			`Created int64 json:"created"`,
			`Model string json:"model"`,
			`Choices []openai.ChunkChoice json:"choices"`,
			`Usage *openai.Usage json:"usage,omitempty"`,
			`SystemFingerprint string json:"system_fingerprint,omitempty"`,
		},
		reflect.TypeFor[openai.ChunkChoice](): {
			`Index int json:"index"`,
			`Delta openai.Delta json:"delta"`,
			`FinishReason *string json:"finish_reason"`,
			// json.RawMessage, named jsontext.Value under GOEXPERIMENT=jsonv2.
			fmt.Sprintf(`Logprobs %s json:"logprobs,omitempty"`, reflect.TypeFor[json.RawMessage]()), // not written: reports false
		},
		reflect.TypeFor[openai.Delta](): {
			`Role string json:"role,omitempty"`,
			`Content *string json:"content,omitempty"`,
			`ReasoningContent *string json:"reasoning_content,omitempty"`,
			`ToolCalls []openai.ToolCall json:"tool_calls,omitempty"`,
			`Refusal *string json:"refusal,omitempty"`, // not written: reports false
			`ReasoningSignature *string json:"reasoning_signature,omitempty"`,
		},
		reflect.TypeFor[openai.ToolCall](): {
			`Index *int json:"index,omitempty"`,
			`ID string json:"id,omitempty"`,
			`Type string json:"type,omitempty"`,
			`Function openai.FunctionCall json:"function"`,
		},
		reflect.TypeFor[openai.FunctionCall](): {
			`Name string json:"name,omitempty"`,
			`Arguments string json:"arguments"`,
		},
		reflect.TypeFor[openai.Usage](): {
			`PromptTokens int json:"prompt_tokens"`,
			`CompletionTokens int json:"completion_tokens"`,
			`TotalTokens int json:"total_tokens"`,
			`PromptTokensDetails *openai.PromptTokensDetails json:"prompt_tokens_details,omitempty"`,
			`CompletionTokensDetails *openai.CompletionTokensDetails json:"completion_tokens_details,omitempty"`,
		},
		reflect.TypeFor[openai.PromptTokensDetails](): {
			`CachedTokens int json:"cached_tokens"`,
			`CacheWriteTokens int json:"cache_write_tokens,omitempty"`,
			`AudioTokens int json:"audio_tokens,omitempty"`,
		},
		reflect.TypeFor[openai.CompletionTokensDetails](): {
			`ReasoningTokens int json:"reasoning_tokens"`,
			`AudioTokens int json:"audio_tokens,omitempty"`,
		},
	}
	marshalers := []reflect.Type{reflect.TypeFor[json.Marshaler](), reflect.TypeFor[encoding.TextMarshaler]()}
	for typ, fields := range want {
		var got []string
		for f := range typ.Fields() {
			got = append(got, fmt.Sprintf("%s %s %s", f.Name, f.Type, f.Tag))
		}
		if !reflect.DeepEqual(got, fields) {
			t.Errorf("%s fields changed; openai.AppendChunk must follow:\n got %q\nwant %q", typ, got, fields)
		}
		for _, m := range marshalers {
			if typ.Implements(m) || reflect.PointerTo(typ).Implements(m) {
				t.Errorf("%s implements %s; openai.AppendChunk does not call it", typ, m)
			}
		}
	}
}

// FuzzChunkEncoding builds chunks from fuzzed values and checks that
// openai.AppendChunk writes exactly what json.Marshal does, takes the fast path
// whenever the chunk has no logprobs or refusal, and that
// openaiStream.chunk sends the same bytes either way.
func FuzzChunkEncoding(f *testing.F) {
	f.Add("chatcmpl-1", "chat.completion.chunk", "gpt-4o", "fp_1", "assistant", "Hello", "think", "call_1", "function", "get_weather", `{"a":1}`, "stop",
		int64(1700000000), 0, 0, 10, 20, 30, 5, 1, 0, 2, 3, uint32(1<<22-1)) // 3 choices, everything, usage with details
	f.Add("id", "chat.completion.chunk", "m", "", "", "x", "", "", "", "", "", "length",
		int64(-9), -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, uint32(1<<20|1<<17|1<<18|1<<19|1<<3|1<<6))
	f.Add("<>&", "\u2028\u2029", "\xff\xfe", "\x00\x1f\x7f", "\b\f\n\r\t", `"\`, "é日🙂", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc3", "\xe2\x82", "",
		int64(-1), -1, 1<<31, -5, 0, 1, 0, 0, 0, 0, 0, uint32(0))
	f.Add("", "", "", "", "", "", "", "", "", "", "", "", int64(0), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, uint32(1<<16|1<<17))
	f.Fuzz(func(t *testing.T, id, object, model, fp, role, content, reasoning, tcID, tcType, tcName, tcArgs, finish string,
		created int64, index, tcIndex, prompt, completion, total, cached, cacheWrite, audio, reasoningTokens, outAudio int, flags uint32) {
		bit := func(n uint) bool { return flags&(1<<n) != 0 }
		c := openai.ChatChunk{ID: id, Object: object, Created: created, Model: model, SystemFingerprint: fp}
		nChoices := int(flags>>20) % 4 // 0..3
		if nChoices > 0 || bit(0) {
			c.Choices = make([]openai.ChunkChoice, nChoices)
		}
		for i := range c.Choices {
			ch := &c.Choices[i]
			ch.Index = index + i
			// Rotate which parts each choice has, so choices differ.
			b := func(n uint) bool { return bit((n+uint(i)*3)%16 + 1) }
			if b(0) {
				ch.Delta.Role = role
			}
			if b(1) {
				ch.Delta.Content = &content
			}
			if b(2) {
				ch.Delta.ReasoningContent = &reasoning
			}
			if b(3) {
				ch.Delta.ReasoningSignature = &tcID
			}
			if b(4) {
				ch.FinishReason = &finish
			}
			if b(5) || b(6) {
				n := 1
				if b(5) && b(6) {
					n = 2
				}
				if b(7) && !b(5) {
					n = 0 // empty, non-nil: omitted
				}
				ch.Delta.ToolCalls = make([]openai.ToolCall, n)
				for j := range ch.Delta.ToolCalls {
					tc := &ch.Delta.ToolCalls[j]
					if b(8) || j > 0 {
						k := tcIndex + j
						tc.Index = &k
					}
					if b(9) {
						tc.ID = tcID
					}
					if b(10) {
						tc.Type = tcType
					}
					if b(11) {
						tc.Function.Name = tcName
					}
					tc.Function.Arguments = tcArgs
				}
			}
		}
		if bit(17) {
			c.Usage = &openai.Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: total}
			if bit(18) {
				c.Usage.PromptTokensDetails = &openai.PromptTokensDetails{CachedTokens: cached, CacheWriteTokens: cacheWrite, AudioTokens: audio}
			}
			if bit(19) {
				c.Usage.CompletionTokensDetails = &openai.CompletionTokensDetails{ReasoningTokens: reasoningTokens, AudioTokens: outAudio}
			}
		}
		fast := true
		if len(c.Choices) > 0 {
			last := &c.Choices[len(c.Choices)-1]
			switch {
			case bit(24):
				last.Delta.Refusal = &content
				fast = false
			case bit(25):
				last.Logprobs = json.RawMessage(`{"content":[]}`)
				fast = false
			case bit(26):
				last.Logprobs = json.RawMessage{} // empty: omitted, still fast
			}
		}

		want, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := openai.AppendChunk(nil, &c)
		if ok != fast {
			t.Fatalf("openai.AppendChunk ok = %v, want %v", ok, fast)
		}
		if ok && !bytes.Equal(got, want) {
			t.Fatalf("openai.AppendChunk:\n got %s\nwant %s", got, want)
		}
		if got := streamChunk(t, &c); got != string(want) {
			t.Fatalf("openaiStream.chunk:\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkAppendChunk(b *testing.B) {
	c := &openai.ChatChunk{ID: "chatcmpl-123", Object: openai.ObjectChatCompletionChunk, Created: 1700000000, Model: "gpt-4o-mini",
		Choices: []openai.ChunkChoice{{Delta: openai.Delta{Content: sp("Connection pooling trades memory for latency. ")}}}}
	b.Run("append", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = openai.AppendChunk(buf[:0], c)
		}
	})
	b.Run("encoder", func(b *testing.B) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			_ = enc.Encode(c)
		}
	})
}
