package jwtauthn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// testKeys are signing keys generated per test run, with their public JWKS.
type testKeys struct {
	rsa  *rsa.PrivateKey
	ec   *ecdsa.PrivateKey
	ed   ed25519.PrivateKey
	jwks []byte
}

func newTestKeys(t testing.TB) *testKeys {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, dk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := &testKeys{rsa: rk, ec: ek, ed: dk}
	k.jwks = jwksOf(t, map[string]crypto.PublicKey{"rsa1": &rk.PublicKey, "ec1": &ek.PublicKey, "ed1": dk.Public()})
	return k
}

func jwksOf(t testing.TB, keys map[string]crypto.PublicKey) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for kid, pub := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: pub, KeyID: kid, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sign returns a compact JWT over claims with key, alg and kid.
func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unsigned builds a token with a raw header and no signature ("alg: none").
func unsigned(header string, claims map[string]any) string {
	b, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc(b) + "."
}

const testIssuer = "https://issuer.test"

func TestAuthenticate(t *testing.T) {
	keys := newTestKeys(t)
	other := newTestKeys(t)
	now := time.Unix(1_900_000_000, 0)
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"iss": testIssuer, "sub": "alice", "aud": []string{"orders"}, "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix(), "groups": []string{"admin", "dev"}, "email": "alice@example.com"}
		if mod != nil {
			mod(c)
		}
		return c
	}
	v, err := Compile([]Rule{{
		Policy: "default/orders-jwt", Issuer: testIssuer, Audiences: []string{"orders", "orders-admin"}, JWKS: keys.jwks,
		OutputClaimToHeaders: []ClaimHeader{{Header: "x-user", Claim: "sub"}, {Header: "x-groups", Claim: "groups"}},
		ClockSkew:            30 * time.Second,
	}})
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&keys.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		header     string // Authorization value; "" means absent
		wantResult string // "" means accepted
		wantSub    string
	}{
		{"RS256", "Bearer " + sign(t, jose.RS256, keys.rsa, "rsa1", claims(nil)), "", "alice"},
		{"ES256", "Bearer " + sign(t, jose.ES256, keys.ec, "ec1", claims(nil)), "", "alice"},
		{"EdDSA", "Bearer " + sign(t, jose.EdDSA, keys.ed, "ed1", claims(nil)), "", "alice"},
		{"no kid tries every key", "Bearer " + sign(t, jose.ES256, keys.ec, "", claims(nil)), "", "alice"},
		{"lower-case scheme", "bearer " + sign(t, jose.RS256, keys.rsa, "rsa1", claims(nil)), "", "alice"},
		{"second audience", "Bearer " + sign(t, jose.RS256, keys.rsa, "rsa1", claims(func(c map[string]any) { c["aud"] = "orders-admin" })), "", "alice"},
		{"expired within skew", "Bearer " + sign(t, jose.RS256, keys.rsa, "rsa1", claims(func(c map[string]any) { c["exp"] = now.Add(-20 * time.Second).Unix() })), "", "alice"},
		{"no token", "", "", ""},
		{"other scheme is not a token", "Basic YWxpY2U6cHc=", "", ""},
		{"wrong issuer", "Bearer " + sign(t, jose.RS256, keys.rsa, "rsa1", claims(func(c map[string]any) { c["iss"] = "https://evil.test" })), "unknown_issuer", ""},
		{"wrong audience", "Bearer " + sign(t, jose.RS256, keys.rsa, "rsa1", claims(func(c map[string]any) { c["aud"] = "payments" })), "bad_audience", ""},
		{"no audience", "Bearer " + sign(t, jose.RS256, keys.rsa, "rsa1", claims(func(c map[string]any) { delete(c, "aud") })), "bad_audience", ""},
		{"expired", "Bearer " + sign(t, jose.RS256, keys.rsa, "rsa1", claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), "expired", ""},
		{"not yet valid", "Bearer " + sign(t, jose.RS256, keys.rsa, "rsa1", claims(func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() })), "not_yet_valid", ""},
		{"bad signature (other key, same kid)", "Bearer " + sign(t, jose.RS256, other.rsa, "rsa1", claims(nil)), "bad_signature", ""},
		{"bad signature (no kid)", "Bearer " + sign(t, jose.ES256, other.ec, "", claims(nil)), "bad_signature", ""},
		{"kid of another key type", "Bearer " + sign(t, jose.ES256, keys.ec, "rsa1", claims(nil)), "bad_signature", ""},
		{"unknown kid", "Bearer " + sign(t, jose.RS256, keys.rsa, "nope", claims(nil)), "unknown_kid", ""},
		{"alg none", "Bearer " + unsigned(`{"alg":"none","typ":"JWT"}`, claims(nil)), "bad_algorithm", ""},
		{"alg confusion HS256 with the public key", "Bearer " + sign(t, jose.HS256, pubDER, "rsa1", claims(nil)), "bad_algorithm", ""},
		{"oversized", "Bearer " + strings.Repeat("a", MaxTokenBytes+1), "too_large", ""},
		{"malformed", "Bearer not.a.jwt", "malformed", ""},
		{"empty", "Bearer ", "malformed", ""},
		{"tampered payload", "Bearer " + tamper(sign(t, jose.RS256, keys.rsa, "rsa1", claims(nil))), "bad_signature", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set("Authorization", tt.header)
			}
			h.Set("X-User", "spoofed")
			p, err := v.Authenticate(h, now, nil)
			if h.Get("X-User") == "spoofed" {
				t.Fatal("caller's x-user header survived")
			}
			if tt.wantResult != "" {
				var ae *Error
				if !errors.As(err, &ae) || ae.Result != tt.wantResult {
					t.Fatalf("err = %v, want result %q", err, tt.wantResult)
				}
				if p != nil {
					t.Fatal("principal returned with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantSub == "" {
				if p != nil {
					t.Fatalf("principal %+v for a request without a token", p)
				}
				if h.Get("Authorization") != tt.header {
					t.Fatal("a non-token Authorization header was changed")
				}
				return
			}
			if p.Subject != tt.wantSub || p.Issuer != testIssuer || p.RequestPrincipal() != testIssuer+"/alice" || p.Policy != "default/orders-jwt" {
				t.Fatalf("principal = %+v", p)
			}
			if got := p.Claim("groups"); len(got) != 2 || got[0] != "admin" {
				t.Fatalf("groups = %v", got)
			}
			if h.Get("Authorization") != "" {
				t.Fatal("token forwarded without forwardOriginalToken")
			}
			if h.Get("X-User") != "alice" || h.Get("X-Groups") != "admin,dev" {
				t.Fatalf("claim headers = %q, %q", h.Get("X-User"), h.Get("X-Groups"))
			}
		})
	}
}

