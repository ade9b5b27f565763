package push

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/go-logr/logr/testr"

	"tollgate.dev/tollgate/dataplane/sync/wire"
)

const pushAudience = "tollgate-push"

// TestTokenReviewAuth runs against a real kube-apiserver (envtest): service
// accounts, tokens from the TokenRequest API, TokenReview with an audience.
func TestTokenReviewAuth(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set; run: KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh) go test ./controllers/push/")
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			if err := env.Stop(); err != nil {
				t.Errorf("stop envtest: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const ns = "tollgate-system"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token := func(sa, audience string) string {
		t.Helper()
		if _, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, sa, metav1.GetOptions{}); err != nil {
			if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		exp := int64(600)
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authnv1.TokenRequest{
			Spec: authnv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: &exp},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("TokenRequest for %s: %v", sa, err)
		}
		return tr.Status.Token
	}
	const allowed = "system:serviceaccount:" + ns + ":dataplane"
	good := token("dataplane", pushAudience)
	wrongAudience := token("dataplane", "some-other-service")
	otherSA := token("intruder", pushAudience)

	auth := NewTokenReviewAuth(cs, pushAudience, []string{allowed}).(*tokenReviewAuth)
	authenticate := func(tok string) (string, error) {
		r := httptest.NewRequest(http.MethodPost, wire.StreamPath, nil)
		if tok != "" {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		return auth.Authenticate(r)
	}

	if id, err := authenticate(good); err != nil || id != allowed {
		t.Fatalf("good token: identity %q, err %v", id, err)
	}
	for name, tok := range map[string]string{
		"wrong audience":              wrongAudience,
		"service account not allowed": otherSA,
		"garbage":                     "not.a.jwt",
		"missing":                     "",
	} {
		id, err := authenticate(tok)
		if !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: identity %q, err %v; want ErrUnauthenticated", name, id, err)
			continue
		}
		if tok != "" && len(tok) > 8 && strings.Contains(err.Error(), tok) {
			t.Errorf("%s: error message contains the token", name)
		}
		t.Logf("%s: rejected: %v", name, err)
	}
	// An allow-list that is empty lets nobody in.
	r := httptest.NewRequest(http.MethodPost, wire.StreamPath, nil)
	r.Header.Set("Authorization", "Bearer "+good)
	if _, err := NewTokenReviewAuth(cs, pushAudience, nil).Authenticate(r); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("empty allow-list: %v", err)
	}

	// The cache is keyed by a hash, never the token.
	auth.mu.Lock()
	for k := range auth.cache {
		if strings.Contains(string(k[:]), good) {
			t.Error("cache key contains the token")
		}
	}
	if len(auth.cache) != 1 {
		t.Errorf("%d cache entries, want 1 (only positive results)", len(auth.cache))
	}
	auth.mu.Unlock()

	// Through the push server: 200 + hello with the good token, 401 without.
	s := NewServer(Options{Auth: auth, Log: testr.New(t), Heartbeat: time.Second})
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() { hs.CloseClientConnections(); hs.Close() })
	rr, code := dial(t, hs.URL, "dp-0", good)
	if code != http.StatusOK {
		t.Fatalf("push stream with a TokenReview'd token: status %d", code)
	}
	if m, err := rr.next(); err != nil || m.Type != wire.TypeHello {
		t.Fatalf("first message %+v, %v", m, err)
	}
	eventually(t, "the identity to be recorded", func() bool { rep, _ := replica(s, "dp-0"); return rep.Identity == allowed })
	if _, code := dial(t, hs.URL, "dp-1", otherSA); code != http.StatusUnauthorized {
		t.Errorf("intruder: status %d, want 401", code)
	}

	// Deleting the service account revokes its tokens; the cached result
	// keeps working for at most TokenReviewCacheTTL.
	if err := cs.CoreV1().ServiceAccounts(ns).Delete(ctx, "dataplane", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := authenticate(good); err != nil {
		t.Errorf("cached token rejected within the TTL: %v", err)
	}
	// Jump past the TTL on every call, so each attempt asks the API server.
	var skew time.Duration
	auth.now = func() time.Time {
		skew += TokenReviewCacheTTL + time.Second
		return time.Now().Add(skew)
	}
	// kube-apiserver itself caches successful token authentications for
	// 10s, so give it a little longer than that.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := authenticate(good)
		if errors.Is(err, ErrUnauthenticated) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revoked token is still accepted after the TTL: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	auth.now = time.Now

	// With the API server gone, an uncached token is a transient error (503,
	// the replica retries), not a 401.
	fresh := token("dataplane", pushAudience)
	stop()
	if _, err := authenticate(fresh); err == nil || errors.Is(err, ErrUnauthenticated) {
		t.Errorf("API server down: err %v, want a transient error", err)
	}
}
