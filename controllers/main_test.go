package controllers

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"tollgate.dev/tollgate/api/v1alpha1"
	"tollgate.dev/tollgate/dataplane/routetable"
	dpsync "tollgate.dev/tollgate/dataplane/sync"
	"tollgate.dev/tollgate/dataplane/sync/wire"
)

// TestMainWithRealPushChannel runs the controller as `tollgate controller`
// does (flags, leader election, the real push server with static-token
// auth) and connects real data-plane sync clients: Programmed counts their
// acknowledgements.
func TestMainWithRealPushChannel(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	kubeconfig := writeKubeconfig(t, dir)
	const token = "push-token-for-tests-0123456789"
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pushAddr, healthAddr := freeAddr(t), freeAddr(t)

	mctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Main(mctx, []string{
			"--kubeconfig", kubeconfig,
			"--leader-elect=true", "--leader-election-namespace", ns,
			"--namespace", ns,
			"--push-addr", pushAddr, "--push-auth", "static", "--push-token-file", tokenFile,
			"--metrics-addr", "0", "--health-addr", healthAddr,
		})
	}()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Main returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Main did not return after cancellation")
		}
	})
	eventually(t, "controller ready (elected, push channel served)", func() error {
		resp, err := http.Get("http://" + healthAddr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})

	iso := func(o client.Object) client.Object {
		o.SetLabels(map[string]string{isolatedLabel: "true"})
		return o
	}
	r := route(ns, "mini", "gpt-4.1-mini", "openai")
	create(t, iso(credentialsSecret(ns, "sk-test-0123456789")), iso(provider(ns, "openai")), iso(r))

	// No replica yet: in the table, but not programmed anywhere.
	eventually(t, "no replicas", func() error {
		return hasConditions(t, r, want{v1alpha1.ConditionProgrammed, metav1.ConditionFalse, v1alpha1.ReasonNoReplicas, ""})
	})

	a := startReplica(t, "http://"+pushAddr, token, "dp-a")
	eventually(t, "programmed on one replica", func() error {
		return hasConditions(t, r, want{v1alpha1.ConditionProgrammed, metav1.ConditionTrue, v1alpha1.ReasonProgrammed, "Acknowledged by 1/1 data-plane replicas"},
			want{v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady, ""})
	})
	if tbl := a.table(); tbl == nil {
		t.Fatal("replica applied no table")
	} else if _, ok := tbl.RouteForModel(ns, "gpt-4.1-mini"); !ok {
		t.Errorf("replica's table %s has no route", tbl.Version)
	}

	startReplica(t, "http://"+pushAddr, token, "dp-b")
	eventually(t, "programmed on two replicas", func() error {
		return hasConditions(t, r, want{v1alpha1.ConditionProgrammed, metav1.ConditionTrue, v1alpha1.ReasonProgrammed, "Acknowledged by 2/2 data-plane replicas"})
	})

	// A change reaches the replicas and is acknowledged again.
	r.Spec.Targets[0].Weight = ptr(int32(9))
	if err := k8sClient.Update(ctx(t), r); err != nil {
		t.Fatal(err)
	}
	eventually(t, "generation 2 programmed", func() error {
		if r.Generation != 2 {
			return fmt.Errorf("generation %d", r.Generation)
		}
		return hasConditions(t, r, want{v1alpha1.ConditionProgrammed, metav1.ConditionTrue, v1alpha1.ReasonProgrammed, "2/2"})
	})

	// The table carries credentials: a wrong token gets nothing.
	req, _ := http.NewRequest(http.MethodPost, "http://"+pushAddr+wire.StreamPath, strings.NewReader("{}\n"))
	req.Header.Set("Authorization", "Bearer wrong-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("stream with a wrong token: HTTP %d, want 401", resp.StatusCode)
	}
}

type testReplica struct {
	mu  sync.Mutex
	cur *routetable.Table
}

func (r *testReplica) table() *routetable.Table {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

func startReplica(t *testing.T, url, token, id string) *testReplica {
	t.Helper()
	rep := &testReplica{}
	c := &dpsync.Client{URL: url, Token: token, ReplicaID: id, Log: logr.Discard(),
		Apply: func(tbl *routetable.Table) error {
			rep.mu.Lock()
			rep.cur = tbl
			rep.mu.Unlock()
			return nil
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return rep
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// writeKubeconfig writes the envtest admin credentials as a kubeconfig.
func writeKubeconfig(t *testing.T, dir string) string {
	t.Helper()
	c := testRestConfig
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData, Token: c.BearerToken}
	cfg.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	cfg.CurrentContext = "envtest"
	p := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPushServerServesOnlyOnceElected: a standby replica turns push streams
// away with 503 and "Connection: close" (so the data plane's next attempt
// may land on another pod), and serves them once elected.
func TestPushServerServesOnlyOnceElected(t *testing.T) {
	elected := make(chan struct{})
	p := &pushServer{
		addr:    freeAddr(t),
		handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }),
		log:     logr.Discard(),
		elected: elected,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
	status := func() (int, bool) {
		resp, err := http.Post("http://"+p.addr+wire.StreamPath, wire.ContentType, strings.NewReader(""))
		if err != nil {
			return 0, false
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Close
	}
	eventually(t, "standby answers 503", func() error {
		if code, closed := status(); code != http.StatusServiceUnavailable || !closed {
			return fmt.Errorf("HTTP %d, connection close %v", code, closed)
		}
		return nil
	})
	if err := p.ready(nil); err != nil {
		t.Errorf("a standby replica must be ready (rolling updates wait for it): %v", err)
	}
	close(elected)
	eventually(t, "leader serves", func() error {
		if code, _ := status(); code != http.StatusOK {
			return fmt.Errorf("HTTP %d", code)
		}
		return nil
	})
}
