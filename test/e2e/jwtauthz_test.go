package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// jwtAuthzPolicy requires a verified token for /public and the verified
// claim group=admin for anything else.
const jwtAuthzPolicy = `
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata:
  name: echo-by-token
spec:
  targetRef: {kind: Service, name: echo}
  action: ALLOW
  rules:
  - from: [{requestPrincipals: ["https://issuer.example.com/*"]}]
    to: [{paths: ["/public"]}]
  - when: [{key: "request.auth.claims[group]", values: [admin]}]
`

// TestJWTAuthorization: with a RequestAuthentication and an
// AuthorizationPolicy on the same service, the policy sees the verified
// token's principal and claims — and only verified ones: no token, or a
// token whose claims are forged in headers, is denied (403), an invalid
// token is refused before the policy (401), and what is allowed reaches
// the app.
func TestJWTAuthorization(t *testing.T) {
	c := startControl(t)
	echoPort := freePort(t)
	echo := newEchoApp(t, echoPort)
	startWorkload(t, c, wlOpts{service: "echo", appPort: echoPort, cmd: []string{"sleep", "3600"}})
	client := startClient(t, c, "client")

	raw, err := os.ReadFile("testdata/jwt-demo-key.json")
	if err != nil {
		t.Fatal(err)
	}
	var demo jose.JSONWebKey
	if err := json.Unmarshal(raw, &demo); err != nil {
		t.Fatal(err)
	}
	token := func(sub string, extra map[string]any) string {
		m := map[string]any{"iss": "https://issuer.example.com", "sub": sub, "aud": "echo", "exp": time.Now().Add(time.Hour).Unix()}
		for k, v := range extra {
			m[k] = v
		}
		return "Bearer " + signJWT(t, demo.Key, "demo-es256", m)
	}
	c.apply(docYAML(t, "security/request-authentication.md", docContaining("kind: RequestAuthentication")))
	c.apply(jwtAuthzPolicy)

	alice, admin := token("alice", nil), token("root", map[string]any{"group": "admin"})
	// The policy is in force once a request without a token is denied.
	eventually(t, 10*time.Second, 100*time.Millisecond, "the policy in force", func() error {
		r, err := client.get("http://echo/public")
		if err != nil {
			return err
		}
		if r.code != http.StatusForbidden {
			return fmt.Errorf("GET /public without a token: %d, want 403", r.code)
		}
		return nil
	})
	tests := []struct {
		name, path string
		hdr        []string
		want       int
	}{
		{"no token, public", "/public", nil, http.StatusForbidden},
		{"verified principal, public", "/public", []string{"Authorization", alice}, http.StatusOK},
		{"verified principal without the claim, secret", "/secret", []string{"Authorization", alice}, http.StatusForbidden},
		{"verified claim group=admin, secret", "/secret", []string{"Authorization", admin}, http.StatusOK},
		{"claim forged in a header, secret", "/secret", []string{"Authorization", alice, "X-User", "root", "Group", "admin"}, http.StatusForbidden},
		{"invalid token", "/public", []string{"Authorization", "Bearer abc.def"}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			echo.reset()
			r, err := client.get("http://echo"+tt.path, tt.hdr...)
			if err != nil {
				t.Fatal(err)
			}
			if r.code != tt.want {
				t.Fatalf("GET %s: %d %q, want %d", tt.path, r.code, r.body, tt.want)
			}
			if reached := echo.last() != nil; reached != (tt.want == http.StatusOK) {
				t.Fatalf("the app received the request: %v, want %v", reached, tt.want == http.StatusOK)
			}
		})
	}
}
