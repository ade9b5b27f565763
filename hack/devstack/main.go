// Command devstack is `make run`: a complete local gateway on this machine.
// It starts a real kube-apiserver + etcd (the envtest binaries that
// hack/envtest-assets.sh builds), installs the CRDs, starts a fake LLM
// provider on loopback, the controller and two data-plane replicas as
// subprocesses of bin/tollgate, applies config/samples plus a demo Route
// and VirtualKey that point at the fake provider, and prints what to
// export and curl. Ctrl-C stops everything it started.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"tollgate.dev/tollgate/test/fakeprovider"
	"tollgate.dev/tollgate/test/stack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("bin", "bin/tollgate", "tollgate binary")
	dir := flag.String("dir", "bin/dev", "where kubeconfig, token and logs go")
	port := flag.Int("port", 8080, "first data-plane port (the second replica uses port+1)")
	samples := flag.String("samples", "config/samples", "samples applied at start")
	flag.Parse()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return errors.New("KUBEBUILDER_ASSETS is not set: run this through `make run`")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	absDir, _ := filepath.Abs(*dir)

	step("Starting kube-apiserver and etcd")
	api, err := stack.StartAPIServer("config/crd/bases", absDir, "tollgate-dev")
	if err != nil {
		return err
	}
	defer func() { step("Stopping API server"); _ = api.Stop() }()
	cl, kubeconfig := api.Client, api.Kubeconfig

	step("Starting a fake LLM provider on loopback")
	fake := fakeprovider.Start(fakeprovider.Behavior{Chunks: 8})
	defer fake.Close()

	step("Applying " + *samples + " and the demo resources")
	if err := applyDir(ctx, cl, *samples, "default"); err != nil {
		return err
	}
	if err := applyYAML(ctx, cl, []byte(demoManifests(fake.URL)), "default"); err != nil {
		return err
	}

	step("Starting the controller and data-plane replicas dataplane-0 and dataplane-1")
	gw, err := stack.StartGateway(stack.Options{Bin: *bin, Dir: absDir, Kubeconfig: kubeconfig,
		Listen:          []string{fmt.Sprintf("127.0.0.1:%d", *port), fmt.Sprintf("127.0.0.1:%d", *port+1)},
		ControllerFlags: []string{"--metrics-addr", "127.0.0.1:0", "--health-addr", "127.0.0.1:0"},
		Detach:          true})
	if err != nil {
		return err
	}
	defer gw.Stop()
	urls := gw.URLs

	step("Waiting for the demo virtual key")
	key, err := waitForKey(ctx, cl, "default", "demo")
	if err != nil {
		return err
	}
	for _, u := range urls {
		if err := waitReady(ctx, u, key); err != nil {
			return fmt.Errorf("%s never served the demo route: %w (see %s/*.log)", u, err, absDir)
		}
	}

	fmt.Printf(`
Tollgate is running.

  export KUBECONFIG=%s
  kubectl get tollgate
  export TOLLGATE_URL=%s
  export TOLLGATE_KEY=%s

  curl -s $TOLLGATE_URL/v1/chat/completions -H "Authorization: Bearer $TOLLGATE_KEY" \
    -H 'Content-Type: application/json' -d '{"model":"demo","messages":[{"role":"user","content":"Hello"}]}'

Second replica: %s   Fake provider: %s   Logs: %s/*.log
Press Ctrl-C to stop everything.
`, kubeconfig, urls[0], key, urls[1], fake.URL, absDir)

	<-ctx.Done()
	fmt.Println()
	step("Stopping")
	return nil
}

func step(s string) { fmt.Printf("==> %s\n", s) }

// demoManifests point a Route at the fake provider, once as Anthropic and
// once as an OpenAI-compatible in-cluster server (the fallback).
func demoManifests(fakeURL string) string {
	return `apiVersion: v1
kind: Secret
metadata:
  name: demo-fake-credentials
stringData:
  apiKey: sk-demo-not-a-real-key
---
apiVersion: gateway.tollgate.dev/v1alpha1
kind: LLMProvider
metadata:
  name: demo-anthropic
spec:
  type: Anthropic
  endpoint: ` + fakeURL + `
  credentials:
    apiKey: {name: demo-fake-credentials, key: apiKey}
  models:
  - name: claude-demo
    inputPrice: "3"
    outputPrice: "15"
    cacheReadPrice: "0.30"
    cacheWritePrice: "3.75"
---
apiVersion: gateway.tollgate.dev/v1alpha1
kind: LLMProvider
metadata:
  name: demo-local
spec:
  type: OpenAICompatible
  endpoint: ` + fakeURL + `
  locality: InCluster
  models:
  - name: local-demo
    inputPrice: "0"
    outputPrice: "0"
---
apiVersion: gateway.tollgate.dev/v1alpha1
kind: Route
metadata:
  name: demo
spec:
  model: demo
  targets:
  - provider: demo-anthropic
    model: claude-demo
  fallbacks:
  - provider: demo-local
    model: local-demo
---
apiVersion: gateway.tollgate.dev/v1alpha1
kind: VirtualKey
metadata:
  name: demo
spec:
  team: demo
  description: Key printed by make run
  allowedRoutes: [demo]
  budget:
    amount: "10"
    currency: USD
    period: Monthly
`
}

func applyDir(ctx context.Context, cl client.Client, dir, ns string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := applyYAML(ctx, cl, b, ns); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	return nil
}

func applyYAML(ctx context.Context, cl client.Client, b []byte, ns string) error {
	dec := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := dec.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := utilyaml.Unmarshal(doc, &u.Object); err != nil {
			return err
		}
		if u.GetKind() == "" {
			continue
		}
		if u.GetNamespace() == "" {
			u.SetNamespace(ns)
		}
		if err := cl.Patch(ctx, u, client.Apply, client.FieldOwner("tollgate-devstack"), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
}

func waitForKey(ctx context.Context, cl client.Client, ns, name string) (string, error) {
	var key string
	_, err := stack.Eventually(ctx, 60*time.Second, 250*time.Millisecond, func() (err error) {
		key, err = stack.Key(ctx, cl, ns, name)
		return err
	})
	if err != nil && ctx.Err() == nil {
		return "", errors.New("the controller did not issue the demo key within 60s (see bin/dev/controller.log)")
	}
	return key, err
}

func waitReady(ctx context.Context, url, key string) error {
	_, err := stack.Eventually(ctx, 60*time.Second, 250*time.Millisecond, func() error {
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && strings.Contains(string(b), `"demo"`) {
			return nil
		}
		return fmt.Errorf("%d %s", resp.StatusCode, b)
	})
	return err
}
