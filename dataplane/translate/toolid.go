package translate

import (
	"strings"

	"tollgate.dev/tollgate/dataplane/schema/openai"
)

// ToolCallStateMarker separates, in a tool call id the gateway generated,
// the id proper from provider state carried along with it for the client
// to echo back: "<id>__ts<v><base64url>" (Gemini thought signatures, see
// translate/gemini). Ids are opaque to clients, so this is lossless.
const ToolCallStateMarker = "__ts"

// WithoutCarriedState returns req with every tool call id (on assistant
// tool calls and on tool messages alike, so pairs still match) cut back to
// the id proper. Providers other than the one that carried the state need
// it when a conversation moves to them (a fallback in the middle of a tool
// loop): OpenAI accepts tool call ids of at most 40 characters and Bedrock
// at most 64. req itself is returned, uncopied, when no id carries state.
func WithoutCarriedState(req *openai.ChatRequest) *openai.ChatRequest {
	carries := false
	for i := range req.Messages {
		m := &req.Messages[i]
		if _, ok := idProper(m.ToolCallID); ok {
			carries = true
		}
		for j := range m.ToolCalls {
			if _, ok := idProper(m.ToolCalls[j].ID); ok {
				carries = true
			}
		}
	}
	if !carries {
		return req
	}
	out := *req
	out.Native = nil
	out.Messages = make([]openai.Message, len(req.Messages))
	copy(out.Messages, req.Messages)
	for i := range out.Messages {
		m := &out.Messages[i]
		if id, ok := idProper(m.ToolCallID); ok {
			m.ToolCallID = id
		}
		if len(m.ToolCalls) == 0 {
			continue
		}
		m.ToolCalls = append([]openai.ToolCall(nil), m.ToolCalls...)
		for j := range m.ToolCalls {
			if id, ok := idProper(m.ToolCalls[j].ID); ok {
				m.ToolCalls[j].ID = id
			}
		}
	}
	return &out
}

// idProper returns the part of id before carried state, when id has the
// carried-state form (marker, a version digit, then base64url).
func idProper(id string) (string, bool) {
	i := strings.Index(id, ToolCallStateMarker)
	if i <= 0 {
		return id, false
	}
	rest := id[i+len(ToolCallStateMarker):]
	if len(rest) < 2 || (rest[0] != '0' && rest[0] != '1') {
		return id, false
	}
	for _, c := range rest[1:] {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return id, false
		}
	}
	return id[:i], true
}
