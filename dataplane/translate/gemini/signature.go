package gemini

import (
	"encoding/base64"
	"strings"

	"tollgate.dev/tollgate/dataplane/translate"
)

// Thought signatures travel inside tool call ids. Gemini 3 rejects a
// function-call turn whose first call lacks the thoughtSignature it was
// returned with, and OpenAI clients echo back only a tool call's id, name
// and arguments. The gateway generates the ids, which clients treat as
// opaque and return verbatim on the assistant message and on each tool
// message, so a signature appended to the id comes back losslessly,
// exactly on the call it was returned on (only the first of parallel calls
// carries one). The form is
//
//	<id>__ts<v><signature in unpadded base64url>
//
// where <v> is "1" when the signature is canonical standard base64 (as
// Gemini sends it; the decoded bytes are encoded, so the id grows by only
// about the signature's own length) and "0" for any other string (its raw
// bytes are encoded). Ids keep to [A-Za-z0-9_-], which every provider's
// tool-call id pattern accepts. An id is at most
// len(<id>) + 5 + 4*ceil(MaxSignatureInID/3) characters; a longer
// signature is not embedded and only reaches the client as
// reasoning_signature (the first signature of the message), with
// SkipSignatureValidator as the fallback when a client drops it.
const (
	signatureMarker = translate.ToolCallStateMarker
	// MaxSignatureInID bounds the signature length (in characters, as
	// Gemini sends it) that is carried in a tool call id.
	MaxSignatureInID = 16 << 10
)

// withSignature returns id with sig appended; id itself when there is no
// signature, the signature is too long, or id already contains the marker
// (it could not be split back unambiguously).
func withSignature(id, sig string) string {
	if sig == "" || len(sig) > MaxSignatureInID || strings.Contains(id, signatureMarker) {
		return id
	}
	if b, err := base64.StdEncoding.DecodeString(sig); err == nil && base64.StdEncoding.EncodeToString(b) == sig {
		return id + signatureMarker + "1" + base64.RawURLEncoding.EncodeToString(b)
	}
	return id + signatureMarker + "0" + base64.RawURLEncoding.EncodeToString([]byte(sig))
}

// splitSignature returns the id the gateway (or Gemini) generated and the
// thought signature carried in a tool call id, or "" when it carries none
// or the suffix does not decode (a client-made id that merely contains the
// marker is then used as is).
func splitSignature(id string) (base, sig string) {
	i := strings.Index(id, signatureMarker)
	if i < 0 || len(id) < i+len(signatureMarker)+1 {
		return id, ""
	}
	enc := id[i+len(signatureMarker)+1:]
	b, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil || len(b) == 0 {
		return id, ""
	}
	switch id[i+len(signatureMarker)] {
	case '1':
		return id[:i], base64.StdEncoding.EncodeToString(b)
	case '0':
		return id[:i], string(b)
	}
	return id, ""
}

// ToolCallIDBase returns a tool call id without the thought signature the
// Gemini translator may have appended to it. The other translators cut ids
// the same way with translate.WithoutCarriedState when a conversation
// started on Gemini continues elsewhere (a fallback in a tool loop).
func ToolCallIDBase(id string) string {
	base, _ := splitSignature(id)
	return base
}
