package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"tollgate.dev/tollgate/test/bench/upstream"
)

// benchKey is the virtual key the load generator presents.
const benchKey = "tg-bench-0123456789abcdefghijklmnopqrstuvwxyzABCDEF"

// The public model names the harness routes; each maps to one upstream
// provider (dialect and stream profile).
const (
	modelOpenAI    = "bench-openai"
	modelAnthropic = "bench-anthropic"
	modelStream    = "bench-stream"
	modelHold      = "bench-hold"
)

// Stream profiles: the 50-chunk TTFB scenario paces events so buffering
// would show, and the open-streams scenario keeps each stream open for
// several seconds.
var (
	streamProfile = upstream.Profile{Chunks: 50, Interval: 10 * time.Millisecond}
	holdProfile   = upstream.Profile{Chunks: 50, Interval: 150 * time.Millisecond}
)

// writeManifests writes the file-mode manifests (the same YAML users apply)
// for a gateway in front of the upstream at upURL.
func writeManifests(dir, upURL string) error {
	type prov struct{ name, typ, endpoint, model string }
	provs := []prov{
		{"openai-fast", "OpenAI", upURL, "gpt-bench"},
		{"anthropic-fast", "Anthropic", upURL, "claude-bench"},
		{"openai-stream", "OpenAI", upURL + streamProfile.PathPrefix(), "gpt-bench"},
		{"openai-hold", "OpenAI", upURL + holdProfile.PathPrefix(), "gpt-bench"},
	}
	routes := map[string]string{modelOpenAI: "openai-fast", modelAnthropic: "anthropic-fast", modelStream: "openai-stream", modelHold: "openai-hold"}
	var y string
	for _, p := range provs {
		y += fmt.Sprintf(`---
apiVersion: gateway.tollgate.dev/v1alpha1
kind: LLMProvider
metadata:
  name: %[1]s
spec:
  type: %[2]s
  endpoint: %[3]s
  locality: External
  credentials:
    apiKey:
      name: %[1]s-credentials
      key: api-key
  defaults:
    maxTokens: 1024
  currency: USD
  models:
    - name: %[4]s
      inputPrice: "1.00"
      outputPrice: "4.00"
---
apiVersion: v1
kind: Secret
metadata:
  name: %[1]s-credentials
stringData:
  api-key: sk-bench-upstream-%[1]s
`, p.name, p.typ, p.endpoint, p.model)
	}
	for _, m := range []string{modelOpenAI, modelAnthropic, modelStream, modelHold} {
		p := routes[m]
		model := "gpt-bench"
		if p == "anthropic-fast" {
			model = "claude-bench"
		}
		y += fmt.Sprintf(`---
apiVersion: gateway.tollgate.dev/v1alpha1
kind: Route
metadata:
  name: %s
spec:
  model: %s
  targets:
    - provider: %s
      model: %s
`, m, m, p, model)
	}
	y += fmt.Sprintf(`---
apiVersion: gateway.tollgate.dev/v1alpha1
kind: VirtualKey
metadata:
  name: bench
spec:
  team: bench
---
apiVersion: v1
kind: Secret
metadata:
  name: bench-key
stringData:
  key: %s
`, benchKey)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "bench.yaml"), []byte(y), 0o644)
}
