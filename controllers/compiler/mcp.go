package compiler

import (
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/dataplane/routetable"
)

func (c *compilation) compileMCPTools() {
	tools := sortedPtrs(c.in.MCPTools, func(t *v1alpha1.MCPTool) *metav1.ObjectMeta { return &t.ObjectMeta })

	// Tool name prefixes are claimed per namespace (a key only sees the
	// tools of its namespace) by the oldest MCPTool.
	owner := map[string]*v1alpha1.MCPTool{}
	byAge := slices.Clone(tools)
	slices.SortStableFunc(byAge, func(a, b *v1alpha1.MCPTool) int { return olderFirst(&a.ObjectMeta, &b.ObjectMeta) })
	for _, t := range byAge {
		k := t.Namespace + "/" + mcpPrefix(t)
		if _, taken := owner[k]; !taken {
			owner[k] = t
		}
	}

	// Keys per namespace, for selectors.
	keysByNS := map[string][]*v1alpha1.VirtualKey{}
	for _, ks := range c.keys {
		keysByNS[ks.vk.Namespace] = append(keysByNS[ks.vk.Namespace], ks.vk)
	}

	for _, t := range tools {
		var acc, refs problems
		prefix := mcpPrefix(t)
		if o := owner[t.Namespace+"/"+prefix]; o != t {
			acc.add(v1alpha1.ReasonConflict, "tool prefix %q is already used by MCPTool %q, which is older; set a different spec.prefix", prefix, o.Name)
		}
		srv := c.mcpServer(t, prefix, keysByNS[t.Namespace], &acc, &refs)
		// Unresolved access entries grant nothing, so they do not block the
		// server; an unresolved auth Secret does (calls would fail upstream).
		inTable := acc.ok() && !slices.ContainsFunc(refs.list, func(p problem) bool { return p.reason != ReasonKeyNotFound })
		if inTable {
			c.table.MCPServers = append(c.table.MCPServers, srv)
		}
		c.verdict(KindMCPTool, &t.ObjectMeta, &acc, &refs, inTable)
	}
}

func mcpPrefix(t *v1alpha1.MCPTool) string {
	if t.Spec.Prefix != "" {
		return t.Spec.Prefix
	}
	return t.Name
}

func (c *compilation) mcpServer(t *v1alpha1.MCPTool, prefix string, nsKeys []*v1alpha1.VirtualKey, acc, refs *problems) routetable.MCPServer {
	s := &t.Spec
	srv := routetable.MCPServer{
		ID:        t.Namespace + "/" + t.Name,
		Namespace: t.Namespace,
		Name:      t.Name,
		Transport: routetable.MCPTransport(s.Transport),
		Prefix:    prefix,
		AuditArgs: s.AuditArguments,
		Keys:      []string{},
	}
	srv.Endpoint = checkEndpoint(s.Endpoint, "endpoint", s.AllowLinkLocal, acc)
	switch s.Transport {
	case "":
		srv.Transport = routetable.MCPStreamableHTTP
	case v1alpha1.MCPStreamableHTTP, v1alpha1.MCPSSE:
	default:
		acc.add(v1alpha1.ReasonInvalid, "transport %q is not one of StreamableHTTP, SSE", s.Transport)
	}
	switch {
	case !prefixRE.MatchString(prefix) && s.Prefix == "":
		acc.add(v1alpha1.ReasonInvalid, "the name %q cannot be used as tool prefix (1 to 32 letters, digits, '_' or '-'); set spec.prefix", t.Name)
	case !prefixRE.MatchString(prefix):
		acc.add(v1alpha1.ReasonInvalid, "prefix %q must be 1 to 32 letters, digits, '_' or '-'", prefix)
	case strings.Contains(prefix, "__"):
		// "<prefix>__<tool>" is split at the first "__"; a prefix holding
		// one would make two servers' tool names collide.
		acc.add(v1alpha1.ReasonInvalid, "prefix %q must not contain \"__\", the separator between prefix and tool name", prefix)
	}
	if a := s.Auth; a != nil {
		switch a.Type {
		case "Bearer":
			srv.AuthHeader = "Authorization"
		case "Header":
			if !headerNameRE.MatchString(a.HeaderName) {
				acc.add(v1alpha1.ReasonInvalid, "auth.headerName %q must be a header name (letters, digits, '-')", a.HeaderName)
			}
			srv.AuthHeader = a.HeaderName
		default:
			acc.add(v1alpha1.ReasonInvalid, "auth.type %q is not one of Bearer, Header", a.Type)
		}
		if v, ok := c.secretValue(t.Namespace, &a.SecretRef, "auth.secretRef", refs); ok {
			if a.Type == "Bearer" {
				v = "Bearer " + v
			}
			srv.AuthValue = v
		}
	}
	if f := s.Tools; f != nil {
		srv.Allow = checkGlobs(f.Allow, "tools.allow", acc)
		srv.Deny = checkGlobs(f.Deny, "tools.deny", acc)
	}
	srv.Timeout = duration(s.Timeout, "timeout", acc)

	// Access: names and a label selector, resolved to key IDs.
	if len(s.Access.Keys) == 0 && s.Access.KeySelector == nil {
		acc.add(v1alpha1.ReasonInvalid, "access needs keys or keySelector")
	}
	ids := map[string]bool{}
	for _, name := range s.Access.Keys {
		id := t.Namespace + "/" + name
		if _, ok := c.keys[id]; !ok {
			refs.add(ReasonKeyNotFound, "access.keys: VirtualKey %q not found in namespace %q", name, t.Namespace)
			continue
		}
		ids[id] = true
	}
	if s.Access.KeySelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(s.Access.KeySelector)
		if err != nil {
			acc.add(v1alpha1.ReasonInvalid, "access.keySelector: %v", err)
		} else {
			for _, vk := range nsKeys {
				if sel.Matches(labels.Set(vk.Labels)) {
					ids[vk.Namespace+"/"+vk.Name] = true
				}
			}
		}
	}
	for id := range ids {
		srv.Keys = append(srv.Keys, id)
	}
	slices.Sort(srv.Keys)
	return srv
}
