package compiler

import (
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/dataplane/routetable"
)

// providerState is a compiled provider as routes see it.
type providerState struct {
	p routetable.Provider
	// served: the provider is in the table.
	served bool
	// why it is not served, for the message of routes that use it.
	why        string
	embeddings map[string]bool // model name -> embeddings flag, for listed models
}

// defaultBaseURLs are the public endpoints of the hosted providers.
var defaultBaseURLs = map[v1alpha1.ProviderType]string{
	v1alpha1.ProviderOpenAI:    "https://api.openai.com",
	v1alpha1.ProviderAnthropic: "https://api.anthropic.com",
	v1alpha1.ProviderGemini:    "https://generativelanguage.googleapis.com",
}

// providerTypes is the set of types the data plane translates to.
var providerTypes = []v1alpha1.ProviderType{
	v1alpha1.ProviderOpenAI, v1alpha1.ProviderAzureOpenAI, v1alpha1.ProviderAnthropic,
	v1alpha1.ProviderGemini, v1alpha1.ProviderBedrock, v1alpha1.ProviderOllama,
	v1alpha1.ProviderOpenAICompatible,
}

func (c *compilation) compileProviders() {
	for _, lp := range sortedPtrs(c.in.Providers, func(p *v1alpha1.LLMProvider) *metav1.ObjectMeta { return &p.ObjectMeta }) {
		var acc, refs problems
		p := c.provider(lp, &acc, &refs)
		st := &providerState{p: p, embeddings: map[string]bool{}}
		for _, m := range p.Models {
			st.embeddings[m.Name] = m.Embeddings
		}
		if acc.ok() && refs.ok() {
			st.served = true
			c.table.Providers = append(c.table.Providers, p)
		} else if !acc.ok() {
			st.why = acc.summary()
		} else {
			st.why = refs.summary()
		}
		c.providers[lp.Namespace+"/"+lp.Name] = st
		c.verdict(KindLLMProvider, &lp.ObjectMeta, &acc, &refs, st.served)
	}
}

