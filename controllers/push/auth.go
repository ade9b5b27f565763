package push

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ErrUnauthenticated is wrapped by every Authenticator error that means "this
// caller is not allowed" (answered 401). Any other error is treated as
// transient (answered 503), e.g. the API server being unreachable.
var ErrUnauthenticated = errors.New("unauthenticated")

// Authenticator decides who is on the other end of a push stream. The routing
// table contains provider credentials, so a stream is only ever opened for an
// authenticated identity.
type Authenticator interface {
	// Authenticate returns the caller's identity (safe to log), or an error
	// wrapping ErrUnauthenticated, or a transient error.
	Authenticate(r *http.Request) (identity string, err error)
}

// bearer extracts the bearer token of r.
func bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", fmt.Errorf("%w: missing bearer token", ErrUnauthenticated)
	}
	return strings.TrimSpace(tok), nil
}

type staticTokenAuth struct{ sum [sha256.Size]byte }

// NewStaticTokenAuth accepts exactly one shared token. It is for `make run`,
// the devstack and tests; clusters use NewTokenReviewAuth. An empty token
// accepts nobody.
func NewStaticTokenAuth(token string) Authenticator {
	if token == "" {
		return denyAll{}
	}
	return &staticTokenAuth{sum: sha256.Sum256([]byte(token))}
}

func (a *staticTokenAuth) Authenticate(r *http.Request) (string, error) {
	tok, err := bearer(r)
	if err != nil {
		return "", err
	}
	// Compare hashes so neither the content nor the length of the token
	// leaks through timing.
	sum := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(sum[:], a.sum[:]) != 1 {
		return "", fmt.Errorf("%w: invalid token", ErrUnauthenticated)
	}
	return "static-token", nil
}

type denyAll struct{}

func (denyAll) Authenticate(*http.Request) (string, error) {
	return "", fmt.Errorf("%w: no credentials are accepted", ErrUnauthenticated)
}

// TokenReviewCacheTTL is how long a positive TokenReview result is reused.
// It bounds how long a revoked token (deleted ServiceAccount or Pod) can
// still open streams; streams already open are not re-checked.
const TokenReviewCacheTTL = time.Minute

const tokenReviewCacheMax = 4096

type tokenReviewAuth struct {
	client   kubernetes.Interface
	audience string
	allowed  []string
	now      func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cachedReview
}

type cachedReview struct {
	identity string
	expires  time.Time
}

// NewTokenReviewAuth authenticates replicas by their projected
// service-account token: it asks the API server (TokenReview) whether the
// token is valid for audience and accepts it only if the user is one of
// allowed ("system:serviceaccount:<namespace>:<name>"). An empty allowed list
// accepts nobody. Positive results are cached for TokenReviewCacheTTL, keyed
// by a SHA-256 of the token (the token itself is never stored).
//
// The controller needs RBAC to create tokenreviews.authentication.k8s.io.
func NewTokenReviewAuth(c kubernetes.Interface, audience string, allowed []string) Authenticator {
	return &tokenReviewAuth{
		client:   c,
		audience: audience,
		allowed:  slices.Clone(allowed),
		now:      time.Now,
		cache:    map[[sha256.Size]byte]cachedReview{},
	}
}

func (a *tokenReviewAuth) Authenticate(r *http.Request) (string, error) {
	tok, err := bearer(r)
	if err != nil {
		return "", err
	}
	key := sha256.Sum256([]byte(tok))
	now := a.now()
	a.mu.Lock()
	if c, ok := a.cache[key]; ok && now.Before(c.expires) {
		a.mu.Unlock()
		return c.identity, nil
	}
	a.mu.Unlock()

	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	tr, err := a.client.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: tok, Audiences: []string{a.audience}},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token review: %w", err)
	}
	st := tr.Status
	if !st.Authenticated {
		if st.Error != "" {
			// The API server's message says why (expired, wrong audience,
			// unknown service account); it does not contain the token.
			return "", fmt.Errorf("%w: %s", ErrUnauthenticated, st.Error)
		}
		return "", fmt.Errorf("%w: token not authenticated", ErrUnauthenticated)
	}
	if !slices.Contains(st.Audiences, a.audience) {
		return "", fmt.Errorf("%w: token is not for audience %q", ErrUnauthenticated, a.audience)
	}
	user := st.User.Username
	if !slices.Contains(a.allowed, user) {
		return "", fmt.Errorf("%w: %s is not allowed to receive routing tables", ErrUnauthenticated, user)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= tokenReviewCacheMax {
		for k, c := range a.cache {
			if !now.Before(c.expires) {
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= tokenReviewCacheMax {
			clear(a.cache)
		}
	}
	a.cache[key] = cachedReview{identity: user, expires: now.Add(TokenReviewCacheTTL)}
	return user, nil
}
