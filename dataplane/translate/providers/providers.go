// Package providers maps provider types to their translators. It is the
// only place that knows every backend, so the proxy depends on the
// translate contract alone.
package providers

import (
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/translate"
	"tollgate.dev/tollgate/dataplane/translate/anthropic"
	"tollgate.dev/tollgate/dataplane/translate/bedrock"
	"tollgate.dev/tollgate/dataplane/translate/gemini"
	"tollgate.dev/tollgate/dataplane/translate/ollama"
	"tollgate.dev/tollgate/dataplane/translate/openai"
)

var registry = map[routetable.ProviderType]translate.Translator{
	routetable.ProviderOpenAI:           openai.NewOpenAI(),
	routetable.ProviderAzureOpenAI:      openai.NewAzure(),
	routetable.ProviderOpenAICompatible: openai.NewCompatible(),
	routetable.ProviderAnthropic:        anthropic.New(),
	routetable.ProviderGemini:           gemini.New(),
	routetable.ProviderOllama:           ollama.New(),
	routetable.ProviderBedrock:          bedrock.New(),
}

// For returns the translator for provider type t.
func For(t routetable.ProviderType) (translate.Translator, bool) {
	tr, ok := registry[t]
	return tr, ok
}
