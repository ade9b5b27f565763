package mcp

import (
	"context"
	"net/http"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// BenchmarkToolCall compares a tools/call made directly to the upstream with
// the same call through the gateway (auth, policy, a second hop, audit,
// metrics). Both run over loopback HTTP with the SDK client.
func BenchmarkToolCall(b *testing.B) {
	f := newFixture(b)
	f.audit = nil
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	direct, err := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil).Connect(ctx,
		&sdk.StreamableClientTransport{Endpoint: f.gh.srv.URL, HTTPClient: &http.Client{Transport: headerTransport{ghHeader, ghValue}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Close()
	via, err := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil).Connect(ctx,
		&sdk.StreamableClientTransport{Endpoint: f.front.URL + "/mcp", HTTPClient: &http.Client{Transport: headerTransport{"Authorization", "Bearer " + aliceSecret}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer via.Close()
	args := map[string]any{"text": "hello"}
	for _, c := range []struct {
		name string
		cs   *sdk.ClientSession
		tool string
	}{{"direct", direct, "echo"}, {"gateway", via, "gh__echo"}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.cs.CallTool(ctx, &sdk.CallToolParams{Name: c.tool, Arguments: args}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
