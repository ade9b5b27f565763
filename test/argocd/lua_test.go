package argocd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

// repoRoot is the repository root relative to this package.
var repoRoot = filepath.Join("..", "..")

var (
	// healthScript is the single source of the health check.
	healthScriptPath = filepath.Join(repoRoot, "config", "argocd", "health.lua")
	// argocdCMPath is the argocd-cm patch that installs it per kind.
	argocdCMPath = filepath.Join(repoRoot, "config", "argocd", "argocd-cm.yaml")
)

// kinds are the Tollgate kinds that get a health check.
var kinds = []string{"LLMProvider", "Route", "VirtualKey", "MCPTool"}

// customizationKey is the argocd-cm data key Argo CD reads a kind's health
// check from.
func customizationKey(kind string) string {
	return "resource.customizations.health.gateway.tollgate.dev_" + kind
}

// health is what a health script returns.
type health struct {
	Status  string
	Message string
}

// argoStatuses are the values Argo CD understands.
var argoStatuses = map[string]bool{"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true}

// runHealth evaluates script the way Argo CD does: `obj` is a global table
// decoded from the object's JSON, the chunk's return value is the result.
// Only the base and table libraries are opened, a subset of what Argo CD
// offers, so a script that passes here runs there.
func runHealth(t *testing.T, script string, obj any) health {
	t.Helper()
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	L.SetContext(ctx)

	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatalf("marshal object: %v", err)
	}
	var generic any
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatalf("unmarshal object: %v", err)
	}
	L.SetGlobal("obj", toLua(L, generic))
	if err := L.DoString(script); err != nil {
		t.Fatalf("health script failed: %v", err)
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health script returned %s, want a table", L.Get(-1).Type())
	}
	h := health{Status: luaString(ret.RawGetString("status")), Message: luaString(ret.RawGetString("message"))}
	if !argoStatuses[h.Status] {
		t.Fatalf("health script returned status %q, which Argo CD does not know", h.Status)
	}
	return h
}

func luaString(v lua.LValue) string {
	if v == lua.LNil {
		return ""
	}
	return v.String()
}

// toLua converts decoded JSON into Lua values as Argo CD does: objects and
// arrays become tables (arrays 1-based), numbers float64.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		tbl := L.NewTable()
		for _, item := range v {
			tbl.Append(toLua(L, item))
		}
		return tbl
	case map[string]any:
		tbl := L.NewTable()
		for k, item := range v {
			tbl.RawSetString(k, toLua(L, item))
		}
		return tbl
	default:
		panic(fmt.Sprintf("unexpected JSON value %T", v))
	}
}

// readScript returns the canonical health script.
func readScript(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(healthScriptPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// installedScripts returns the health check per kind as argocd-cm.yaml
// installs it.
func installedScripts(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(argocdCMPath)
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string            `json:"name"`
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.UnmarshalStrict(b, &cm); err != nil {
		t.Fatalf("%s: %v", argocdCMPath, err)
	}
	if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" || cm.Metadata.Name != "argocd-cm" {
		t.Fatalf("%s: want the v1 ConfigMap argocd-cm, got %s %s %s", argocdCMPath, cm.APIVersion, cm.Kind, cm.Metadata.Name)
	}
	scripts := map[string]string{}
	for _, kind := range kinds {
		s, ok := cm.Data[customizationKey(kind)]
		if !ok {
			t.Fatalf("%s has no %s", argocdCMPath, customizationKey(kind))
		}
		scripts[kind] = s
	}
	return scripts
}