func (c *compilation) provider(lp *v1alpha1.LLMProvider, acc, refs *problems) routetable.Provider {
	s := &lp.Spec
	p := routetable.Provider{
		ID:        lp.Namespace + "/" + lp.Name,
		Namespace: lp.Namespace,
		Name:      lp.Name,
		Type:      routetable.ProviderType(s.Type),
		Locality:  routetable.Locality(s.Locality),
		Currency:  s.Currency,
	}
	if !slices.Contains(providerTypes, s.Type) {
		acc.add(v1alpha1.ReasonUnsupported, "type %q is not supported (supported: OpenAI, AzureOpenAI, Anthropic, Gemini, Bedrock, Ollama, OpenAICompatible)", s.Type)
	}
	switch s.Locality {
	case "":
		p.Locality = routetable.LocalityExternal
	case v1alpha1.LocalityInCluster, v1alpha1.LocalityOnPrem, v1alpha1.LocalityExternal:
	default:
		acc.add(v1alpha1.ReasonInvalid, "locality %q is not one of InCluster, OnPrem, External", s.Locality)
	}
	if p.Currency == "" {
		p.Currency = "USD"
	} else if !currencyRE.MatchString(p.Currency) {
		acc.add(v1alpha1.ReasonInvalid, "currency %q must be a three-letter ISO 4217 code such as USD", p.Currency)
	}

	// Endpoint: required for self-hosted and Azure; defaulted otherwise.
	switch {
	case s.Endpoint != "":
		p.BaseURL = checkEndpoint(s.Endpoint, "endpoint", s.AllowLinkLocal, acc)
	case s.Type == v1alpha1.ProviderAzureOpenAI || s.Type == v1alpha1.ProviderOllama || s.Type == v1alpha1.ProviderOpenAICompatible:
		acc.add(v1alpha1.ReasonInvalid, "endpoint is required for %s providers", s.Type)
	case s.Type == v1alpha1.ProviderBedrock:
		if s.Bedrock != nil && regionRE.MatchString(s.Bedrock.Region) {
			p.BaseURL = "https://bedrock-runtime." + s.Bedrock.Region + ".amazonaws.com"
		}
	default:
		p.BaseURL = defaultBaseURLs[s.Type]
	}

	// Dialect-specific settings.
	if s.Type == v1alpha1.ProviderAzureOpenAI {
		switch {
		case s.Azure == nil || s.Azure.APIVersion == "":
			acc.add(v1alpha1.ReasonInvalid, "azure.apiVersion is required for AzureOpenAI providers, e.g. \"2024-10-21\"")
		case !azureAPIVerRE.MatchString(s.Azure.APIVersion):
			acc.add(v1alpha1.ReasonInvalid, "azure.apiVersion %q must look like \"2024-10-21\" or \"2025-04-01-preview\"", s.Azure.APIVersion)
		default:
			p.APIVersion = s.Azure.APIVersion
		}
	} else if s.Azure != nil {
		acc.add(v1alpha1.ReasonInvalid, "azure is only valid for AzureOpenAI providers")
	}
	if s.Type == v1alpha1.ProviderBedrock {
		switch {
		case s.Bedrock == nil || s.Bedrock.Region == "":
			acc.add(v1alpha1.ReasonInvalid, "bedrock.region is required for Bedrock providers, e.g. \"eu-central-1\"")
		case !regionRE.MatchString(s.Bedrock.Region):
			acc.add(v1alpha1.ReasonInvalid, "bedrock.region %q is not an AWS region such as \"eu-central-1\"", s.Bedrock.Region)
		default:
			p.Region = s.Bedrock.Region
		}
	} else if s.Bedrock != nil {
		acc.add(v1alpha1.ReasonInvalid, "bedrock is only valid for Bedrock providers")
	}

	c.providerCredentials(lp, &p, acc, refs)

	// Static headers.
	for name, value := range s.Headers {
		switch {
		case !tokenRE.MatchString(name):
			acc.add(v1alpha1.ReasonInvalid, "headers: %q is not a valid header name", name)
		case slices.Contains(forbiddenProviderHeaders, strings.ToLower(name)):
			acc.add(v1alpha1.ReasonInvalid, "headers: %q cannot be set here; credentials belong in spec.credentials (a Secret) and framing headers are set by the gateway", name)
		case strings.ContainsAny(value, "\r\n\x00"):
			acc.add(v1alpha1.ReasonInvalid, "headers: the value of %q contains a line break or NUL", name)
		}
	}
	if len(s.Headers) > 0 {
		p.Headers = make(map[string]string, len(s.Headers))
		for k, v := range s.Headers {
			p.Headers[k] = v
		}
	}

	if d := s.Defaults; d != nil {
		if d.MaxTokens != nil && (*d.MaxTokens < 1 || *d.MaxTokens > 1000000) {
			acc.add(v1alpha1.ReasonInvalid, "defaults.maxTokens must be between 1 and 1000000")
		}
		p.DefaultMaxTokens = int32Ptr(d.MaxTokens)
		p.Timeout = duration(d.Timeout, "defaults.timeout", acc)
	}
	if hc := s.HealthCheck; hc != nil {
		p.HealthCheckInterval = duration(hc.Interval, "healthCheck.interval", acc)
	}

	seen := map[string]bool{}
	for i := range s.Models {
		m := &s.Models[i]
		field := "models[" + m.Name + "]"
		if m.Name == "" {
			acc.add(v1alpha1.ReasonInvalid, "models[%d]: name is required", i)
		}
		if seen[m.Name] {
			acc.add(v1alpha1.ReasonInvalid, "%s: the model is listed twice", field)
		}
		seen[m.Name] = true
		rm := routetable.Model{
			Name:            m.Name,
			InputPrice:      decimal(m.InputPrice, field+".inputPrice", acc),
			OutputPrice:     decimal(m.OutputPrice, field+".outputPrice", acc),
			CacheReadPrice:  decimal(m.CacheReadPrice, field+".cacheReadPrice", acc),
			CacheWritePrice: decimal(m.CacheWritePrice, field+".cacheWritePrice", acc),
			ReasoningPrice:  decimal(m.ReasoningPrice, field+".reasoningPrice", acc),
			MaxOutputTokens: int32Ptr(m.MaxOutputTokens),
			Embeddings:      m.Embeddings,
		}
		if m.MaxOutputTokens != nil && *m.MaxOutputTokens < 1 {
			acc.add(v1alpha1.ReasonInvalid, "%s.maxOutputTokens must be at least 1", field)
		}
		if m.CacheReadPrice != "" && m.InputPrice == "" {
			acc.add(v1alpha1.ReasonInvalid, "%s: cacheReadPrice needs inputPrice", field)
		}
		if m.Embeddings && s.Type == v1alpha1.ProviderAnthropic {
			acc.add(v1alpha1.ReasonUnsupported, "%s: Anthropic has no embeddings API; serve embeddings from another provider", field)
		}
		p.Models = append(p.Models, rm)
	}
	slices.SortFunc(p.Models, func(a, b routetable.Model) int { return strings.Compare(a.Name, b.Name) })
	return p
}

