package apiserver

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"weft.dev/weft/internal/control/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "s3cret"

const good = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {selector: {app: web}, ports: [{name: http, port: 80}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
---
apiVersion: weft.dev/v1alpha1
kind: MeshConfig
metadata: {name: default}
spec: {}
`

func newServer(t *testing.T) (*httptest.Server, *store.Bolt) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "weft.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(st, token, slog.New(slog.DiscardHandler), Options{TrustDomain: "cluster.local"}))
	t.Cleanup(func() {
		srv.Close()
		st.Close()
	})
	return srv, st
}

func do(t *testing.T, srv *httptest.Server, method, path, body, tok string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return resp.StatusCode, string(b)
}

func TestAPI(t *testing.T) {
	srv, st := newServer(t)
	tests := []struct {
		name, method, path, body string
		wantCode                 int
		wantBody                 string // substring
	}{
		{"apply", "POST", "/api/v1/apply", good, 200, `"action": "created"`},
		{"apply again", "POST", "/api/v1/apply", good, 200, `"action": "unchanged"`},
		{"apply bad field", "POST", "/api/v1/apply", good + "---\napiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {selector: {a: b}, ports: [{port: 0}]}\n",
			400, `document 4: Service \"x\": spec.ports[0].port: must be between 1 and 65535`},
		{"apply empty", "POST", "/api/v1/apply", "# nothing\n", 400, `no objects to apply`},
		{"list all", "GET", "/api/v1/resources/svc", "", 200, `"namespace": "shop"`},
		{"list ns", "GET", "/api/v1/resources/services?namespace=other", "", 200, `"items": []`},
		{"get", "GET", "/api/v1/resources/httproute/default/web", "", 200, `"kind": "HTTPRoute"`},
		{"get default ns", "GET", "/api/v1/resources/httproutes/web", "", 200, `"resourceVersion": "1"`},
		{"get cluster-scoped", "GET", "/api/v1/resources/meshconfig/default", "", 200, `"trustDomain": "cluster.local"`},
		{"get missing", "GET", "/api/v1/resources/svc/shop/nope", "", 404, `Service \"nope\" not found in namespace \"shop\"`},
		{"unknown kind", "GET", "/api/v1/resources/pods", "", 404, `unknown kind \"pods\"`},
		{"delete", "DELETE", "/api/v1/resources/svc/shop/web", "", 200, `"deleted"`},
		{"delete again", "DELETE", "/api/v1/resources/svc/shop/web", "", 404, `not found`},
		{"delete cluster-scoped", "DELETE", "/api/v1/resources/mc/default", "", 200, `"MeshConfig"`},
		{"no endpoint", "GET", "/api/v1/nothing", "", 404, `no API endpoint`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, srv, tt.method, tt.path, tt.body, token)
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Errorf("%s %s = %d %s\nwant %d containing %s", tt.method, tt.path, code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
	// The rejected apply stored nothing: only the first apply and two
	// deletes changed the store.
	if st.Revision() != 3 {
		t.Errorf("Revision = %d, want 3", st.Revision())
	}
}

func TestApplyResponse(t *testing.T) {
	srv, _ := newServer(t)
	_, body := do(t, srv, "POST", "/api/v1/apply", good, token)
	var resp ApplyResponse
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{Kind: "Service", Namespace: "shop", Name: "web", Action: "created"},
		{Kind: "HTTPRoute", Namespace: "default", Name: "web", Action: "created"},
		{Kind: "MeshConfig", Name: "default", Action: "created"},
	}
	if diff := cmp.Diff(want, resp.Changes); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

func TestAuth(t *testing.T) {
	srv, _ := newServer(t)
	for _, tok := range []string{"", "wrong", token + "x"} {
		code, body := do(t, srv, "GET", "/api/v1/resources/svc", "", tok)
		if code != http.StatusUnauthorized || !strings.Contains(body, "admin token") {
			t.Errorf("token %q: %d %s, want 401", tok, code, body)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	if Authorized(r, "") {
		t.Error("empty token authorizes")
	}
	r.Header.Set("Authorization", "Basic "+token)
	if Authorized(r, token) {
		t.Error("non-Bearer scheme authorizes")
	}
}
