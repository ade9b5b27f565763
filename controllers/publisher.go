package controllers

import (
	"strings"

	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/sync/wire"
)

// Publisher is what the reconciler needs from the push channel: hand it a
// new table, ask which data-plane replicas run which table, and be told when
// that changes. controllers/push implements it (through pushPublisher); tests
// use a fake.
type Publisher interface {
	// Publish makes t the table every connected replica receives. t is
	// finalized and never modified afterwards.
	Publish(t *routetable.Table)
	// Replicas reports every replica the channel knows about.
	Replicas() []Replica
	// Changes delivers a coalesced notification whenever a replica connects,
	// disconnects, acknowledges a table or its report changes meaningfully.
	Changes() <-chan struct{}
}

// Replica is one data-plane replica as the push channel sees it.
type Replica struct {
	ID        string
	Connected bool
	// Acked is the last table the replica acknowledged having applied, nil
	// before its first acknowledgement.
	Acked *routetable.Table
	// RejectedVersion and Error describe the last table the replica could
	// not apply (it keeps serving the previous one).
	RejectedVersion string
	Error           string
	// Report is the replica's latest view of its upstreams, nil before its
	// first report; health status aggregates it over connected replicas.
	Report *wire.Report
}

// programming counts, for one object generation, how many connected replicas
// acknowledged a table that contains it.
func programming(replicas []Replica, ref string, generation int64) (acked, total int) {
	for _, r := range replicas {
		if !r.Connected {
			continue
		}
		total++
		if r.Acked == nil {
			continue
		}
		if g, ok := r.Acked.Generations[ref]; ok && g == generation {
			acked++
		}
	}
	return acked, total
}

// maxRejectionMessage bounds how much of the replicas' errors goes into a
// condition message.
const maxRejectionMessage = 512

// rejections describes the connected replicas that rejected table version
// ("" when none did), for the Programmed message.
func rejections(replicas []Replica, version string) string {
	var parts []string
	for _, r := range replicas {
		if r.Connected && version != "" && r.RejectedVersion == version {
			parts = append(parts, r.ID+": "+r.Error)
		}
	}
	msg := strings.Join(parts, "; ")
	if len(msg) > maxRejectionMessage {
		msg = msg[:maxRejectionMessage] + "..."
	}
	return msg
}
