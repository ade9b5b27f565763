// Package stack starts a local Tollgate: a real kube-apiserver + etcd (the
// envtest binaries that hack/envtest-assets.sh builds, found through
// KUBEBUILDER_ASSETS) with the CRDs installed, and the controller and
// data-plane replicas as subprocesses of the tollgate binary, each logging
// to a file.
//
// It exists because `make run` (hack/devstack) and the control-plane e2e
// tests (test/e2e) start the same things with the same flags; one copy
// keeps them from drifting apart.
package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	gatewayv1 "tollgate.dev/tollgate/api/v1alpha1"
)

// APIServer is a running kube-apiserver + etcd with the CRDs installed.
type APIServer struct {
	Env        *envtest.Environment
	Client     client.Client // admin client with the core and Tollgate types
	Kubeconfig string        // path of an admin kubeconfig
}

// StartAPIServer starts the API server from KUBEBUILDER_ASSETS (the caller
// checks that it is set), installs the CRDs in crdDir and writes a
// system:masters kubeconfig for user to dir/kubeconfig. The caller stops
// it with Stop.
func StartAPIServer(crdDir, dir, user string) (*APIServer, error) {
	env := &envtest.Environment{CRDDirectoryPaths: []string{crdDir}, ErrorIfCRDPathMissing: true,
		ControlPlaneStopTimeout: 2 * time.Minute} // kube-apiserver drains open watches before it exits
	// Without a bound kube-apiserver waits a minute for open watches on stop.
	env.ControlPlane.GetAPIServer().Configure().Set("shutdown-watch-termination-grace-period", "2s")
	if _, err := env.Start(); err != nil {
		return nil, fmt.Errorf("start API server: %w", err)
	}
	a := &APIServer{Env: env, Kubeconfig: filepath.Join(dir, "kubeconfig")}
	if err := a.init(user); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return a, nil
}

func (a *APIServer) init(user string) error {
	u, err := a.Env.AddUser(envtest.User{Name: user, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := u.KubeConfig()
	if err != nil {
		return err
	}
	if err := os.WriteFile(a.Kubeconfig, kc, 0o600); err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = gatewayv1.AddToScheme(scheme)
	a.Client, err = client.New(a.Env.Config, client.Options{Scheme: scheme})
	return err
}

// Stop stops kube-apiserver and etcd.
func (a *APIServer) Stop() error { return a.Env.Stop() }

// Options say how StartGateway runs the controller and the data planes.
type Options struct {
	Bin, Dir        string   // the tollgate binary; where the push token and the logs go
	Kubeconfig      string   // the controller's
	Listen          []string // one data-plane replica per address
	ControllerFlags []string // appended to the controller's flags
	DataPlaneFlags  []string // appended to each replica's flags
	// Detach starts each process in its own process group, so that a
	// Ctrl-C in a terminal reaches only the caller, which stops them.
	Detach bool
}

// Gateway is the controller and the data-plane replicas, pushing over a
// static token.
type Gateway struct {
	opts           Options
	Token          string // the push token (it must appear in no log)
	ControllerArgs []string
	Controller     *Process
	DataPlanes     []*Process
	URLs           []string // http://<listen> of each replica

	mu     sync.Mutex
	procs  []*Process
	opened map[string]bool
}

// StartGateway writes a push token to Dir/push-token and starts the
// controller (log Dir/controller.log) and a replica dataplane-<i> (log
// Dir/dataplane-<i>.log) for each Listen address. It does not wait for
// them; on error it stops what it started.
func StartGateway(o Options) (_ *Gateway, err error) {
	g := &Gateway{opts: o, opened: map[string]bool{}}
	defer func() {
		if err != nil {
			g.Stop()
		}
	}()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	g.Token = hex.EncodeToString(b)
	tokenFile := filepath.Join(o.Dir, "push-token")
	if err := os.WriteFile(tokenFile, []byte(g.Token), 0o600); err != nil {
		return nil, err
	}
	pushAddr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	g.ControllerArgs = append([]string{"controller", "--kubeconfig", o.Kubeconfig, "--leader-elect=false",
		"--push-addr", pushAddr, "--push-auth", "static", "--push-token-file", tokenFile}, o.ControllerFlags...)
	if g.Controller, err = g.Start("controller", g.ControllerArgs...); err != nil {
		return nil, err
	}
	for i, listen := range o.Listen {
		name := fmt.Sprintf("dataplane-%d", i)
		adm, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		args := append([]string{"dataplane", "--controller", "http://" + pushAddr, "--token-file", tokenFile,
			"--replica-id", name, "--listen", listen, "--admin-listen", adm, "--drain-delay", "0s"}, o.DataPlaneFlags...)
		p, err := g.Start(name, args...)
		if err != nil {
			return nil, err
		}
		g.DataPlanes = append(g.DataPlanes, p)
		g.URLs = append(g.URLs, "http://"+listen)
	}
	return g, nil
}

// Start runs the tollgate binary with args, its output going to
// Dir/<name>.log (new the first time this Gateway uses name, appended to
// after), and leaves it for Stop.
func (g *Gateway) Start(name string, args ...string) (*Process, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if !g.opened[name] {
		flags |= os.O_TRUNC
	}
	logPath := filepath.Join(g.opts.Dir, name+".log")
	f, err := os.OpenFile(logPath, flags, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	g.opened[name] = true
	cmd := exec.Command(g.opts.Bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if g.opts.Detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Cmd: cmd, Log: logPath}
	g.procs = append(g.procs, p)
	return p, nil
}

// Stop stops every process Start started, all at once.
func (g *Gateway) Stop() {
	g.mu.Lock()
	procs := g.procs
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(p.Stop)
	}
	wg.Wait()
}

// Process is a tollgate subprocess whose output goes to the file Log.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	Log  string
}

// Stop sends SIGTERM and waits (bounded) for the process to exit; it does
// nothing if the process was already waited for.
func (p *Process) Stop() {
	if p.Cmd.ProcessState != nil || p.Cmd.Process == nil {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.Cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-done
	}
}

// FreeAddr returns a loopback address with a port that was free just now.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Key returns the secret key the controller issued for VirtualKey ns/name,
// or an error saying what is still missing.
func Key(ctx context.Context, cl client.Client, ns, name string) (string, error) {
	var vk gatewayv1.VirtualKey
	if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &vk); err != nil {
		return "", err
	}
	if vk.Status.SecretName == "" {
		return "", errors.New("status.secretName is empty")
	}
	var sec corev1.Secret
	if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: vk.Status.SecretName}, &sec); err != nil {
		return "", err
	}
	if len(sec.Data["key"]) == 0 {
		return "", fmt.Errorf("secret %s has no key", sec.Name)
	}
	return string(sec.Data["key"]), nil
}

// Eventually calls f every interval until it returns nil, within passes or
// ctx ends. It returns how long that took and, on failure, f's last error.
func Eventually(ctx context.Context, within, interval time.Duration, f func() error) (time.Duration, error) {
	start := time.Now()
	var err error
	for time.Since(start) < within {
		if err = f(); err == nil {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(interval):
		}
	}
	return time.Since(start), fmt.Errorf("not within %v: %w", within, err)
}
