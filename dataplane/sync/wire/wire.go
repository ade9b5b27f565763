// Package wire defines the messages of the control-plane -> data-plane push
// channel (docs/push-channel.md). It is shared by the server
// (controllers/push) and the client (dataplane/sync) and imports nothing from
// Kubernetes, so the data plane stays buildable and testable without it.
//
// A replica POSTs to StreamPath with a request body that stays open (its acks
// and heartbeats) and reads the response body (tables and heartbeats) until
// either side goes away: one full-duplex HTTP request per replica.
package wire

import (
	"math"
	"slices"
	"time"
	"unicode/utf8"

	json "github.com/go-json-experiment/json/v1"
)

// StreamPath is the one endpoint of the channel.
const StreamPath = "/push/v1/stream"

// ReplicaParam is the query parameter that names the replica.
const ReplicaParam = "replica"

// ContentType is the media type of both directions: newline-delimited JSON,
// one Message per line.
const ContentType = "application/x-ndjson"

// DefaultHeartbeat is the heartbeat interval a client assumes until the
// server's hello names one.
const DefaultHeartbeat = 10 * time.Second

// Message types.
const (
	// TypeHello is the server's first message: it tells the replica the
	// heartbeat interval, so both sides agree when a silent peer is dead.
	TypeHello = "hello"
	// TypeTable carries a whole routing table (server -> replica).
	TypeTable = "table"
	// TypeHeartbeat proves the peer is alive (both directions). From a
	// replica it also repeats the version it serves and carries its Report.
	TypeHeartbeat = "heartbeat"
	// TypeAck says the replica applied Version and serves it now.
	TypeAck = "ack"
	// TypeNack says the replica rejected Version (Error says why) and keeps
	// serving its previous table.
	TypeNack = "nack"
)

// Message is one line of the stream, in either direction.
type Message struct {
	Type string `json:"type"`
	// Version is the table version a table, ack, nack or replica heartbeat
	// refers to.
	Version string `json:"version,omitempty"`
	// Table is the encoded routetable.Table of a TypeTable message. It is
	// decoded with routetable.Decode, which also checks Version.
	Table json.RawMessage `json:"table,omitempty"`
	// HeartbeatMillis is the interval, in hello, at which both sides send
	// heartbeats.
	HeartbeatMillis int64 `json:"heartbeatMillis,omitempty"`
	// Error is the reason of a nack. It must never contain table contents.
	Error string `json:"error,omitempty"`
	// Report, on a replica heartbeat, is what the replica observes of its
	// upstreams (nil from replicas that have nothing to report).
	Report *Report `json:"report,omitempty"`
}

// Report is what a replica observes of its upstreams: live health per LLM
// target and the state of every MCP server. Replicas attach it to every
// heartbeat (and send a heartbeat at once when it changes meaningfully, see
// SameHealth); the controller aggregates the reports of all replicas into
// LLMProvider and MCPTool status. Bound keeps it small.
type Report struct {
	Targets    []TargetReport `json:"targets,omitempty"`
	MCPServers []MCPReport    `json:"mcpServers,omitempty"`
	// Truncated is set when Bound had to leave something out.
	Truncated bool `json:"truncated,omitempty"`
}

// TargetReport is the health of one (provider, model) target on one replica.
type TargetReport struct {
	// Provider is routetable.Provider.ID ("namespace/name").
	Provider string `json:"provider"`
	Model    string `json:"model"`
	Ejected  bool   `json:"ejected,omitempty"`
	// ErrorRate is the EWMA failure ratio (0..1), rounded to 3 decimals.
	ErrorRate float64 `json:"errorRate"`
	// LatencyMillis is the EWMA time to first byte (0 = no success yet).
	LatencyMillis int64 `json:"latencyMillis,omitempty"`
	// Attempts counts the attempts seen so far; 0 means no traffic.
	Attempts uint64 `json:"attempts,omitempty"`
}

// MCPReport is the state of one MCP server on one replica.
type MCPReport struct {
	// ID is routetable.MCPServer.ID ("namespace/name").
	ID      string `json:"id"`
	Healthy bool   `json:"healthy,omitempty"`
	Message string `json:"message,omitempty"`
	// Tools are the exposed tools (after allow/deny), sorted by name.
	Tools []Tool `json:"tools,omitempty"`
	// CheckedAt is when the server was last checked; nil before the first
	// check finished.
	CheckedAt *time.Time `json:"checkedAt,omitempty"`
}

