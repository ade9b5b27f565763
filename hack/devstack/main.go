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
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	gatewayv1 "tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/test/fakeprovider"
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
	env := &envtest.Environment{CRDDirectoryPaths: []string{"config/crd/bases"}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("start API server: %w", err)
	}
	defer func() { step("Stopping API server"); _ = env.Stop() }()
	user, err := env.AddUser(envtest.User{Name: "tollgate-dev", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(absDir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = gatewayv1.AddToScheme(scheme)
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}

	step("Starting a fake LLM provider on loopback")
	fake := fakeprovider.Start(fakeprovider.Behavior{Chunks: 8})
	defer fake.Close()

	token := make([]byte, 32)
	_, _ = rand.Read(token)
	tokenFile := filepath.Join(absDir, "push-token")
	if err := os.WriteFile(tokenFile, []byte(hex.EncodeToString(token)), 0o600); err != nil {
		return err
	}
	pushAddr, err := freeAddr()
	if err != nil {
		return err
	}

	step("Applying " + *samples + " and the demo resources")
	if err := applyDir(ctx, cl, *samples, "default"); err != nil {
		return err
	}
	if err := applyYAML(ctx, cl, []byte(demoManifests(fake.URL)), "default"); err != nil {
		return err
	}

	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			_ = p.Wait()
		}
	}()
	start := func(name string, args ...string) error {
		logf, err := os.Create(filepath.Join(absDir, name+".log"))
		if err != nil {
			return err
		}
		cmd := exec.Command(*bin, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		procs = append(procs, cmd)
		return nil
	}
	step("Starting the controller")
	if err := start("controller", "controller", "--kubeconfig", kubeconfig, "--leader-elect=false",
		"--push-addr", pushAddr, "--push-auth", "static", "--push-token-file", tokenFile,
		"--metrics-addr", "127.0.0.1:0", "--health-addr", "127.0.0.1:0"); err != nil {
		return err
	}
	urls := []string{}
	for i := 0; i < 2; i++ {
		name := fmt.Sprintf("dataplane-%d", i)
		step("Starting data-plane replica " + name)
		adm, _ := freeAddr()
		listen := fmt.Sprintf("127.0.0.1:%d", *port+i)
		if err := start(name, "dataplane", "--controller", "http://"+pushAddr, "--token-file", tokenFile,
			"--replica-id", name, "--listen", listen, "--admin-listen", adm, "--drain-delay", "0s"); err != nil {
			return err
		}
		urls = append(urls, "http://"+listen)
	}

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

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

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
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var vk gatewayv1.VirtualKey
		if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &vk); err == nil && vk.Status.SecretName != "" {
			var sec corev1.Secret
			if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: vk.Status.SecretName}, &sec); err == nil && len(sec.Data["key"]) > 0 {
				return string(sec.Data["key"]), nil
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return "", errors.New("the controller did not issue the demo key within 60s (see bin/dev/controller.log)")
}

func waitReady(ctx context.Context, url, key string) error {
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(b), `"demo"`) {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return errors.New(last)
}
