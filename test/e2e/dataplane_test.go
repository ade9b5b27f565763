// Package e2e drives the data plane end to end: the official OpenAI Go SDK
// as the client, the real HTTP server, real translators, and fake providers
// on loopback that speak each provider's native wire format.
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/server"
	"tollgate.dev/tollgate/dataplane/translate/providers"
	"tollgate.dev/tollgate/test/fakeprovider"
)

const testKey = "tg-e2e-test-key-0123456789abcdefghijklmnopqrstuv"

// allTypes lists every provider type with its public model name.
var allTypes = []struct {
	typ   routetable.ProviderType
	model string
}{
	{routetable.ProviderOpenAI, "via-openai"},
	{routetable.ProviderAzureOpenAI, "via-azure"},
	{routetable.ProviderAnthropic, "via-anthropic"},
	{routetable.ProviderGemini, "via-gemini"},
	{routetable.ProviderBedrock, "via-bedrock"},
	{routetable.ProviderOllama, "via-ollama"},
	{routetable.ProviderOpenAICompatible, "via-vllm"},
}

// gateway is a data plane with one fake provider per type.
type gateway struct {
	URL   string
	srv   *server.Server
	fakes map[routetable.ProviderType]*fakeprovider.Server
}

func newProvider(typ routetable.ProviderType, name, url string) routetable.Provider {
	p := routetable.Provider{ID: "team-a/" + name, Namespace: "team-a", Name: name, Type: typ, BaseURL: url,
		Locality: routetable.LocalityExternal, APIKey: "sk-provider-secret-" + name, DefaultMaxTokens: 1024, Currency: "USD"}
	switch typ {
	case routetable.ProviderAzureOpenAI:
		p.APIVersion = "2024-10-21"
	case routetable.ProviderBedrock:
		p.APIKey = ""
		p.Region = "eu-central-1"
		p.AWSAccessKeyID, p.AWSSecretAccessKey = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	case routetable.ProviderOllama, routetable.ProviderOpenAICompatible:
		p.APIKey = ""
		p.Locality = routetable.LocalityInCluster
	}
	return p
}

func startGateway(t *testing.T) *gateway {
	t.Helper()
	g := &gateway{fakes: map[routetable.ProviderType]*fakeprovider.Server{}}
	tbl := &routetable.Table{
		Keys: []routetable.Key{{ID: "team-a/app", Namespace: "team-a", Name: "app", Team: "a", Hash: server.HashKey(testKey)}},
	}
	for _, at := range allTypes {
		f := fakeprovider.Start(fakeprovider.Behavior{})
		t.Cleanup(f.Close)
		g.fakes[at.typ] = f
		name := strings.ToLower(string(at.typ))
		tbl.Providers = append(tbl.Providers, newProvider(at.typ, name, f.URL))
		tbl.Routes = append(tbl.Routes, routetable.Route{ID: "team-a/" + at.model, Namespace: "team-a", Name: at.model, Model: at.model,
			Targets: []routetable.Target{{Provider: "team-a/" + name, Model: "upstream-" + name, Weight: 1}}, Retry: routetable.Retry{Attempts: 1}})
	}
	if err := tbl.Finalize(); err != nil {
		t.Fatal(err)
	}
	g.srv = server.New(server.Options{Translators: providers.For})
	if err := g.srv.SetTable(tbl); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(g.srv.Handler())
	t.Cleanup(hs.Close)
	g.URL = hs.URL
	return g
}

func (g *gateway) client(key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(g.URL+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

var weatherTool = openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
	Name:        "get_weather",
	Description: openai.String("Weather for a city"),
	Parameters: shared.FunctionParameters{
		"type":       "object",
		"properties": map[string]any{"input": map[string]any{"type": "string"}},
		"required":   []string{"input"},
	},
})

var timeTool = openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
	Name:       "get_time",
	Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"input": map[string]any{"type": "string"}}},
})

