package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gatewayv1 "tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/test/fakeprovider"
	"tollgate.dev/tollgate/test/stack"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := stack.FreeAddr()
	must(t, err)
	return addr
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
	d, err := stack.Eventually(context.Background(), within, 25*time.Millisecond, f)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return d
}

// controlPlane is a real API server, the controller and two data-plane
// replicas (subprocesses of a tollgate binary built from this checkout),
// with namespace team-a holding LLMProvider "openai" (models gpt-a, gpt-b
// and gpt-c) and VirtualKey "app". Everything stops when the test ends;
// if it failed, the tail of every process log is logged.
type controlPlane struct {
	api            *stack.APIServer
	cl             client.Client
	ctx            context.Context
	gw             *stack.Gateway
	dir            string
	providerSecret string // the provider API key in Secret "openai"
	key            string // VirtualKey "app"'s issued key
}

const ns = "team-a"

func startControlPlane(t *testing.T, providerURL string) *controlPlane {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: run `make test` (it builds the API server binaries)")
	}
	cp := &controlPlane{dir: t.TempDir(), providerSecret: "sk-e2e-provider-" + randomHex(16)}
	bin := buildTollgate(t, cp.dir)
	var err error
	if cp.api, err = stack.StartAPIServer(filepath.Join("..", "..", "config", "crd", "bases"), cp.dir, "tollgate-e2e"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.api.Stop() })
	cp.cl = cp.api.Client
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	cp.ctx = ctx

	must(t, cp.cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	must(t, cp.cl.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "openai", Namespace: ns}, StringData: map[string]string{"apiKey": cp.providerSecret}}))
	must(t, cp.cl.Create(ctx, &gatewayv1.LLMProvider{ObjectMeta: metav1.ObjectMeta{Name: "openai", Namespace: ns}, Spec: gatewayv1.LLMProviderSpec{
		Type: gatewayv1.ProviderType("OpenAI"), Endpoint: providerURL,
		Credentials: &gatewayv1.ProviderCredentials{APIKey: &gatewayv1.SecretKeySelector{Name: "openai", Key: "apiKey"}},
		Models: []gatewayv1.ModelSpec{
			{Name: "gpt-a", InputPrice: inputPrice, OutputPrice: outputPrice},
			{Name: "gpt-b", InputPrice: inputPrice, OutputPrice: outputPrice},
			{Name: "gpt-c", InputPrice: inputPrice, OutputPrice: outputPrice},
		},
	}}))
	must(t, cp.cl.Create(ctx, &gatewayv1.VirtualKey{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}, Spec: gatewayv1.VirtualKeySpec{Team: "search",
		Budget: &gatewayv1.Budget{Amount: "100", Currency: "USD", Period: "Monthly"}}}))

	if cp.gw, err = stack.StartGateway(stack.Options{Bin: bin, Dir: cp.dir, Kubeconfig: cp.api.Kubeconfig,
		Listen:          []string{freeAddr(t), freeAddr(t)},
		ControllerFlags: []string{"--metrics-addr", "0", "--health-addr", freeAddr(t)},
		DataPlaneFlags:  []string{"--shutdown-grace", "5s"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.gw.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range cp.logs() {
				b, _ := os.ReadFile(l)
				t.Logf("==> %s\n%s", filepath.Base(l), tail(string(b), 4000))
			}
		}
	})
	eventually(t, 60*time.Second, "the controller issues the VirtualKey's secret key", func() (err error) {
		if cp.key, err = stack.Key(ctx, cp.cl, ns, "app"); err == nil && !strings.HasPrefix(cp.key, "tg-") {
			err = fmt.Errorf("key %q... has no tg- prefix", cp.key[:min(3, len(cp.key))])
		}
		return err
	})
	return cp
}

// logs lists every process log of the run.
func (cp *controlPlane) logs() []string {
	logs, _ := filepath.Glob(filepath.Join(cp.dir, "*.log"))
	return logs
}