// Tool is one exposed MCP tool.
type Tool struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// Limits of a Report after Bound. Together they keep a heartbeat well under
// MaxReplicaMessage (a 64 KiB description budget per server, at most 256 KiB
// in total).
const (
	MaxReportTargets    = 512
	MaxReportMCPServers = 128
	MaxReportTools      = 256
	MaxReportText       = 256 // bytes of one message or description
	// MaxReportBytes is the budget of a whole encoded report.
	MaxReportBytes = 256 << 10
	// MaxReplicaMessage bounds one line from a replica (the server's read
	// buffer): a heartbeat with a full report, with room to spare.
	MaxReplicaMessage = 512 << 10
)

// Bound cuts r down to the limits above, in place, and returns it:
// long texts are shortened, lists capped, and if the encoding is still over
// MaxReportBytes, tool descriptions and then tools are dropped. Truncated
// records that anything was left out.
func (r *Report) Bound() *Report {
	if r == nil {
		return nil
	}
	if len(r.Targets) > MaxReportTargets {
		r.Targets, r.Truncated = r.Targets[:MaxReportTargets], true
	}
	if len(r.MCPServers) > MaxReportMCPServers {
		r.MCPServers, r.Truncated = r.MCPServers[:MaxReportMCPServers], true
	}
	for i := range r.MCPServers {
		s := &r.MCPServers[i]
		s.Message = clip(s.Message, MaxReportText)
		if len(s.Tools) > MaxReportTools {
			s.Tools, r.Truncated = s.Tools[:MaxReportTools], true
		}
		for j := range s.Tools {
			s.Tools[j].Description = clip(s.Tools[j].Description, MaxReportText)
		}
	}
	if size(r) <= MaxReportBytes {
		return r
	}
	r.Truncated = true
	for i := range r.MCPServers {
		for j := range r.MCPServers[i].Tools {
			r.MCPServers[i].Tools[j].Description = ""
		}
	}
	for size(r) > MaxReportBytes {
		// Halve the longest tool list until it fits; names are at most a
		// few hundred bytes, so this ends quickly.
		longest := -1
		for i := range r.MCPServers {
			if longest < 0 || len(r.MCPServers[i].Tools) > len(r.MCPServers[longest].Tools) {
				longest = i
			}
		}
		if longest < 0 || len(r.MCPServers[longest].Tools) == 0 {
			break
		}
		r.MCPServers[longest].Tools = r.MCPServers[longest].Tools[:len(r.MCPServers[longest].Tools)/2]
	}
	return r
}

func size(r *Report) int {
	b, _ := json.Marshal(r)
	return len(b)
}

// clip shortens s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	// Drop a rune the cut split (at most UTFMax-1 bytes of it).
	for i := 1; i < utf8.UTFMax && len(s) > 0; i++ {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

// SameHealth reports whether two reports say the same thing at the
// resolution status shows and acts on: the same targets, each with the same
// ejection, error rate within the same 5 % band and latency within the same
// band of a factor of about 1.4; the same MCP servers with the same health,
// message and tools. Check times are ignored. Replicas send a report early,
// and the controller re-evaluates status, only when this is false, so
// latency jitter causes neither traffic nor status writes.
func SameHealth(a, b *Report) bool {
	if a == nil || b == nil {
		return a == b
	}
	if len(a.Targets) != len(b.Targets) || len(a.MCPServers) != len(b.MCPServers) || a.Truncated != b.Truncated {
		return false
	}
	tb := make(map[[2]string]*TargetReport, len(b.Targets))
	for i := range b.Targets {
		t := &b.Targets[i]
		tb[[2]string{t.Provider, t.Model}] = t
	}
	for i := range a.Targets {
		x := &a.Targets[i]
		y := tb[[2]string{x.Provider, x.Model}]
		if y == nil || x.Ejected != y.Ejected || (x.Attempts == 0) != (y.Attempts == 0) ||
			errorBand(x.ErrorRate) != errorBand(y.ErrorRate) || latencyBand(x.LatencyMillis) != latencyBand(y.LatencyMillis) {
			return false
		}
	}
	mb := make(map[string]*MCPReport, len(b.MCPServers))
	for i := range b.MCPServers {
		mb[b.MCPServers[i].ID] = &b.MCPServers[i]
	}
	for i := range a.MCPServers {
		x := &a.MCPServers[i]
		y := mb[x.ID]
		if y == nil || x.Healthy != y.Healthy || x.Message != y.Message || (x.CheckedAt == nil) != (y.CheckedAt == nil) ||
			!slices.Equal(x.Tools, y.Tools) {
			return false
		}
	}
	return true
}

func errorBand(r float64) int { return int(math.Floor(r * 20)) }

func latencyBand(ms int64) int {
	if ms <= 0 {
		return -1
	}
	return int(math.Floor(2 * math.Log2(float64(ms))))
}