func TestChatEveryProvider(t *testing.T) {
	g := startGateway(t)
	c := g.client(testKey)
	for _, at := range allTypes {
		t.Run(string(at.typ), func(t *testing.T) {
			resp, err := c.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
				Model:    at.model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("hello there")},
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Choices[0].Message.Content; got != "echo: hello there" {
				t.Fatalf("content = %q", got)
			}
			if resp.Model != at.model {
				t.Fatalf("model = %q, want the public name %q", resp.Model, at.model)
			}
			if resp.Choices[0].FinishReason != "stop" || resp.Usage.PromptTokens == 0 || resp.Usage.CompletionTokens == 0 {
				t.Fatalf("finish=%q usage=%+v", resp.Choices[0].FinishReason, resp.Usage)
			}
			if n := g.fakes[at.typ].Count(); n != 1 {
				t.Fatalf("provider saw %d requests, want 1", n)
			}
			g.fakes[at.typ].Reset()
		})
	}
}

func TestStreamEveryProvider(t *testing.T) {
	g := startGateway(t)
	c := g.client(testKey)
	for _, at := range allTypes {
		t.Run(string(at.typ), func(t *testing.T) {
			stream := c.Chat.Completions.NewStreaming(ctx(t), openai.ChatCompletionNewParams{
				Model:         at.model,
				Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("stream me a reply")},
				StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
			})
			acc := openai.ChatCompletionAccumulator{}
			ids := map[string]bool{}
			finishes := 0
			for stream.Next() {
				ch := stream.Current()
				acc.AddChunk(ch)
				ids[ch.ID] = true
				for _, choice := range ch.Choices {
					if choice.FinishReason != "" {
						finishes++
					}
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if got := acc.Choices[0].Message.Content; got != "echo: stream me a reply" {
				t.Fatalf("content = %q", got)
			}
			if len(ids) != 1 || finishes != 1 {
				t.Fatalf("ids=%v finish reasons=%d; want one stable id and exactly one finish_reason", ids, finishes)
			}
			if acc.Usage.TotalTokens == 0 {
				t.Fatalf("include_usage was set but no usage chunk arrived")
			}
		})
	}
}

// TestAgentLoopEveryProvider runs a multi-step tool-calling agent loop,
// unchanged, against every provider type: the model calls tools (in
// parallel), the client answers with tool results, the model answers.
func TestAgentLoopEveryProvider(t *testing.T) {
	g := startGateway(t)
	c := g.client(testKey)
	for _, at := range allTypes {
		for _, streaming := range []bool{false, true} {
			name := string(at.typ) + map[bool]string{false: "/sync", true: "/stream"}[streaming]
			t.Run(name, func(t *testing.T) {
				params := openai.ChatCompletionNewParams{
					Model:    at.model,
					Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("weather and time in parallel for Paris")},
					Tools:    []openai.ChatCompletionToolUnionParam{weatherTool, timeTool},
				}
				var msg openai.ChatCompletionMessage
				var finish string
				if streaming {
					stream := c.Chat.Completions.NewStreaming(ctx(t), params)
					acc := openai.ChatCompletionAccumulator{}
					for stream.Next() {
						acc.AddChunk(stream.Current())
					}
					if err := stream.Err(); err != nil {
						t.Fatal(err)
					}
					msg, finish = acc.Choices[0].Message, acc.Choices[0].FinishReason
				} else {
					resp, err := c.Chat.Completions.New(ctx(t), params)
					if err != nil {
						t.Fatal(err)
					}
					msg, finish = resp.Choices[0].Message, resp.Choices[0].FinishReason
				}
				if finish != "tool_calls" || len(msg.ToolCalls) != 2 {
					t.Fatalf("finish=%q tool calls=%d, want two parallel calls", finish, len(msg.ToolCalls))
				}
				params.Messages = append(params.Messages, msg.ToParam())
				for _, tc := range msg.ToolCalls {
					var args map[string]string
					if err := json.Unmarshal([]byte(tc.Function.Arguments), &args); err != nil || args["input"] == "" {
						t.Fatalf("tool %s arguments %q: %v", tc.Function.Name, tc.Function.Arguments, err)
					}
					if tc.ID == "" {
						t.Fatalf("tool call without id")
					}
					params.Messages = append(params.Messages, openai.ToolMessage(tc.Function.Name+" result", tc.ID))
				}
				resp, err := c.Chat.Completions.New(ctx(t), params)
				if err != nil {
					t.Fatal(err)
				}
				want := "tool said: " + msg.ToolCalls[0].Function.Name + " result | " + msg.ToolCalls[1].Function.Name + " result"
				if got := resp.Choices[0].Message.Content; got != want {
					t.Fatalf("final answer = %q, want %q", got, want)
				}
			})
		}
	}
}

