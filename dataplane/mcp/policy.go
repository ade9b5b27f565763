package mcp

import (
	"path"
	"slices"
	"strings"

	"tollgate.dev/tollgate/dataplane/routetable"
)

// NameSeparator joins a server's prefix and an upstream tool name into the
// name a client sees ("github__create_issue"). Two underscores keep the
// result inside the character set every MCP client and LLM API accepts.
const NameSeparator = "__"

// ExposedName is the name under which upstream tool of server s is offered.
func ExposedName(s *routetable.MCPServer, tool string) string {
	return s.Prefix + NameSeparator + tool
}

// ToolAllowed applies a server's Allow and Deny globs (path.Match syntax) to
// an upstream tool name. Deny wins; an empty Allow list allows every tool. A
// malformed pattern fails closed: a bad Allow glob matches nothing and a bad
// Deny glob denies everything, so a typo can hide tools but never expose
// them.
func ToolAllowed(s *routetable.MCPServer, tool string) bool {
	for _, p := range s.Deny {
		if ok, err := path.Match(p, tool); ok || err != nil {
			return false
		}
	}
	if len(s.Allow) == 0 {
		return true
	}
	for _, p := range s.Allow {
		if ok, err := path.Match(p, tool); ok && err == nil {
			return true
		}
	}
	return false
}

// serverIndex answers "which MCP servers may this key use" for one table. It
// is built once per table and then only read.
type serverIndex struct {
	table *routetable.Table
	// byKey maps a VirtualKey ID to the servers listing it, sorted by
	// server ID so every replica resolves name collisions the same way.
	byKey map[string][]*routetable.MCPServer
	byID  map[string]*routetable.MCPServer
}

func newServerIndex(t *routetable.Table) *serverIndex {
	ix := &serverIndex{
		table: t,
		byKey: map[string][]*routetable.MCPServer{},
		byID:  make(map[string]*routetable.MCPServer, len(t.MCPServers)),
	}
	for i := range t.MCPServers {
		s := &t.MCPServers[i]
		ix.byID[s.ID] = s
		seen := map[string]bool{}
		for _, k := range s.Keys {
			if seen[k] {
				continue
			}
			seen[k] = true
			ix.byKey[k] = append(ix.byKey[k], s)
		}
	}
	for _, ss := range ix.byKey {
		slices.SortFunc(ss, func(a, b *routetable.MCPServer) int { return strings.Compare(a.ID, b.ID) })
	}
	return ix
}

// serversFor lists the servers key may use, sorted by ID.
func (ix *serverIndex) serversFor(keyID string) []*routetable.MCPServer {
	return ix.byKey[keyID]
}

// candidate is one way to read an exposed tool name.
type candidate struct {
	server   *routetable.MCPServer
	upstream string
}

// resolve returns the servers (in ID order) whose prefix could have produced
// name for this key and whose filters allow the remaining upstream name.
// More than one candidate exists only when prefixes overlap ("a" and
// "a__b"); the caller then decides by what the servers actually offer.
func (ix *serverIndex) resolve(keyID, name string) []candidate {
	var out []candidate
	for _, s := range ix.byKey[keyID] {
		rest, ok := cutPrefix(s, name)
		if !ok {
			continue
		}
		if ToolAllowed(s, rest) {
			out = append(out, candidate{server: s, upstream: rest})
		}
	}
	return out
}

// cutPrefix splits an exposed name into s's upstream tool name.
func cutPrefix(s *routetable.MCPServer, name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, s.Prefix+NameSeparator)
	return rest, ok && rest != ""
}
