package dataplane

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"tollgate.dev/tollgate/controllers/compiler"
	"tollgate.dev/tollgate/controllers/push"
	"tollgate.dev/tollgate/test/fakeprovider"
)

const fileModeKey = "tg-file-mode-test-key-0123456789abcdefghijklmnop"

func fileModeManifests(providerURL, model string) string {
	return `apiVersion: gateway.tollgate.dev/v1alpha1
kind: LLMProvider
metadata: {name: local}
spec:
  type: Ollama
  endpoint: ` + providerURL + `
  locality: InCluster
---
apiVersion: gateway.tollgate.dev/v1alpha1
kind: Route
metadata: {name: chat}
spec:
  model: ` + model + `
  targets:
  - {provider: local, model: llama3.2}
---
apiVersion: gateway.tollgate.dev/v1alpha1
kind: VirtualKey
metadata: {name: app}
spec:
  team: platform
---
apiVersion: v1
kind: Secret
metadata: {name: app-key}
stringData: {key: ` + fileModeKey + `}
`
}

// TestFileMode runs the data plane process logic in file mode: it serves
// the compiled manifests, follows an edit of the directory, keeps the last
// good table when the directory stops compiling, and shuts down cleanly.
func TestFileMode(t *testing.T) {
	fake := fakeprovider.Start(fakeprovider.Behavior{})
	defer fake.Close()
	dir := t.TempDir()
	write := func(s string) {
		t.Helper()
		// Write then rename, as editors and ConfigMap updates do.
		tmp := filepath.Join(dir, ".tmp")
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "gateway.yaml")); err != nil {
			t.Fatal(err)
		}
	}
	write(fileModeManifests(fake.URL, "small"))

	ready := make(chan [2]string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", ConfigDir: dir, ShutdownGrace: 5 * time.Second,
			MaxBodyBytes: 1 << 20, Ready: func(p, a string) { ready <- [2]string{p, a} }}, logr.Discard())
	}()
	var addrs [2]string
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("data plane did not start")
	}
	base, admin := "http://"+addrs[0], "http://"+addrs[1]

	chat := func(model string) (int, string) {
		req, _ := http.NewRequest("POST", base+"/v1/chat/completions",
			strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+fileModeKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	get := func(u string) (int, string) {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := chat("small"); code != 200 || !strings.Contains(body, "echo: hi") {
		t.Fatalf("chat: %d %s", code, body)
	}
	if code, body := get(admin + "/readyz"); code != 200 {
		t.Fatalf("readyz: %d %s", code, body)
	}
	if code, body := get(admin + "/metrics"); code != 200 || !strings.Contains(body, "tollgate_requests_total") || strings.Contains(body, fileModeKey) {
		t.Fatalf("metrics: %d (must list tollgate_requests_total and never the key)", code)
	}

	// An edit is followed within seconds.
	write(fileModeManifests(fake.URL, "renamed"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := chat("renamed"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the edited route was not served within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := chat("small"); code != http.StatusNotFound {
		t.Fatalf("the old model name still answers %d", code)
	}

	// A broken directory keeps the last good table.
	write("apiVersion: gateway.tollgate.dev/v1alpha1\nkind: Route\nmetadata: {name: [broken\n")
	time.Sleep(1500 * time.Millisecond) // at least one poll interval
	if code, body := chat("renamed"); code != 200 {
		t.Fatalf("after a broken edit the last good table must keep serving: %d %s", code, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown did not finish")
	}
}

// TestControllerOverTLS runs the data plane against a push server that
// serves TLS with a private CA given by --controller-ca-file: the table
// arrives, and without the CA the replica refuses to connect.
func TestControllerOverTLS(t *testing.T) {
	fake := fakeprovider.Start(fakeprovider.Behavior{})
	defer fake.Close()
	in, err := compiler.ParseManifests("tls", []byte(fileModeManifests(fake.URL, "small")))
	if err != nil {
		t.Fatal(err)
	}
	out := compiler.Compile(in)
	if out.Err != nil {
		t.Fatal(out.Err)
	}
	const token = "push-token-for-the-tls-test-0123456789"
	ps := push.NewServer(push.Options{Auth: push.NewStaticTokenAuth(token), Log: logr.Discard()})
	ps.Publish(out.Table)
	hs := httptest.NewUnstartedServer(ps.Handler())
	hs.EnableHTTP2 = true
	hs.StartTLS()
	defer hs.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	run := func(ca string) (base string, stop func()) {
		ready := make(chan [2]string, 1)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, Options{Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", ControllerURL: hs.URL, ControllerCAFile: ca,
				Token: token, ReplicaID: "tls-0", ShutdownGrace: 5 * time.Second, MaxBodyBytes: 1 << 20,
				Ready: func(p, a string) { ready <- [2]string{p, a} }}, logr.Discard())
		}()
		select {
		case a := <-ready:
			return "http://" + a[0], func() { cancel(); <-done }
		case err := <-done:
			t.Fatalf("Run: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("data plane did not start")
		}
		return "", nil
	}
	chat := func(base string) int {
		req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(`{"model":"small","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+fileModeKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	base, stop := run(caFile)
	deadline := time.Now().Add(10 * time.Second)
	for chat(base) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the table pushed over TLS was not served within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()

	// Without the CA the certificate is not trusted: no table, 503.
	base, stop = run("")
	defer stop()
	time.Sleep(time.Second)
	if code := chat(base); code != http.StatusServiceUnavailable {
		t.Fatalf("without the CA the replica must not trust the controller; got %d", code)
	}
}
