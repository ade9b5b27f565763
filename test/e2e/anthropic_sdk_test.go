package e2e

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/server"
	"tollgate.dev/tollgate/dataplane/translate/providers"
	"tollgate.dev/tollgate/test/fakeprovider"
)

// anthropicClient is the official Anthropic SDK pointed at the gateway,
// as Claude clients and Anthropic-SDK apps use it.
func (g *gateway) anthropicClient(opts ...option.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]option.RequestOption{option.WithBaseURL(g.URL), option.WithAPIKey(testKey), option.WithMaxRetries(0)}, opts...)...)
}

var sdkWeatherTool = anthropic.ToolUnionParamOfTool(anthropic.ToolInputSchemaParam{
	Properties: map[string]any{"input": map[string]any{"type": "string"}},
	Required:   []string{"input"},
}, "get_weather")

// TestAnthropicSDKEveryProvider: the Anthropic SDK's Messages calls, whole
// and streamed (accumulated by the SDK), and a tool loop, answered by every
// provider type through /v1/messages.
func TestAnthropicSDKEveryProvider(t *testing.T) {
	g := startGateway(t)
	c := g.anthropicClient()
	for _, at := range allTypes {
		t.Run(string(at.typ), func(t *testing.T) {
			params := anthropic.MessageNewParams{Model: anthropic.Model(at.model), MaxTokens: 256,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi from the sdk"))}}
			msg, err := c.Messages.New(ctx(t), params)
			if err != nil {
				t.Fatal(err)
			}
			if got := text(*msg); got != "echo: hi from the sdk" || msg.StopReason != anthropic.StopReasonEndTurn || msg.Usage.OutputTokens == 0 {
				t.Fatalf("message %q stop %q usage %+v", got, msg.StopReason, msg.Usage)
			}

			acc, err := send(t, c, params, true)
			if err != nil {
				t.Fatal(err)
			}
			if got := text(acc); got != "echo: hi from the sdk" || acc.StopReason != anthropic.StopReasonEndTurn || string(acc.Model) != at.model {
				t.Fatalf("streamed message %q stop %q model %q", got, acc.StopReason, acc.Model)
			}

			params.Tools = []anthropic.ToolUnionParam{sdkWeatherTool}
			params.Messages = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("weather in Paris"))}
			call, err := c.Messages.New(ctx(t), params)
			if err != nil {
				t.Fatal(err)
			}
			var use anthropic.ToolUseBlock
			for _, b := range call.Content {
				if b.Type == "tool_use" {
					use = b.AsToolUse()
				}
			}
			if call.StopReason != anthropic.StopReasonToolUse || use.Name != "get_weather" || use.ID == "" {
				t.Fatalf("tool call: stop %q block %+v", call.StopReason, use)
			}
			params.Messages = append(params.Messages, call.ToParam(), anthropic.NewUserMessage(anthropic.NewToolResultBlock(use.ID, "sunny", false)))
			final, err := c.Messages.New(ctx(t), params)
			if err != nil {
				t.Fatal(err)
			}
			if got := text(*final); got != "tool said: sunny" {
				t.Fatalf("after the tool result: %q", got)
			}
		})
	}
}

// TestAnthropicNative: routed to an Anthropic provider, a Messages request
// goes upstream as the client wrote it (prompt caching, top_k, its beta
// features), and the answer comes back as Anthropic wrote it, with the
// gateway's id and the client's model name.
func TestAnthropicNative(t *testing.T) {
	g := startGateway(t)
	fake := g.fakes[routetable.ProviderAnthropic]
	c := g.anthropicClient(option.WithHeader("anthropic-beta", "context-1m-2025-08-07"), option.WithJSONSet("top_k", 40))
	params := anthropic.MessageNewParams{Model: "via-anthropic", MaxTokens: 256,
		System:   []anthropic.TextBlockParam{{Text: "Be brief.", CacheControl: anthropic.NewCacheControlEphemeralParam()}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}
	for _, streamed := range []bool{false, true} {
		fake.Reset()
		msg, err := send(t, c, params, streamed)
		if err != nil {
			t.Fatal(err)
		}
		if text(msg) != "echo: hi" || msg.Model != "via-anthropic" || !strings.HasPrefix(msg.ID, "msg_") || msg.ID == "msg_fake" {
			t.Errorf("streamed=%v: answer %q model %q id %q", streamed, text(msg), msg.Model, msg.ID)
		}
		reqs := fake.Requests()
		if len(reqs) != 1 {
			t.Fatalf("streamed=%v: provider got %d requests", streamed, len(reqs))
		}
		body := string(reqs[0].Body)
		for _, want := range []string{`"cache_control":{"type":"ephemeral"}`, `"top_k":40`, `"model":"upstream-anthropic"`} {
			if !strings.Contains(body, want) {
				t.Errorf("streamed=%v: upstream body lacks %s:\n%s", streamed, want, body)
			}
		}
		if beta := reqs[0].Header.Get("anthropic-beta"); !strings.Contains(beta, "context-1m-2025-08-07") {
			t.Errorf("streamed=%v: anthropic-beta upstream = %q", streamed, beta)
		}
		if key := reqs[0].Header.Get("x-api-key"); key == testKey || key == "" {
			t.Errorf("streamed=%v: upstream x-api-key is the client's key or empty", streamed)
		}
	}
}

// send makes one Messages call, streamed (and accumulated by the SDK, as
// its users do) or not.
func send(t *testing.T, c anthropic.Client, params anthropic.MessageNewParams, streamed bool) (anthropic.Message, error) {
	if !streamed {
		m, err := c.Messages.New(ctx(t), params)
		if err != nil {
			return anthropic.Message{}, err
		}
		return *m, nil
	}
	var msg anthropic.Message
	stream := c.Messages.NewStreaming(ctx(t), params)
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			return msg, err
		}
	}
	return msg, stream.Err()
}

