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
	"encoding/json"
	"time"
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
	// replica it also repeats the version it serves.
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
}
