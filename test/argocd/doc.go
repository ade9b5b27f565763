// Package argocd tests the Argo CD health checks for the Tollgate kinds
// (config/argocd): it runs the Lua scripts with github.com/yuin/gopher-lua,
// the interpreter Argo CD embeds, against status objects shaped exactly as
// the controller writes them (api/v1alpha1 types with metav1.Conditions,
// serialised to JSON) and against the compiler's real verdicts for
// config/samples. It needs no cluster.
package argocd