// providerCredentials resolves the credential Secrets a provider type needs.
func (c *compilation) providerCredentials(lp *v1alpha1.LLMProvider, p *routetable.Provider, acc, refs *problems) {
	s := &lp.Spec
	cr := s.Credentials
	needsKey := s.Type == v1alpha1.ProviderOpenAI || s.Type == v1alpha1.ProviderAzureOpenAI ||
		s.Type == v1alpha1.ProviderAnthropic || s.Type == v1alpha1.ProviderGemini
	if cr == nil {
		switch {
		case needsKey:
			acc.add(v1alpha1.ReasonInvalid, "credentials.apiKey is required for %s providers", s.Type)
		case s.Type == v1alpha1.ProviderBedrock:
			acc.add(v1alpha1.ReasonInvalid, "Bedrock needs credentials.apiKey or credentials.awsAccessKeyID and credentials.awsSecretAccessKey")
		}
		return
	}
	aws := cr.AWSAccessKeyID != nil || cr.AWSSecretAccessKey != nil || cr.AWSSessionToken != nil
	switch {
	case s.Type != v1alpha1.ProviderBedrock && aws:
		acc.add(v1alpha1.ReasonInvalid, "credentials.aws* are only valid for Bedrock providers")
	case s.Type != v1alpha1.ProviderBedrock && cr.APIKey == nil:
		acc.add(v1alpha1.ReasonInvalid, "credentials.apiKey is required")
	case s.Type == v1alpha1.ProviderBedrock && cr.APIKey == nil && (cr.AWSAccessKeyID == nil || cr.AWSSecretAccessKey == nil):
		acc.add(v1alpha1.ReasonInvalid, "Bedrock needs credentials.apiKey or both credentials.awsAccessKeyID and credentials.awsSecretAccessKey")
	}
	p.APIKey, _ = c.secretValue(lp.Namespace, cr.APIKey, "credentials.apiKey", refs)
	if s.Type == v1alpha1.ProviderBedrock {
		p.AWSAccessKeyID, _ = c.secretValue(lp.Namespace, cr.AWSAccessKeyID, "credentials.awsAccessKeyID", refs)
		p.AWSSecretAccessKey, _ = c.secretValue(lp.Namespace, cr.AWSSecretAccessKey, "credentials.awsSecretAccessKey", refs)
		p.AWSSessionToken, _ = c.secretValue(lp.Namespace, cr.AWSSessionToken, "credentials.awsSessionToken", refs)
	}
}