// tamper flips the subject in a token's payload, keeping its signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	b = []byte(strings.Replace(string(b), `"alice"`, `"admin"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestAuthenticateHeadersAndForwarding(t *testing.T) {
	keys := newTestKeys(t)
	now := time.Now()
	tok := sign(t, jose.ES256, keys.ec, "ec1", map[string]any{"iss": "batch", "sub": "job-7", "exp": now.Add(time.Minute).Unix()})
	v, err := Compile([]Rule{{Policy: "ns/batch", Issuer: "batch", JWKS: keys.jwks, FromHeaders: []Header{{Name: "x-jwt"}}, ForwardOriginalToken: true}})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"X-Jwt": {tok}}
	p, err := v.Authenticate(h, now, nil)
	if err != nil || p == nil || p.Subject != "job-7" {
		t.Fatalf("p = %+v, err = %v", p, err)
	}
	if h.Get("X-Jwt") != tok {
		t.Fatal("forwardOriginalToken: token was stripped")
	}
	// A token in the default header is not read by a rule reading x-jwt.
	h = http.Header{"Authorization": {"Bearer " + tok}}
	if p, err := v.Authenticate(h, now, nil); p != nil || err != nil {
		t.Fatalf("Authorization read by an x-jwt rule: %+v, %v", p, err)
	}
	// Two values of the token header are refused rather than guessed at.
	h = http.Header{"X-Jwt": {tok, tok}}
	if _, err := v.Authenticate(h, now, nil); err == nil {
		t.Fatal("two token headers accepted")
	}
}

func TestPrincipalContext(t *testing.T) {
	if _, ok := FromContext(context.Background()); ok {
		t.Fatal("principal in an empty context")
	}
	p := &Principal{Issuer: "i", Subject: "s"}
	got, ok := FromContext(NewContext(context.Background(), p))
	if !ok || got != p || got.RequestPrincipal() != "i/s" || got.Principal() != "i/s" {
		t.Fatalf("FromContext = %+v, %v", got, ok)
	}
}

func TestCompileErrors(t *testing.T) {
	keys := newTestKeys(t)
	tests := []struct {
		name string
		rule []Rule
		want string
	}{
		{"no issuer", []Rule{{JWKS: keys.jwks}}, "issuer is required"},
		{"no keys", []Rule{{Issuer: "a"}}, "set jwks or jwksUri"},
		{"both", []Rule{{Issuer: "a", JWKS: keys.jwks, JWKSURI: "https://x/j"}}, "not both"},
		{"bad inline", []Rule{{Issuer: "a", JWKS: []byte(`{"keys":[]}`)}}, "no public signing key"},
		{"dup issuer", []Rule{{Issuer: "a", JWKS: keys.jwks}, {Issuer: "a", JWKS: keys.jwks}}, "appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Compile(tt.rule); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	keys := newTestKeys(b)
	now := time.Now()
	v, err := Compile([]Rule{{Policy: "p", Issuer: testIssuer, Audiences: []string{"orders"}, JWKS: keys.jwks, OutputClaimToHeaders: []ClaimHeader{{Header: "x-user", Claim: "sub"}}}})
	if err != nil {
		b.Fatal(err)
	}
	for _, alg := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		key  any
		kid  string
	}{{"RS256", jose.RS256, keys.rsa, "rsa1"}, {"ES256", jose.ES256, keys.ec, "ec1"}, {"EdDSA", jose.EdDSA, keys.ed, "ed1"}} {
		tok := "Bearer " + sign(b, alg.alg, alg.key, alg.kid, map[string]any{"iss": testIssuer, "sub": "alice", "aud": "orders", "exp": now.Add(time.Hour).Unix()})
		b.Run(alg.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h := http.Header{"Authorization": {tok}}
				if _, err := v.Authenticate(h, now, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("no-token", func(b *testing.B) {
		b.ReportAllocs()
		h := http.Header{"Accept": {"*/*"}}
		for b.Loop() {
			if _, err := v.Authenticate(h, now, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
