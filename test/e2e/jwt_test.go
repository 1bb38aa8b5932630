package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// signJWT signs claims with key (ES256) under kid.
func signJWT(t *testing.T, key any, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestRequestAuthentication applies docs/security/request-authentication.md
// and checks, through a real client sidecar and the echo app's sidecar,
// that a valid token reaches the app as the configured claim header with
// the token stripped, that invalid tokens get 401 and reach nothing, and
// that a request without a token passes (RequestAuthentication alone does
// not require one) without forged claim headers.
func TestRequestAuthentication(t *testing.T) {
	c := startControl(t)
	echoPort := freePort(t)
	echo := newEchoApp(t, echoPort)
	server := startWorkload(t, c, wlOpts{service: "echo", appPort: echoPort, cmd: []string{"sleep", "3600"}})
	client := startClient(t, c, "client")

	raw, err := os.ReadFile("testdata/jwt-demo-key.json")
	if err != nil {
		t.Fatal(err)
	}
	var demo jose.JSONWebKey
	if err := json.Unmarshal(raw, &demo); err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := func(mod func(map[string]any)) map[string]any {
		m := map[string]any{"iss": "https://issuer.example.com", "sub": "alice", "aud": "echo", "exp": now.Add(time.Hour).Unix()}
		if mod != nil {
			mod(m)
		}
		return m
	}
	valid := signJWT(t, demo.Key, "demo-es256", claims(nil))

	// Before the policy: the token reaches the app untouched.
	eventually(t, 10*time.Second, 100*time.Millisecond, "GET http://echo/ before the policy", func() error {
		r, err := client.get("http://echo/", "Authorization", "Bearer "+valid)
		if err != nil {
			return err
		}
		if r.code != http.StatusOK {
			return fmt.Errorf("status %d: %s", r.code, r.body)
		}
		return nil
	})

	c.apply(docYAML(t, "security/request-authentication.md", docContaining("kind: RequestAuthentication")))
	bad := "Bearer " + signJWT(t, other, "demo-es256", claims(nil))
	eventually(t, 10*time.Second, 100*time.Millisecond, "a badly signed token refused", func() error {
		r, err := client.get("http://echo/", "Authorization", bad)
		if err != nil {
			return err
		}
		if r.code != http.StatusUnauthorized {
			return fmt.Errorf("status %d, want 401", r.code)
		}
		return nil
	})

	enc := base64.RawURLEncoding.EncodeToString
	payload, _ := json.Marshal(claims(nil))
	invalid := []struct{ name, header, result string }{
		{"bad signature", bad, "bad_signature"},
		{"expired", "Bearer " + signJWT(t, demo.Key, "demo-es256", claims(func(m map[string]any) { m["exp"] = now.Add(-time.Hour).Unix() })), "expired"},
		{"wrong audience", "Bearer " + signJWT(t, demo.Key, "demo-es256", claims(func(m map[string]any) { m["aud"] = "payments" })), "bad_audience"},
		{"wrong issuer", "Bearer " + signJWT(t, demo.Key, "demo-es256", claims(func(m map[string]any) { m["iss"] = "https://evil.example.com" })), "unknown_issuer"},
		{"alg none", "Bearer " + enc([]byte(`{"alg":"none"}`)) + "." + enc(payload) + ".", "bad_algorithm"},
		{"malformed", "Bearer abc.def", "malformed"},
	}
	for _, tt := range invalid {
		t.Run("invalid/"+tt.name, func(t *testing.T) {
			echo.reset()
			r, err := client.get("http://echo/", "Authorization", tt.header)
			if err != nil {
				t.Fatal(err)
			}
			if r.code != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("Www-Authenticate"), "Bearer") {
				t.Fatalf("status %d, WWW-Authenticate %q; want 401 Bearer (body %q)", r.code, r.header.Get("Www-Authenticate"), r.body)
			}
			if h := echo.last(); h != nil {
				t.Fatalf("the app received a request with an invalid token: %v", h)
			}
		})
	}

	t.Run("valid token: claims forwarded, token stripped", func(t *testing.T) {
		echo.reset()
		r, err := client.get("http://echo/", "Authorization", "Bearer "+valid, "X-User", "mallory")
		if err != nil {
			t.Fatal(err)
		}
		if r.code != http.StatusOK {
			t.Fatalf("status %d: %s", r.code, r.body)
		}
		h := echo.last()
		if h == nil {
			t.Fatal("the app saw no request")
		}
		if got := h.Values("X-User"); len(got) != 1 || got[0] != "alice" {
			t.Errorf("app saw x-user %q, want [alice]", got)
		}
		if got := h.Get("Authorization"); got != "" {
			t.Errorf("app saw the token %q without forwardOriginalToken", got)
		}
	})

	t.Run("no token: allowed, forged claim header removed", func(t *testing.T) {
		echo.reset()
		r, err := client.get("http://echo/", "X-User", "mallory")
		if err != nil {
			t.Fatal(err)
		}
		if r.code != http.StatusOK {
			t.Fatalf("status %d: %s", r.code, r.body)
		}
		h := echo.last()
		if h == nil {
			t.Fatal("the app saw no request")
		}
		if got := h.Values("X-User"); len(got) != 0 {
			t.Errorf("app saw a forged x-user %q", got)
		}
	})

	t.Run("file jwksUri, custom header, forwarded token", func(t *testing.T) {
		// An air-gapped issuer: the key set is a file on the proxy's host,
		// read by the sidecar's JWKS fetcher when a token first needs it.
		set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &other.PublicKey, KeyID: "batch-1", Use: "sig"}}})
		if err != nil {
			t.Fatal(err)
		}
		path := t.TempDir() + "/batch-jwks.json"
		if err := os.WriteFile(path, set, 0o600); err != nil {
			t.Fatal(err)
		}
		c.apply(`apiVersion: weft.dev/v1alpha1
kind: RequestAuthentication
metadata: {name: echo-batch}
spec:
  targetRef: {name: echo}
  jwtRules:
  - issuer: batch
    jwksUri: file://` + path + `
    fromHeaders: [{name: x-jwt}]
    forwardOriginalToken: true
`)
		tok := signJWT(t, other, "batch-1", map[string]any{"iss": "batch", "sub": "job-7", "exp": now.Add(time.Hour).Unix()})
		eventually(t, 15*time.Second, 100*time.Millisecond, "a batch token accepted", func() error {
			echo.reset()
			r, err := client.get("http://echo/", "X-Jwt", tok)
			if err != nil {
				return err
			}
			if r.code != http.StatusOK {
				return fmt.Errorf("status %d: %s", r.code, r.body)
			}
			return nil
		})
		if h := echo.last(); h == nil || h.Get("X-Jwt") != tok {
			t.Fatalf("forwardOriginalToken: app saw x-jwt %q", h.Get("X-Jwt"))
		}
		// The first rule still holds.
		r, err := client.get("http://echo/", "Authorization", bad)
		if err != nil || r.code != http.StatusUnauthorized {
			t.Fatalf("bad Authorization token after the second policy: %v, %v", r.code, err)
		}
	})

	t.Run("decisions counted", func(t *testing.T) {
		samples, err := server.metrics()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []map[string]string{
			{"policy": "default/echo-jwt", "result": "ok"},
			{"policy": "default/echo-jwt", "result": "bad_signature"},
			{"policy": "default/echo-jwt", "result": "expired"},
			{"policy": "", "result": "unknown_issuer"},
			{"policy": "", "result": "no_token"},
		} {
			if sum(samples, "weft_proxy_jwt_decisions_total", want) < 1 {
				t.Errorf("weft_proxy_jwt_decisions_total%v not counted; have:\n%s", want, describe(samples, "weft_proxy_jwt_decisions_total"))
			}
		}
	})
}
