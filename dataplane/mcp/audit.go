package mcp

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// AuditRecord is one line of the audit trail: one tools/call, refused or
// not. It never holds a virtual key or an upstream credential.
type AuditRecord struct {
	Time      time.Time `json:"time"`
	Namespace string    `json:"namespace"`
	Key       string    `json:"key"`
	Team      string    `json:"team,omitempty"`
	// Session is the client's MCP session ID.
	Session string `json:"session,omitempty"`
	// Server is the MCPServer ID; empty when the call was refused before a
	// server was chosen.
	Server string `json:"server,omitempty"`
	// Tool is the name the client called; UpstreamTool the name the server
	// knows.
	Tool          string  `json:"tool"`
	UpstreamTool  string  `json:"upstream_tool,omitempty"`
	DurationMS    float64 `json:"duration_ms"`
	Outcome       string  `json:"outcome"`
	ArgumentBytes int     `json:"argument_bytes"`
	// Arguments are recorded only when the MCPServer opts in, with
	// sensitive values redacted.
	Arguments json.RawMessage `json:"arguments,omitempty"`
	Error     string          `json:"error,omitempty"`
}

// maxAuditedName bounds names a client chose, so a refused call with a huge
// made-up tool name cannot bloat the trail.
const maxAuditedName = 256

func truncateName(s string) string {
	if len(s) > maxAuditedName {
		return s[:maxAuditedName] + "..."
	}
	return s
}

// auditor serialises records into one JSON line each. Lines from concurrent
// calls never interleave.
type auditor struct {
	mu sync.Mutex
	w  io.Writer
}

func (a *auditor) write(rec *AuditRecord, log logr.Logger) {
	rec.Tool = truncateName(rec.Tool)
	rec.UpstreamTool = truncateName(rec.UpstreamTool)
	b, err := json.Marshal(rec)
	if err != nil {
		log.Error(err, "Encoding MCP audit record failed")
		return
	}
	b = append(b, '\n')
	a.mu.Lock()
	_, err = a.w.Write(b)
	a.mu.Unlock()
	if err != nil {
		log.Error(err, "Writing MCP audit record failed")
	}
}

// sensitiveNames are argument names (lowercased, without '-', '_' and '.')
// whose values are never audited, wherever they sit in the arguments.
var sensitiveNames = []string{
	"password", "passwd", "passphrase", "secret", "token", "apikey", "authorization",
	"auth", "credential", "privatekey", "cookie", "bearer", "accesskey", "sessionkey",
}

func sensitiveName(k string) bool {
	k = strings.ToLower(k)
	k = strings.NewReplacer("-", "", "_", "", ".", "", " ", "").Replace(k)
	for _, s := range sensitiveNames {
		if k == s || (len(s) > 4 && strings.Contains(k, s)) {
			return true
		}
	}
	return false
}

// redactArguments returns the arguments with the values of sensitive names
// replaced and the server's credential scrubbed from every string. Arguments
// that are not JSON are not audited at all: there is no safe way to redact
// them.
func redactArguments(raw json.RawMessage, sc scrubber) json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return json.RawMessage(`"[UNPARSEABLE]"`)
	}
	v = redactValue(v, sc)
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage(`"[UNPARSEABLE]"`)
	}
	return b
}

func redactValue(v any, sc scrubber) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if sensitiveName(k) {
				x[k] = redacted
				continue
			}
			x[k] = redactValue(e, sc)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = redactValue(e, sc)
		}
		return x
	case string:
		s := sc.String(x)
		if looksLikeCredential(s) {
			return redacted
		}
		return s
	default:
		return v
	}
}

// looksLikeCredential catches secrets passed under innocent names: an
// Authorization-style value or a well-known key format.
func looksLikeCredential(s string) bool {
	l := strings.ToLower(s)
	if strings.HasPrefix(l, "bearer ") || strings.HasPrefix(l, "basic ") {
		return true
	}
	for _, p := range []string{"sk-", "ghp_", "github_pat_", "xoxb-", "xoxp-", "akia", "glpat-"} {
		if strings.HasPrefix(l, p) && len(s) >= 16 && !strings.ContainsAny(s, " \n") {
			return true
		}
	}
	return strings.Contains(s, "-----BEGIN") && strings.Contains(s, "PRIVATE KEY")
}
