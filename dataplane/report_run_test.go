package dataplane

import (
	"context"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"tollgate.dev/tollgate/controllers/compiler"
	"tollgate.dev/tollgate/controllers/push"
	"tollgate.dev/tollgate/dataplane/sync/wire"
)

// TestDeadLocalProviderReachesController runs the data plane against a push
// server with an in-cluster provider nobody listens for and a health check:
// with no user traffic at all, the prober ejects its target and the
// replica's report tells the controller.
func TestDeadLocalProviderReachesController(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	manifests := `apiVersion: gateway.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {name: vllm}
spec:
  type: OpenAICompatible
  endpoint: ` + dead + `
  locality: InCluster
  healthCheck: {interval: 1s}
---
apiVersion: gateway.tollgate.dev/v1alpha1
kind: Route
metadata: {name: chat}
spec:
  model: small
  targets:
  - {provider: vllm, model: qwen3}
`
	in, err := compiler.ParseManifests("health", []byte(manifests))
	if err != nil {
		t.Fatal(err)
	}
	out := compiler.Compile(in)
	if out.Err != nil || len(out.Table.Providers) != 1 || out.Table.Providers[0].HealthCheckInterval != time.Second {
		t.Fatalf("compile: %v, providers %+v", out.Err, out.Table.Providers)
	}
	const token = "push-token-for-the-health-test-0123456789"
	ps := push.NewServer(push.Options{Auth: push.NewStaticTokenAuth(token), Log: logr.Discard(), Heartbeat: time.Hour})
	ps.Publish(out.Table)
	hs := httptest.NewServer(ps.Handler())
	defer hs.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", ControllerURL: hs.URL,
			Token: token, ReplicaID: "dp-health", ShutdownGrace: time.Second, MaxBodyBytes: 1 << 20}, logr.Discard())
	}()
	defer func() { cancel(); <-done }()

	var last *wire.Report
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, r := range ps.Replicas() {
			if r.Report != nil {
				last = r.Report
			}
		}
		if last != nil && len(last.Targets) == 1 && last.Targets[0].Ejected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ejection reported within 15s; last report %+v", last)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if tr := last.Targets[0]; tr.Provider != out.Table.Providers[0].ID || tr.Model != "qwen3" || tr.Attempts != 0 { // ejected by the probe alone: no user request was spent on it
		t.Errorf("reported target %+v", tr)
	}
}
