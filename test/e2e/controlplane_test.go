package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	gatewayv1 "tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/test/fakeprovider"
)

// process is a tollgate subprocess whose output goes to a log file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
}

func startProcess(t *testing.T, bin, dir, name string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	p := &process{name: name, cmd: cmd, log: logPath}
	t.Cleanup(func() { p.stop() })
	return p
}

// stop sends SIGTERM and waits (bounded) for the process to exit.
func (p *process) stop() {
	if p.cmd.ProcessState != nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// buildTollgate builds the tollgate binary from this checkout.
func buildTollgate(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "tollgate")
	cmd := exec.Command("go", "build", "-o", bin, "tollgate.dev/tollgate")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// eventually polls f until it returns nil or the deadline passes, and
// returns how long that took.
func eventually(t *testing.T, within time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < within {
		if err = f(); err == nil {
			return time.Since(start)
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, within, err)
	return 0
}

// TestControlPlaneEndToEnd runs the real thing: kube-apiserver + etcd,
// the controller and two data-plane replicas as subprocesses of the
// tollgate binary, a fake provider on loopback. Resources created through
// the API are served by both replicas; changes follow within seconds; the
// replicas keep serving while the controller is down and resync when it
// returns; no secret appears in any log.
func TestControlPlaneEndToEnd(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: run `make test` (it builds the API server binaries)")
	}
	dir := t.TempDir()
	bin := buildTollgate(t, dir)

	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join("..", "..", "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start API server: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	user, err := env.AddUser(envtest.User{Name: "tollgate-e2e", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = gatewayv1.AddToScheme(scheme)
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	fake := fakeprovider.Start(fakeprovider.Behavior{})
	defer fake.Close()
	const ns = "team-a"
	providerSecret := "sk-e2e-provider-" + randomHex(16)
	must(t, cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	must(t, cl.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "openai", Namespace: ns}, StringData: map[string]string{"apiKey": providerSecret}}))
	must(t, cl.Create(ctx, &gatewayv1.LLMProvider{ObjectMeta: metav1.ObjectMeta{Name: "openai", Namespace: ns}, Spec: gatewayv1.LLMProviderSpec{
		Type: gatewayv1.ProviderType("OpenAI"), Endpoint: fake.URL,
		Credentials: &gatewayv1.ProviderCredentials{APIKey: &gatewayv1.SecretKeySelector{Name: "openai", Key: "apiKey"}},
		Models: []gatewayv1.ModelSpec{
			{Name: "gpt-a", InputPrice: inputPrice, OutputPrice: outputPrice},
			{Name: "gpt-b", InputPrice: inputPrice, OutputPrice: outputPrice},
			{Name: "gpt-c", InputPrice: inputPrice, OutputPrice: outputPrice},
		},
	}}))
	must(t, cl.Create(ctx, &gatewayv1.VirtualKey{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: gatewayv1.VirtualKeySpec{Team: "search",
		Budget: &gatewayv1.Budget{Amount: "100", Currency: "USD", Period: "Monthly"}}}))

	token := randomHex(32)
	tokenFile := filepath.Join(dir, "push-token")
	must(t, os.WriteFile(tokenFile, []byte(token), 0o600))
	pushAddr := freeAddr(t)
	controllerArgs := []string{"controller", "--kubeconfig", kubeconfig, "--leader-elect=false", "--push-addr", pushAddr,
		"--push-auth", "static", "--push-token-file", tokenFile, "--metrics-addr", "0", "--health-addr", freeAddr(t)}
	controller := startProcess(t, bin, dir, "controller", controllerArgs...)
	var replicas []string
	var procs []*process
	for i := 0; i < 2; i++ {
		listen := freeAddr(t)
		procs = append(procs, startProcess(t, bin, dir, fmt.Sprintf("dataplane-%d", i), "dataplane", "--controller", "http://"+pushAddr,
			"--token-file", tokenFile, "--replica-id", fmt.Sprintf("dataplane-%d", i), "--listen", listen, "--admin-listen", freeAddr(t),
			"--drain-delay", "0s", "--shutdown-grace", "5s"))
		replicas = append(replicas, "http://"+listen)
	}

	var key string
	eventually(t, 60*time.Second, "the controller issues the VirtualKey's secret key", func() error {
		var vk gatewayv1.VirtualKey
		if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: "app"}, &vk); err != nil {
			return err
		}
		if vk.Status.SecretName == "" {
			return fmt.Errorf("status.secretName is empty")
		}
		var sec corev1.Secret
		if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: vk.Status.SecretName}, &sec); err != nil {
			return err
		}
		key = string(sec.Data["key"])
		if !strings.HasPrefix(key, "tg-") {
			return fmt.Errorf("key %q... has no tg- prefix", key[:min(3, len(key))])
		}
		return nil
	})

	// servedModel asks a replica for model "chat" and returns the upstream
	// model that answered.
	servedModel := func(base string) (string, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/chat/completions",
			strings.NewReader(`{"model":"chat","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%d %s", resp.StatusCode, b)
		}
		return resp.Header.Get("x-tollgate-model"), nil
	}
	allServe := func(model string) func() error {
		return func() error {
			for _, r := range replicas {
				got, err := servedModel(r)
				if err != nil {
					return fmt.Errorf("%s: %w", r, err)
				}
				if got != model {
					return fmt.Errorf("%s served by %q, want %q", r, got, model)
				}
			}
			return nil
		}
	}
	setTarget := func(model string) {
		t.Helper()
		// The controller writes status concurrently: retry on conflict, as
		// kubectl apply would.
		must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var rt gatewayv1.Route
			if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: "chat"}, &rt); err != nil {
				return err
			}
			rt.Spec.Targets[0].Model = model
			return cl.Update(ctx, &rt)
		}))
	}

	// Wait until both replicas hold a table (the key is in it), then create
	// the Route and time how long until both serve it.
	eventually(t, 60*time.Second, "both replicas receive a table with the key", func() error {
		for _, r := range replicas {
			req, _ := http.NewRequestWithContext(ctx, "GET", r+"/v1/models", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("%s: %d", r, resp.StatusCode)
			}
		}
		return nil
	})
	must(t, cl.Create(ctx, &gatewayv1.Route{ObjectMeta: metav1.ObjectMeta{Name: "chat", Namespace: ns}, Spec: gatewayv1.RouteSpec{
		Model: "chat", Targets: []gatewayv1.RouteTarget{{Provider: "openai", Model: "gpt-a"}},
	}}))
	d := eventually(t, 10*time.Second, "both replicas serve a new Route", allServe("gpt-a"))
	t.Logf("new Route served by both replicas after %v", d.Round(time.Millisecond))
	if d > 2*time.Second {
		t.Errorf("a new Route took %v to reach both replicas; the target is 2s", d)
	}

	setTarget("gpt-b")
	d = eventually(t, 10*time.Second, "both replicas follow a Route change", allServe("gpt-b"))
	t.Logf("Route change served by both replicas after %v", d.Round(time.Millisecond))
	if d > 2*time.Second {
		t.Errorf("a Route change took %v to reach both replicas; the target is 2s", d)
	}

	eventually(t, 30*time.Second, "the Route reports Ready and Programmed on both replicas", func() error {
		var rt gatewayv1.Route
		if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: "chat"}, &rt); err != nil {
			return err
		}
		for _, typ := range []string{"Accepted", "ResolvedRefs", "Programmed", "Ready"} {
			c := apimeta.FindStatusCondition(rt.Status.Conditions, typ)
			if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != rt.Generation {
				return fmt.Errorf("condition %s = %+v (generation %d)", typ, c, rt.Generation)
			}
		}
		if c := apimeta.FindStatusCondition(rt.Status.Conditions, "Programmed"); !strings.Contains(c.Message, "2/2") {
			return fmt.Errorf("Programmed message %q does not count both replicas", c.Message)
		}
		return nil
	})

	// The controller goes away: both replicas keep serving the last table.
	controller.stop()
	for i := 0; i < 5; i++ {
		if err := allServe("gpt-b")(); err != nil {
			t.Fatalf("with the controller down: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A change made while it is down reaches both once it is back.
	setTarget("gpt-c")
	startProcess(t, bin, dir, "controller-2", controllerArgs...)
	d = eventually(t, 60*time.Second, "both replicas resync after the controller restarts", allServe("gpt-c"))
	t.Logf("after a controller restart both replicas served the change made meanwhile within %v", d.Round(time.Millisecond))

	for _, p := range procs {
		p.stop()
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited with %d on SIGTERM", p.name, code)
		}
	}
	// Every request that reached the provider is in the key's status once:
	// no loss across the controller restart and the replicas' shutdown, no
	// double count, and the spend is exact.
	eventually(t, 30*time.Second, "VirtualKey status accounts every request exactly", func() error {
		var vk gatewayv1.VirtualKey
		if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: "app"}, &vk); err != nil {
			return err
		}
		u := vk.Status.Usage
		if u == nil {
			return fmt.Errorf("no usage in status")
		}
		if int(u.Requests) != fake.Count() {
			return fmt.Errorf("status counts %d requests, the provider served %d", u.Requests, fake.Count())
		}
		want := new(big.Rat).Add(
			new(big.Rat).Mul(big.NewRat(u.PromptTokens, 1), ratOf(t, string(inputPrice))),
			new(big.Rat).Mul(big.NewRat(u.CompletionTokens, 1), ratOf(t, string(outputPrice))))
		want.Quo(want, big.NewRat(1_000_000, 1))
		if got := ratOf(t, u.Spend); got.Cmp(want) != 0 || u.PromptTokens == 0 {
			return fmt.Errorf("spend %s, want %s for %d prompt and %d completion tokens", u.Spend, want.FloatString(9), u.PromptTokens, u.CompletionTokens)
		}
		t.Logf("VirtualKey status: %d requests, %d+%d tokens, spend %s %s (%s%% of budget)", u.Requests, u.PromptTokens, u.CompletionTokens, u.Spend, u.Currency, u.PercentUsed)
		return nil
	})

	// No secret in any log of the run.
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		for name, secret := range map[string]string{"provider API key": providerSecret, "virtual key": key, "push token": token} {
			if strings.Contains(string(b), secret) {
				t.Errorf("%s appears in %s", name, filepath.Base(l))
			}
		}
	}
	if t.Failed() {
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			t.Logf("==> %s\n%s", filepath.Base(l), tail(string(b), 4000))
		}
	}
}

const (
	inputPrice  gatewayv1.Decimal = "1.25"
	outputPrice gatewayv1.Decimal = "10.00"
)

func ratOf(t *testing.T, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("not a decimal: %q", s)
	}
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
