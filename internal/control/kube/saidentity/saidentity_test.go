package saidentity

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"weft.dev/weft/internal/testkube"
)

// mint requests a token of ns/sa for aud, bound to ref if set.
func mint(t *testing.T, cs kubernetes.Interface, ns, sa, aud string, ref *authenticationv1.BoundObjectReference) string {
	t.Helper()
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{aud}, BoundObjectRef: ref},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token request %s/%s (audience %q): %v", ns, sa, aud, err)
	}
	return tr.Status.Token
}

func TestAuthenticate(t *testing.T) {
	s := testkube.StartAPIServer(t)
	cs := s.Clientset()
	ctx := context.Background()
	s.Namespace(t, "ns1")
	for _, sa := range []string{"a", "b", "gone"} {
		s.ServiceAccount(t, "ns1", sa)
	}
	// A Secret and a Pod to bind tokens to.
	sec, err := cs.CoreV1().Secrets("ns1").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bound"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods("ns1").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "ns1"},
		Spec:       corev1.PodSpec{ServiceAccountName: "a", Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	tokA := mint(t, cs, "ns1", "a", "weft", nil)
	tokB := mint(t, cs, "ns1", "b", "weft", nil)
	tokPod := mint(t, cs, "ns1", "a", "weft", &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID})
	tokOther := mint(t, cs, "ns1", "a", "other", nil)
	tokSecret := mint(t, cs, "ns1", "b", "weft", &authenticationv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: sec.Name, UID: sec.UID})
	tokGone := mint(t, cs, "ns1", "gone", "weft", nil)
	tokCustom := mint(t, cs, "ns1", "a", "mesh.example", nil)

	// The bound Secret is deleted: its token is refused as an expired one
	// would be (TokenRequest cannot mint tokens shorter than 10 minutes).
	if err := cs.CoreV1().Secrets("ns1").Delete(ctx, sec.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().ServiceAccounts("ns1").Delete(ctx, "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	a, err := New(cs, Options{CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		auth    *Authenticator
		token   string
		wantNS  string
		wantSA  string
		wantPod string
		reason  Reason
	}{
		{name: "sa a", token: tokA, wantNS: "ns1", wantSA: "a"},
		{name: "sa b", token: tokB, wantNS: "ns1", wantSA: "b"},
		{name: "pod-bound", token: tokPod, wantNS: "ns1", wantSA: "a", wantPod: "web-0"},
		{name: "wrong audience", token: tokOther, reason: ReasonUnauthenticated},
		{name: "tampered", token: tokA[:len(tokA)-6] + "AAAAAA", reason: ReasonUnauthenticated},
		{name: "garbage", token: "not-a-token", reason: ReasonUnauthenticated},
		{name: "empty", token: " ", reason: ReasonUnauthenticated},
		{name: "bound secret deleted", token: tokSecret, reason: ReasonUnauthenticated},
		{name: "service account deleted", token: tokGone, reason: ReasonUnauthenticated},
		{name: "configured audience", auth: mustNew(t, cs, Options{Audiences: []string{"mesh.example"}}), token: tokCustom, wantNS: "ns1", wantSA: "a"},
		{name: "weft token, other configured audience", auth: mustNew(t, cs, Options{Audiences: []string{"mesh.example"}}), token: tokA, reason: ReasonUnauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			auth := tc.auth
			if auth == nil {
				auth = a
			}
			id, err := auth.Authenticate(ctx, tc.token)
			if tc.reason != "" {
				if got := ReasonOf(err); got != tc.reason {
					t.Fatalf("Authenticate: err = %v (reason %q), want reason %q", err, got, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if id.Namespace != tc.wantNS || id.ServiceAccount != tc.wantSA || id.PodName != tc.wantPod {
				t.Errorf("identity = %+v, want %s/%s pod %q", id, tc.wantNS, tc.wantSA, tc.wantPod)
			}
			if tc.wantPod != "" && id.PodUID != string(pod.UID) {
				t.Errorf("pod uid = %q, want %q", id.PodUID, pod.UID)
			}
			if until := time.Until(id.Expires); until < 5*time.Minute || until > 2*time.Hour {
				t.Errorf("expires = %s (in %s), want the token's exp about an hour ahead", id.Expires, until)
			}
		})
	}

	t.Run("service account exists", func(t *testing.T) {
		if err := a.ServiceAccountExists(ctx, "ns1", "a"); err != nil {
			t.Errorf("ServiceAccountExists(ns1/a): %v", err)
		}
		if err := a.ServiceAccountExists(ctx, "ns1", "gone"); ReasonOf(err) != ReasonServiceAccountGone {
			t.Errorf("ServiceAccountExists(ns1/gone): err = %v, want reason %q", err, ReasonServiceAccountGone)
		}
	})

	t.Run("cache", func(t *testing.T) {
		now := time.Now()
		c := mustNew(t, cs, Options{CacheTTL: 20 * time.Second, Now: func() time.Time { return now }})
		s.ServiceAccount(t, "ns1", "cached")
		tok := mint(t, cs, "ns1", "cached", "weft", nil)
		if _, err := c.Authenticate(ctx, tok); err != nil {
			t.Fatalf("first review: %v", err)
		}
		if err := cs.CoreV1().ServiceAccounts("ns1").Delete(ctx, "cached", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		// The API server keeps positive reviews for ~10 s itself: wait
		// until an uncached review refuses the token.
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := a.Authenticate(ctx, tok)
			if ReasonOf(err) == ReasonUnauthenticated {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("token of deleted service account still accepted after 30s: %v", err)
			}
			time.Sleep(500 * time.Millisecond)
		}
		// Within the TTL the positive review is reused...
		now = now.Add(19 * time.Second)
		if id, err := c.Authenticate(ctx, tok); err != nil || id.ServiceAccount != "cached" {
			t.Fatalf("cached review: %+v, %v", id, err)
		}
		// ...after it, the API server is asked again and refuses.
		now = now.Add(2 * time.Second)
		if _, err := c.Authenticate(ctx, tok); ReasonOf(err) != ReasonUnauthenticated {
			t.Fatalf("review after TTL: err = %v, want reason %q", err, ReasonUnauthenticated)
		}
	})

	t.Run("unreachable API server is not a refusal", func(t *testing.T) {
		cfg := s.RESTConfig()
		cfg.Host = "https://127.0.0.1:1"
		cfg.Timeout = 2 * time.Second
		bad, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = mustNew(t, bad, Options{}).Authenticate(ctx, tokA)
		if err == nil || ReasonOf(err) != "" {
			t.Fatalf("Authenticate via unreachable server: err = %v (reason %q), want a non-refusal error", err, ReasonOf(err))
		}
	})
}

func mustNew(t *testing.T, cs kubernetes.Interface, o Options) *Authenticator {
	t.Helper()
	a, err := New(cs, o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestCheck covers the rules applied to a review the API server accepted.
func TestCheck(t *testing.T) {
	a := &Authenticator{audiences: []string{"weft"}}
	user := func(name string, extra map[string]authenticationv1.ExtraValue) authenticationv1.UserInfo {
		return authenticationv1.UserInfo{Username: name, Extra: extra}
	}
	tests := []struct {
		name   string
		st     authenticationv1.TokenReviewStatus
		reason Reason
	}{
		{"ok", authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"x", "weft"}, User: user("system:serviceaccount:ns1:a", nil)}, ""},
		{"not authenticated", authenticationv1.TokenReviewStatus{Authenticated: false, Error: "bad"}, ReasonUnauthenticated},
		{"no audiences", authenticationv1.TokenReviewStatus{Authenticated: true, User: user("system:serviceaccount:ns1:a", nil)}, ReasonAudience},
		{"other audience", authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"api"}, User: user("system:serviceaccount:ns1:a", nil)}, ReasonAudience},
		{"a user", authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"weft"}, User: user("alice", nil)}, ReasonNotServiceAccount},
		{"no name", authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"weft"}, User: user("system:serviceaccount:ns1", nil)}, ReasonNotServiceAccount},
		{"dotted name", authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"weft"}, User: user("system:serviceaccount:ns1:a.b", nil)}, ReasonName},
		{"extra colon", authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"weft"}, User: user("system:serviceaccount:ns1:a:b", nil)}, ReasonName},
		{"two pods", authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"weft"}, User: user("system:serviceaccount:ns1:a", map[string]authenticationv1.ExtraValue{extraPodName: {"p", "q"}})}, ReasonPodBinding},
		{"empty pod", authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"weft"}, User: user("system:serviceaccount:ns1:a", map[string]authenticationv1.ExtraValue{extraPodName: {""}})}, ReasonPodBinding},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.check(&tc.st)
			if got := ReasonOf(err); got != tc.reason || (tc.reason == "" && err != nil) {
				t.Fatalf("check: err = %v (reason %q), want reason %q", err, got, tc.reason)
			}
		})
	}
}

func TestNewOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"empty audience", Options{Audiences: []string{"weft", ""}}, "Audiences[1]"},
		{"long cache", Options{CacheTTL: 2 * time.Minute}, "CacheTTL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(kubernetes.New(nil), tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: err = %v, want one naming %s", err, tc.want)
			}
		})
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Fatal("New(nil client): no error")
	}
}

func TestExpiry(t *testing.T) {
	tests := []struct {
		token string
		want  time.Time
	}{
		{"h." + b64(`{"exp":1700000000}`) + ".s", time.Unix(1700000000, 0)},
		{"h." + b64(`{"sub":"x"}`) + ".s", time.Time{}},
		{"h.!!!.s", time.Time{}},
		{"opaque", time.Time{}},
	}
	for _, tc := range tests {
		if got := expiry(tc.token); !got.Equal(tc.want) {
			t.Errorf("expiry(%q) = %s, want %s", tc.token, got, tc.want)
		}
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
