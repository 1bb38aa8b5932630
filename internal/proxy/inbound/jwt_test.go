package inbound

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"weft.dev/weft/internal/proxy/jwtauthn"
)

// jwtListener is a Listener with only what authenticate uses.
func jwtListener(t testing.TB, v *jwtauthn.Verifier) *Listener {
	return &Listener{opts: Options{JWT: func() *jwtauthn.Verifier { return v }}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func testVerifier(t testing.TB) (*jwtauthn.Verifier, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k"}}})
	v, err := jwtauthn.Compile([]jwtauthn.Rule{{Policy: "ns/p", Issuer: "iss", JWKS: set}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithHeader("kid", "k"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(map[string]any{"iss": "iss", "sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return v, tok
}

// TestAuthenticateHook checks the inbound hook: 401 with WWW-Authenticate
// for a bad token, the principal in the context for a good one, and a
// request without a token passed on unauthenticated.
func TestAuthenticateHook(t *testing.T) {
	v, tok := testVerifier(t)
	l := jwtListener(t, v)
	tests := []struct {
		name      string
		auth      string
		wantOK    bool
		wantPrinc string
	}{
		{"valid", "Bearer " + tok, true, "iss/alice"},
		{"no token", "", true, ""},
		{"invalid", "Bearer " + tok + "x", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			ok := l.authenticate(w, &r)
			if ok != tt.wantOK {
				t.Fatalf("authenticate = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				if w.Code != http.StatusUnauthorized || w.Header().Get("Www-Authenticate") == "" {
					t.Fatalf("status %d, WWW-Authenticate %q", w.Code, w.Header().Get("Www-Authenticate"))
				}
				return
			}
			p, has := jwtauthn.FromContext(r.Context())
			if tt.wantPrinc == "" {
				if has {
					t.Fatalf("principal %+v without a token", p)
				}
				return
			}
			if !has || p.RequestPrincipal() != tt.wantPrinc {
				t.Fatalf("principal = %+v, %v", p, has)
			}
		})
	}
}

// BenchmarkAuthenticateHook measures the hook's per-request cost without a
// RequestAuthentication, with one and no token, and with a valid token.
func BenchmarkAuthenticateHook(b *testing.B) {
	v, tok := testVerifier(b)
	for _, bc := range []struct {
		name string
		v    *jwtauthn.Verifier
		auth string
	}{{"no-policy", nil, ""}, {"policy-no-token", v, ""}, {"policy-ES256", v, "Bearer " + tok}} {
		b.Run(bc.name, func(b *testing.B) {
			l := jwtListener(b, bc.v)
			w := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			b.ReportAllocs()
			for b.Loop() {
				r := req
				if bc.auth != "" {
					r.Header["Authorization"] = []string{bc.auth}
				}
				if !l.authenticate(w, &r) {
					b.Fatal("refused")
				}
			}
		})
	}
}