// createRoute creates Route "chat" to model and returns how long until both
// replicas served it (at most within).
func (cp *controlPlane) createRoute(t *testing.T, model string, within time.Duration) time.Duration {
	t.Helper()
	must(t, cp.cl.Create(cp.ctx, &gatewayv1.Route{ObjectMeta: metav1.ObjectMeta{Name: "chat", Namespace: ns}, Spec: gatewayv1.RouteSpec{
		Model: "chat", Targets: []gatewayv1.RouteTarget{{Provider: "openai", Model: model}},
	}}))
	return eventually(t, within, "both replicas serve a new Route", cp.allServe(model))
}

// served asks replica base for model "chat" and returns the upstream model
// that answered.
func (cp *controlPlane) served(c *http.Client, base string) (string, error) {
	req, _ := http.NewRequestWithContext(cp.ctx, "POST", base+"/v1/chat/completions",
		strings.NewReader(`{"model":"chat","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+cp.key)
	resp, err := c.Do(req)
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

func (cp *controlPlane) allServe(model string) func() error {
	return func() error {
		for _, r := range cp.gw.URLs {
			got, err := cp.served(http.DefaultClient, r)
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

// setTarget points Route "chat" at model, retrying while the controller
// writes status concurrently, as kubectl apply would.
func (cp *controlPlane) setTarget(t *testing.T, model string) {
	t.Helper()
	eventually(t, 30*time.Second, "update the Route", func() error {
		var rt gatewayv1.Route
		if err := cp.cl.Get(cp.ctx, types.NamespacedName{Namespace: ns, Name: "chat"}, &rt); err != nil {
			return err
		}
		rt.Spec.Targets[0].Model = model
		return cp.cl.Update(cp.ctx, &rt)
	})
}

// TestControlPlaneEndToEnd runs the real thing: kube-apiserver + etcd,
// the controller and two data-plane replicas as subprocesses of the
// tollgate binary, a fake provider on loopback. Resources created through
// the API are served by both replicas; changes follow within seconds; the
// replicas keep serving while the controller is down and resync when it
// returns; no secret appears in any log.
func TestControlPlaneEndToEnd(t *testing.T) {
	fake := fakeprovider.Start(fakeprovider.Behavior{})
	defer fake.Close()
	cp := startControlPlane(t, fake.URL)
	ctx, cl, key := cp.ctx, cp.cl, cp.key

	// Wait until both replicas hold a table (the key is in it), then create
	// the Route and time how long until both serve it.
	eventually(t, 60*time.Second, "both replicas receive a table with the key", func() error {
		for _, r := range cp.gw.URLs {
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
	d := cp.createRoute(t, "gpt-a", 10*time.Second)
	t.Logf("new Route served by both replicas after %v", d.Round(time.Millisecond))
	if d > 2*time.Second {
		t.Errorf("a new Route took %v to reach both replicas; the target is 2s", d)
	}

	cp.setTarget(t, "gpt-b")
	d = eventually(t, 10*time.Second, "both replicas follow a Route change", cp.allServe("gpt-b"))
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
	cp.gw.Controller.Stop()
	for i := 0; i < 5; i++ {
		if err := cp.allServe("gpt-b")(); err != nil {
			t.Fatalf("with the controller down: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A change made while it is down reaches both once it is back.
	cp.setTarget(t, "gpt-c")
	_, err := cp.gw.Start("controller-2", cp.gw.ControllerArgs...)
	must(t, err)
	d = eventually(t, 60*time.Second, "both replicas resync after the controller restarts", cp.allServe("gpt-c"))
	t.Logf("after a controller restart both replicas served the change made meanwhile within %v", d.Round(time.Millisecond))

	for _, p := range cp.gw.DataPlanes {
		p.Stop()
		if code := p.Cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited with %d on SIGTERM", p.Name, code)
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
	logs := cp.logs()
	if len(logs) != 4 {
		t.Errorf("logs %v, want one for each of the 4 processes", logs)
	}
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		for name, secret := range map[string]string{"provider API key": cp.providerSecret, "virtual key": key, "push token": cp.gw.Token} {
			if strings.Contains(string(b), secret) {
				t.Errorf("%s appears in %s", name, filepath.Base(l))
			}
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
