package dataplane

import (
	"cmp"
	"math"
	"slices"
	"time"

	"tollgate.dev/tollgate/dataplane/mcp"
	"tollgate.dev/tollgate/dataplane/router"
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/sync/wire"
)

// replicaReport is what this replica tells the controller about its
// upstreams, for LLMProvider and MCPTool status: the live health of every
// target of a provider in the current table, and every MCP server's state.
// The sync client bounds it and decides when it is worth sending early.
func replicaReport(t *routetable.Table, health []router.TargetStatus, servers []mcp.ServerStatus) *wire.Report {
	r := &wire.Report{}
	if t != nil {
		inTable := make(map[string]bool, len(t.Providers))
		for i := range t.Providers {
			inTable[t.Providers[i].ID] = true
		}
		for _, s := range health {
			if !inTable[s.Key.Provider] {
				continue // a provider of an older table
			}
			r.Targets = append(r.Targets, wire.TargetReport{
				Provider:      s.Key.Provider,
				Model:         s.Key.Model,
				Ejected:       s.Ejected,
				ErrorRate:     math.Round(s.ErrorRate*1000) / 1000,
				LatencyMillis: int64(math.Round(s.LatencyMS)),
				Attempts:      s.Attempts,
			})
		}
	}
	slices.SortFunc(r.Targets, func(a, b wire.TargetReport) int {
		return cmp.Or(cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.Model, b.Model))
	})
	for _, s := range servers {
		m := wire.MCPReport{ID: s.ID, Healthy: s.Healthy, Message: s.Message}
		if !s.CheckedAt.IsZero() {
			at := s.CheckedAt.UTC().Truncate(time.Millisecond)
			m.CheckedAt = &at
		}
		for _, tool := range s.Tools {
			m.Tools = append(m.Tools, wire.Tool{Name: tool.Name, Description: tool.Description})
		}
		r.MCPServers = append(r.MCPServers, m)
	}
	return r
}
