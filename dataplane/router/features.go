// Package router decides, per request, which upstream targets to try and in
// which order: intent rules, weighted and health-aware balancing among a
// route's targets, then the ordered fallbacks. It keeps live per-target
// health (EWMA latency and error rate, outlier ejection) fed back by the
// proxy after every attempt.
package router

import (
	"net/http"
	"strings"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
)

// Features are the request properties intent rules match on. They are
// computed once per request, cheaply (no tokenizer: ~4 bytes per token).
type Features struct {
	PromptTokens int
	HasTools     bool
	HasImages    bool
	HasCode      bool
	Reasoning    bool
	Turns        int
	Header       http.Header
	KeyLabels    map[string]string
}

// ExtractFeatures computes Features of a canonical request. The code scan
// is the one feature whose cost grows with the prompt, so it runs only when
// withCode is set (NeedsCode of the route); HasCode is false otherwise.
func ExtractFeatures(req *openai.ChatRequest, h http.Header, key *routetable.Key, withCode bool) Features {
	f := Features{
		HasTools:  len(req.Tools) > 0,
		Reasoning: req.ReasoningEffort != "" && req.ReasoningEffort != "none" && req.ReasoningEffort != "minimal",
		Turns:     len(req.Messages),
		Header:    h,
	}
	if key != nil {
		f.KeyLabels = key.Labels
	}
	chars := 0
	for i := range req.Messages {
		m := &req.Messages[i]
		switch m.Content.Kind {
		case openai.ContentString:
			chars += len(m.Content.Text)
			f.HasCode = f.HasCode || withCode && looksLikeCode(m.Content.Text)
		case openai.ContentParts:
			for _, p := range m.Content.Parts {
				switch p.Type {
				case openai.PartText:
					chars += len(p.Text)
					f.HasCode = f.HasCode || withCode && looksLikeCode(p.Text)
				case openai.PartImageURL:
					f.HasImages = true
					chars += 85 * 4 // a low-detail image costs ~85 tokens
				}
			}
		}
		for _, tc := range m.ToolCalls {
			chars += len(tc.Function.Name) + len(tc.Function.Arguments)
		}
	}
	for _, t := range req.Tools {
		chars += len(t.Function.Name) + len(t.Function.Description) + len(t.Function.Parameters)
	}
	f.PromptTokens = (chars + 3) / 4
	return f
}

// NeedsCode reports whether an intent rule of r matches on hasCode.
func NeedsCode(r *routetable.Route) bool {
	for i := range r.Rules {
		if r.Rules[i].Match.HasCode != nil {
			return true
		}
	}
	return false
}

// codeMarkers are substrings that rarely occur in prose but often in code.
var codeMarkers = []string{"```", "func ", "def ", "class ", "#include", "import ", "public static", "=> {", "){", ");\n", "SELECT ", "<?php", "console.log", "fn main"}

func looksLikeCode(s string) bool {
	for _, m := range codeMarkers {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// Matches reports whether the features satisfy every set field of m.
func (f *Features) Matches(m *routetable.IntentMatch) bool {
	if m.MinPromptTokens != nil && f.PromptTokens < *m.MinPromptTokens {
		return false
	}
	if m.MaxPromptTokens != nil && f.PromptTokens > *m.MaxPromptTokens {
		return false
	}
	if m.HasTools != nil && f.HasTools != *m.HasTools {
		return false
	}
	if m.HasImages != nil && f.HasImages != *m.HasImages {
		return false
	}
	if m.HasCode != nil && f.HasCode != *m.HasCode {
		return false
	}
	if m.Reasoning != nil && f.Reasoning != *m.Reasoning {
		return false
	}
	if m.MinTurns != nil && f.Turns < *m.MinTurns {
		return false
	}
	if m.MaxTurns != nil && f.Turns > *m.MaxTurns {
		return false
	}
	for k, v := range m.Headers {
		if f.Header.Get(k) != v {
			return false
		}
	}
	for k, v := range m.KeyLabels {
		if got, ok := f.KeyLabels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
