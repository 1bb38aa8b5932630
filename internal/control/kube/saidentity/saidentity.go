// Package saidentity authenticates Kubernetes service-account tokens with
// the TokenReview API: the CA's credential check when weft control runs
// with --identity kubernetes (see docs/kubernetes/identity.md).
package saidentity

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
)

// DefaultAudience is the audience a weft sidecar's projected token must
// carry.
const DefaultAudience = "weft"

// Cache bounds: positive results are kept at most MaxCacheTTL, and never
// past the token's own expiry.
const (
	MaxCacheTTL      = time.Minute
	DefaultCacheTTL  = 30 * time.Second
	DefaultCacheSize = 1024
)

// Pod-bound token claims, as TokenReview reports them in status.user.extra.
const (
	extraPodName = "authentication.kubernetes.io/pod-name"
	extraPodUID  = "authentication.kubernetes.io/pod-uid"
)

const usernamePrefix = "system:serviceaccount:"

// Options configure New.
type Options struct {
	// Audiences the token must be issued for (at least one of them);
	// default [DefaultAudience].
	Audiences []string
	// CacheTTL is how long a positive review is reused (DefaultCacheTTL if
	// zero, at most MaxCacheTTL; negative disables the cache).
	CacheTTL time.Duration
	// CacheSize bounds the cached reviews (DefaultCacheSize if <= 0).
	CacheSize int
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Identity is what a reviewed token proves.
type Identity struct {
	// Namespace and ServiceAccount name the token's service account.
	Namespace      string
	ServiceAccount string
	// PodName and PodUID are set for a pod-bound (projected) token.
	PodName string
	PodUID  string
	// Expires is the token's exp claim; zero if it has none.
	Expires time.Time
}

// Authenticator reviews service-account tokens. It is safe for concurrent
// use.
type Authenticator struct {
	client    kubernetes.Interface
	audiences []string
	ttl       time.Duration
	size      int
	now       func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cached
}

type cached struct {
	id    Identity
	until time.Time
}

// New returns an Authenticator that reviews tokens through client. The
// control plane's credentials need RBAC "create" on
// authentication.k8s.io tokenreviews, and "get" on serviceaccounts for
// ServiceAccountExists.
func New(client kubernetes.Interface, opts Options) (*Authenticator, error) {
	if client == nil {
		return nil, errors.New("saidentity: New without a Kubernetes client")
	}
	a := &Authenticator{client: client, audiences: slices.Clone(opts.Audiences), ttl: opts.CacheTTL, size: opts.CacheSize, now: opts.Now, cache: map[[sha256.Size]byte]cached{}}
	if len(a.audiences) == 0 {
		a.audiences = []string{DefaultAudience}
	}
	for i, aud := range a.audiences {
		if strings.TrimSpace(aud) == "" {
			return nil, fmt.Errorf("saidentity: Options.Audiences[%d] is empty", i)
		}
	}
	switch {
	case a.ttl == 0:
		a.ttl = DefaultCacheTTL
	case a.ttl > MaxCacheTTL:
		return nil, fmt.Errorf("saidentity: Options.CacheTTL %s is longer than %s", a.ttl, MaxCacheTTL)
	}
	if a.size <= 0 {
		a.size = DefaultCacheSize
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

// Authenticate reviews token and returns the service account it proves.
// The token must be authenticated by the API server for one of the
// configured audiences and name a service account
// (system:serviceaccount:<ns>:<sa>, both DNS-1123 labels); a pod-bound
// token must name its pod once. A token the API server or these checks
// refuse is a *Refusal; any other error (API server unreachable,
// forbidden) means the token could not be checked.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (Identity, error) {
	if strings.TrimSpace(token) == "" {
		return Identity{}, refuse(ReasonUnauthenticated, "empty service account token")
	}
	key := sha256.Sum256([]byte(token))
	if id, ok := a.lookup(key); ok {
		return id, nil
	}
	r, err := a.client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: a.audiences},
	}, metav1.CreateOptions{})
	if err != nil {
		return Identity{}, fmt.Errorf("saidentity: TokenReview: %w", err)
	}
	id, err := a.check(&r.Status)
	if err != nil {
		return Identity{}, err
	}
	id.Expires = expiry(token)
	if !id.Expires.IsZero() && !a.now().Before(id.Expires) {
		return Identity{}, refuse(ReasonExpired, "service account token of %s/%s expired at %s", id.Namespace, id.ServiceAccount, id.Expires.Format(time.RFC3339))
	}
	a.store(key, id)
	return id, nil
}