func text(m anthropic.Message) string {
	var b strings.Builder
	for _, blk := range m.Content {
		if blk.Type == "text" {
			b.WriteString(blk.Text)
		}
	}
	return b.String()
}

// TestAnthropicNativeOnly: what only Anthropic understands (here its web
// search server tool) is served when the route leads to Anthropic, and
// refused with a clear 400 when it leads elsewhere.
func TestAnthropicNativeOnly(t *testing.T) {
	g := startGateway(t)
	fake := g.fakes[routetable.ProviderAnthropic]
	fake.Reset()
	c := g.anthropicClient()
	params := anthropic.MessageNewParams{Model: "via-anthropic", MaxTokens: 256,
		Tools:    []anthropic.ToolUnionParam{{OfWebSearchTool20250305: &anthropic.WebSearchTool20250305Param{MaxUses: anthropic.Int(2)}}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("news today"))}}
	if _, err := c.Messages.New(ctx(t), params); err != nil {
		t.Fatalf("via Anthropic: %v", err)
	}
	if reqs := fake.Requests(); len(reqs) != 1 || !strings.Contains(string(reqs[0].Body), `"type":"web_search_20250305"`) {
		t.Fatalf("the server tool did not reach Anthropic: %d requests", len(reqs))
	}
	params.Model = "via-gemini"
	_, err := c.Messages.New(ctx(t), params)
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(err.Error(), `server tool \"web_search_20250305\"`) && !strings.Contains(err.Error(), `server tool "web_search_20250305"`) {
		t.Fatalf("via Gemini: %v", err)
	}
	if n := g.fakes[routetable.ProviderGemini].Count(); n != 0 {
		t.Errorf("Gemini got %d requests", n)
	}
}

// TestAnthropicFailoverAcrossRelays: an Anthropic client's route fails over
// between an Anthropic target (native: the provider's events forwarded) and
// a Gemini one (translated), in both orders, streamed and not; the client
// never sees the failed attempt and gets a well-formed answer either way.
func TestAnthropicFailoverAcrossRelays(t *testing.T) {
	anth := fakeprovider.Start(fakeprovider.Behavior{})
	gem := fakeprovider.Start(fakeprovider.Behavior{})
	t.Cleanup(anth.Close)
	t.Cleanup(gem.Close)
	tbl := &routetable.Table{
		Keys: []routetable.Key{{ID: "team-a/app", Namespace: "team-a", Name: "app", Team: "a", Hash: server.HashKey(testKey)}},
		Providers: []routetable.Provider{
			newProvider(routetable.ProviderAnthropic, "anthropic", anth.URL),
			newProvider(routetable.ProviderGemini, "gemini", gem.URL),
		},
		Routes: []routetable.Route{
			{ID: "team-a/claude-first", Namespace: "team-a", Name: "claude-first", Model: "claude-first", Retry: routetable.Retry{Attempts: 1},
				Targets: []routetable.Target{{Provider: "team-a/anthropic", Model: "claude-x"}, {Provider: "team-a/gemini", Model: "gemini-x"}}},
			{ID: "team-a/gemini-first", Namespace: "team-a", Name: "gemini-first", Model: "gemini-first", Retry: routetable.Retry{Attempts: 1},
				Targets: []routetable.Target{{Provider: "team-a/gemini", Model: "gemini-x"}, {Provider: "team-a/anthropic", Model: "claude-x"}}},
		},
	}
	if err := tbl.Finalize(); err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{Translators: providers.For})
	if err := srv.SetTable(tbl); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	c := (&gateway{URL: hs.URL}).anthropicClient()

	for _, tc := range []struct {
		model           string
		failing, answer *fakeprovider.Server
	}{{"claude-first", anth, gem}, {"gemini-first", gem, anth}} {
		for _, streamed := range []bool{false, true} {
			tc.failing.SetBehavior(fakeprovider.Behavior{FailFirst: 1, FailStatus: 503})
			tc.answer.SetBehavior(fakeprovider.Behavior{})
			tc.failing.Reset()
			tc.answer.Reset()
			params := anthropic.MessageNewParams{Model: anthropic.Model(tc.model), MaxTokens: 64,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}
			msg, err := send(t, c, params, streamed)
			if err != nil {
				t.Fatalf("%s streamed=%v: %v", tc.model, streamed, err)
			}
			if text(msg) != "echo: hi" || msg.Model != anthropic.Model(tc.model) || msg.StopReason != anthropic.StopReasonEndTurn {
				t.Errorf("%s streamed=%v: %q model %q stop %q", tc.model, streamed, text(msg), msg.Model, msg.StopReason)
			}
			if tc.failing.Count() != 1 || tc.answer.Count() != 1 {
				t.Errorf("%s streamed=%v: failing target got %d requests, answering %d", tc.model, streamed, tc.failing.Count(), tc.answer.Count())
			}
		}
	}
}
