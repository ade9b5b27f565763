package dataplane

import (
	"testing"
	"time"

	"tollgate.dev/tollgate/dataplane/mcp"
	"tollgate.dev/tollgate/dataplane/router"
	"tollgate.dev/tollgate/dataplane/routetable"
)

func TestReplicaReport(t *testing.T) {
	tbl := &routetable.Table{Providers: []routetable.Provider{{ID: "ns/b"}, {ID: "ns/a"}}}
	checked := time.Date(2026, 1, 2, 3, 4, 5, 6789012, time.UTC)
	r := replicaReport(tbl, []router.TargetStatus{
		{Key: router.TargetKey{Provider: "ns/b", Model: "m"}, Ejected: true, ErrorRate: 0.67232, LatencyMS: 0, Attempts: 5},
		{Key: router.TargetKey{Provider: "ns/gone", Model: "m"}, Attempts: 1},
		{Key: router.TargetKey{Provider: "ns/a", Model: "z"}, ErrorRate: 0.0001, LatencyMS: 123.6, Attempts: 9},
	}, []mcp.ServerStatus{
		{ID: "ns/t", Healthy: true, Message: "1 tools discovered, 1 exposed", CheckedAt: checked, Tools: []mcp.ToolInfo{{Name: "t__x", Description: "X"}}},
		{ID: "ns/u", Message: "not checked yet"},
	})
	if len(r.Targets) != 2 || r.Targets[0].Provider != "ns/a" || r.Targets[0].LatencyMillis != 124 || r.Targets[0].ErrorRate != 0 ||
		r.Targets[1].ErrorRate != 0.672 || !r.Targets[1].Ejected {
		t.Errorf("targets = %+v", r.Targets)
	}
	if len(r.MCPServers) != 2 || r.MCPServers[0].CheckedAt == nil || !r.MCPServers[0].CheckedAt.Equal(checked.Truncate(time.Millisecond)) ||
		len(r.MCPServers[0].Tools) != 1 || r.MCPServers[1].CheckedAt != nil {
		t.Errorf("mcp = %+v", r.MCPServers)
	}
}
