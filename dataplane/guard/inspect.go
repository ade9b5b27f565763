package guard

import (
	"tollgate.dev/tollgate/dataplane/routetable"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/server"
)

var _ server.Guard = (*Guard)(nil)

// Inspect implements server.Guard on top of Evaluate.
func (g *Guard) Inspect(req *openai.ChatRequest, route *routetable.Route, key *routetable.Key) (server.GuardVerdict, *openai.APIError) {
	r, aerr := g.Evaluate(req, route, key)
	return server.GuardVerdict{SovereignOnly: r.SovereignOnly, Findings: r.Findings, Restore: r.Restore, Flush: r.Flush}, aerr
}

var _ server.TextGuard = (*Guard)(nil)

// InspectTexts implements server.TextGuard on top of EvaluateTexts.
func (g *Guard) InspectTexts(texts []string, route *routetable.Route, key *routetable.Key) (server.GuardVerdict, *openai.APIError) {
	r, aerr := g.EvaluateTexts(texts, route, key)
	return server.GuardVerdict{SovereignOnly: r.SovereignOnly, Findings: r.Findings}, aerr
}