func TestModelsListsOnlyAllowedRoutes(t *testing.T) {
	g := startGateway(t)
	c := g.client(testKey)
	page, err := c.Models.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != len(allTypes) {
		t.Fatalf("models = %d, want %d", len(page.Data), len(allTypes))
	}
	m, err := c.Models.Get(ctx(t), "via-anthropic")
	if err != nil || m.ID != "via-anthropic" || m.Object != "model" {
		t.Fatalf("models.retrieve = %+v, %v", m, err)
	}
	var apiErr *openai.Error
	if _, err := c.Models.Get(ctx(t), "not-a-route"); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
		t.Fatalf("retrieving an unknown model: %v, want a 404 API error", err)
	}
}

func TestAuthAndBadInput(t *testing.T) {
	g := startGateway(t)
	post := func(key, body string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", g.URL+"/v1/chat/completions", strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("non-JSON error body %q", b)
		}
		return resp.StatusCode, out
	}
	cases := []struct {
		name, key, body string
		status          int
	}{
		{"no key", "", `{"model":"via-openai","messages":[{"role":"user","content":"x"}]}`, 401},
		{"wrong key", "tg-nope", `{"model":"via-openai","messages":[{"role":"user","content":"x"}]}`, 401},
		{"malformed JSON", testKey, `{"model":`, 400},
		{"empty messages", testKey, `{"model":"via-openai","messages":[]}`, 400},
		{"unknown role", testKey, `{"model":"via-openai","messages":[{"role":"wizard","content":"x"}]}`, 400},
		{"unknown tool_call_id", testKey, `{"model":"via-openai","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"nope","content":"r"}]}`, 400},
		{"wrong type", testKey, `{"model":"via-openai","messages":"hi"}`, 400},
		{"unknown model", testKey, `{"model":"gpt-nope","messages":[{"role":"user","content":"x"}]}`, 404},
	}
	for _, c := range cases {
		status, body := post(c.key, c.body)
		e, _ := body["error"].(map[string]any)
		if status != c.status || e == nil || e["message"] == "" || e["type"] == "" {
			t.Errorf("%s: status %d body %v, want %d with an OpenAI error object", c.name, status, body, c.status)
		}
	}
	for typ, f := range g.fakes {
		if f.Count() != 0 {
			t.Errorf("%s received %d requests; bad input must never reach a provider", typ, f.Count())
		}
	}
	big := `{"model":"via-openai","messages":[{"role":"user","content":"` + strings.Repeat("a", 33<<20) + `"}]}`
	if status, _ := post(testKey, big); status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status %d, want 413", status)
	}
}

// TestAnthropicInbound sends an Anthropic Messages request to /v1/messages
// and has it answered by a non-Anthropic provider, streaming and not.
func TestAnthropicInbound(t *testing.T) {
	g := startGateway(t)
	body := `{"model":"via-gemini","max_tokens":100,"system":"Be brief.","messages":[{"role":"user","content":"hi from claude code"}]}`
	req, _ := http.NewRequest("POST", g.URL+"/v1/messages", strings.NewReader(body))
	req.Header.Set("x-api-key", testKey)
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var msg struct {
		Type    string `json:"type"`
		Role    string `json:"role"`
		Content []struct {
			Type, Text string
		} `json:"content"`
		StopReason string `json:"stop_reason"`
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(b, &msg); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d body %s", resp.StatusCode, b)
	}
	if msg.Type != "message" || msg.Content[0].Text != "echo: hi from claude code" || msg.StopReason != "end_turn" {
		t.Fatalf("message = %+v", msg)
	}

	body = strings.Replace(body, `"max_tokens":100`, `"max_tokens":100,"stream":true`, 1)
	req, _ = http.NewRequest("POST", g.URL+"/v1/messages", strings.NewReader(body))
	req.Header.Set("x-api-key", testKey)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	s := string(b)
	for _, ev := range []string{"event: message_start", "event: content_block_start", "event: content_block_delta", "event: content_block_stop", "event: message_delta", "event: message_stop"} {
		if !strings.Contains(s, ev) {
			t.Fatalf("stream lacks %q:\n%s", ev, s)
		}
	}
}