// check applies weft's rules to an API server review.
func (a *Authenticator) check(st *authenticationv1.TokenReviewStatus) (Identity, error) {
	if !st.Authenticated {
		msg := st.Error
		if msg == "" {
			msg = "not authenticated"
		}
		return Identity{}, refuse(ReasonUnauthenticated, "service account token refused by the API server: %s", msg)
	}
	// An API server that ignores spec.audiences answers with none: then
	// the token was checked against the API server's own audience only.
	if !slices.ContainsFunc(st.Audiences, func(s string) bool { return slices.Contains(a.audiences, s) }) {
		return Identity{}, refuse(ReasonAudience, "service account token is for audiences %q, want one of %q", st.Audiences, a.audiences)
	}
	rest, ok := strings.CutPrefix(st.User.Username, usernamePrefix)
	ns, sa, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return Identity{}, refuse(ReasonNotServiceAccount, "token user %q is not a service account (%s<namespace>:<name>)", st.User.Username, usernamePrefix)
	}
	if len(validation.IsDNS1123Label(ns)) != 0 || len(validation.IsDNS1123Label(sa)) != 0 {
		return Identity{}, refuse(ReasonName, "service account %s/%s: both names must be DNS-1123 labels to fit a SPIFFE ID", ns, sa)
	}
	id := Identity{Namespace: ns, ServiceAccount: sa}
	for claim, dst := range map[string]*string{extraPodName: &id.PodName, extraPodUID: &id.PodUID} {
		v, present := st.User.Extra[claim]
		if !present {
			continue
		}
		if len(v) != 1 || v[0] == "" {
			return Identity{}, refuse(ReasonPodBinding, "pod-bound token of %s/%s has %d values of %s, want one", ns, sa, len(v), claim)
		}
		*dst = v[0]
	}
	return id, nil
}

// ServiceAccountExists reports (nil) that ServiceAccount ns/name still
// exists; a missing one is a *Refusal with ReasonServiceAccountGone.
func (a *Authenticator) ServiceAccountExists(ctx context.Context, ns, name string) error {
	_, err := a.client.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return refuse(ReasonServiceAccountGone, "service account %s/%s no longer exists", ns, name)
	case err != nil:
		return fmt.Errorf("saidentity: getting service account %s/%s: %w", ns, name, err)
	}
	return nil
}

// expiry is the exp claim of a JWT, zero if it has none or does not
// parse. It is read only after the API server has verified the token.
func expiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(b, &claims) != nil || claims.Exp == nil {
		return time.Time{}
	}
	sec, err := claims.Exp.Int64()
	if err != nil {
		return time.Time{}
	}
	return time.Unix(sec, 0)
}

func (a *Authenticator) lookup(key [sha256.Size]byte) (Identity, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.cache[key]
	if !ok {
		return Identity{}, false
	}
	if !a.now().Before(c.until) {
		delete(a.cache, key)
		return Identity{}, false
	}
	return c.id, true
}

func (a *Authenticator) store(key [sha256.Size]byte, id Identity) {
	if a.ttl < 0 {
		return
	}
	now := a.now()
	until := now.Add(a.ttl)
	if !id.Expires.IsZero() && id.Expires.Before(until) {
		until = id.Expires
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= a.size {
		for k, c := range a.cache {
			if !now.Before(c.until) {
				delete(a.cache, k)
			}
		}
	}
	if len(a.cache) >= a.size {
		return // full of live entries: review again next time
	}
	a.cache[key] = cached{id: id, until: until}
}
