package dashboard

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/internal/control/apiserver"
	"weft.dev/weft/internal/control/stats"
	"weft.dev/weft/internal/control/xds"
)

const testAdminToken = "admin-secret-token"

// testMesh is a control plane API in miniature: the real stats data API on
// a Store, a fake /api/v1/mesh and resources, behind the admin token, plus
// the dashboard.
type testMesh struct {
	srv   *httptest.Server
	store *stats.Store
}

func startTestMesh(t *testing.T, opts Options) *testMesh {
	t.Helper()
	store := stats.NewStore(stats.StoreOptions{Interval: 10 * time.Second})
	mux := http.NewServeMux()
	authed := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !apiserver.Authorized(r, testAdminToken) {
				http.Error(w, `{"error":"missing or wrong admin token"}`, http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	stats.NewHandler(stats.HandlerOptions{Source: store, Name: "embedded", History: store.History}).Register(mux, authed)
	mux.Handle("GET /api/v1/mesh", authed(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"trustDomain": "cluster.local", "services": []map[string]any{{
			"name": "backend", "namespace": "default", "declared": false,
			"endpoints": []map[string]string{{"workload": "backend-1", "address": "127.0.0.1:1", "identity": "spiffe://cluster.local/ns/default/sa/backend", "version": "v1"}},
		}}})
	})))
	mux.Handle("GET /api/v1/resources/{kind}", authed(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		items := []map[string]any{}
		if r.PathValue("kind") == "httproutes" {
			items = append(items, map[string]any{"kind": "HTTPRoute", "metadata": map[string]string{"name": "backend-split", "namespace": "default"},
				"spec": map[string]any{"parentRefs": []map[string]string{{"name": "backend"}}}})
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": items})
	})))
	mux.Handle("GET /api/v1/tokens", authed(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"secret": "join tokens"})
	})))
	opts.API = mux
	opts.AdminToken = testAdminToken
	if opts.Proxies == nil {
		connected := time.Now().Add(-time.Minute)
		opts.Proxies = func() []xds.ProxyStatus {
			return []xds.ProxyStatus{{ID: "backend-1", Service: "backend", Namespace: "default", Identity: "spiffe://cluster.local/ns/default/sa/backend",
				Connected: connected, Acked: map[string]string{"type.googleapis.com/weft.v1.Service": "7"}}}
		}
		opts.CertExpiry = func(string) time.Time { return time.Now().Add(23 * time.Hour) }
	}
	New(opts).Register(mux)
	m := &testMesh{srv: httptest.NewTLSServer(mux), store: store}
	t.Cleanup(m.srv.Close)
	return m
}

// do sends a request; hdr are header name/value pairs.
func (m *testMesh) do(t *testing.T, method, path, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, m.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := m.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// loginToken mints a login token with the admin token.
func (m *testMesh) loginToken(t *testing.T) string {
	t.Helper()
	resp, body := m.do(t, "POST", "/api/v1/dashboard/logins", "", "Authorization", "Bearer "+testAdminToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("minting a login: %s %s", resp.Status, body)
	}
	var l Login
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		t.Fatal(err)
	}
	tok, ok := strings.CutPrefix(l.Path, "/dashboard/#login=")
	if !ok {
		t.Fatalf("login path %q", l.Path)
	}
	return tok
}

// session logs in like the page does and returns the cookie header.
func (m *testMesh) session(t *testing.T) string {
	t.Helper()
	resp, body := m.do(t, "POST", "/dashboard/session", `{"token":"`+m.loginToken(t)+`"}`, "Origin", m.srv.URL)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %s %s", resp.Status, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == CookieName {
			if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
				t.Errorf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict, Path=/", c)
			}
			return CookieName + "=" + c.Value
		}
	}
	t.Fatalf("login set no %s cookie: %v", CookieName, resp.Header)
	return ""
}

func TestLoginTokens(t *testing.T) {
	m := startTestMesh(t, Options{})
	origin := "Origin"
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		hdr    []string
		want   int
	}{
		{"mint without admin token", "POST", "/api/v1/dashboard/logins", "", nil, 401},
		{"mint with wrong admin token", "POST", "/api/v1/dashboard/logins", "", []string{"Authorization", "Bearer nope"}, 401},
		{"mint with a session cookie only", "POST", "/api/v1/dashboard/logins", "", []string{"Cookie", m.session(t)}, 401},
		{"mint with a too long ttl", "POST", "/api/v1/dashboard/logins", `{"ttl":"2h"}`, []string{"Authorization", "Bearer " + testAdminToken}, 400},
		{"mint with a bad ttl", "POST", "/api/v1/dashboard/logins", `{"ttl":"soon"}`, []string{"Authorization", "Bearer " + testAdminToken}, 400},
		{"login with an unknown token", "POST", "/dashboard/session", `{"token":"made-up"}`, []string{origin, m.srv.URL}, 401},
		{"login with the admin token", "POST", "/dashboard/session", `{"token":"` + testAdminToken + `"}`, []string{origin, m.srv.URL}, 401},
		{"login without a body", "POST", "/dashboard/session", ``, []string{origin, m.srv.URL}, 400},
		{"login from another site", "POST", "/dashboard/session", `{"token":"` + m.loginToken(t) + `"}`, []string{origin, "https://evil.example"}, 403},
		{"login without Origin", "POST", "/dashboard/session", `{"token":"` + m.loginToken(t) + `"}`, nil, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := m.do(t, tt.method, tt.path, tt.body, tt.hdr...)
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s: %s %s, want %d", tt.method, tt.path, resp.Status, body, tt.want)
			}
			if len(resp.Cookies()) != 0 {
				t.Errorf("a refused request set cookies: %v", resp.Cookies())
			}
		})
	}

	t.Run("a login token works once", func(t *testing.T) {
		tok := m.loginToken(t)
		for i, want := range []int{200, 401} {
			if resp, body := m.do(t, "POST", "/dashboard/session", `{"token":"`+tok+`"}`, origin, m.srv.URL); resp.StatusCode != want {
				t.Errorf("login %d: %s %s, want %d", i+1, resp.Status, body, want)
			}
		}
	})
}

func TestLoginTokenExpires(t *testing.T) {
	now := time.Now()
	m := startTestMesh(t, Options{Now: func() time.Time { return now }})
	tok := m.loginToken(t)
	sess := m.session(t)
	now = now.Add(DefaultLoginTTL)
	if resp, body := m.do(t, "POST", "/dashboard/session", `{"token":"`+tok+`"}`, "Origin", m.srv.URL); resp.StatusCode != 401 {
		t.Errorf("login with an expired token: %s %s, want 401", resp.Status, body)
	}
	if resp, _ := m.do(t, "GET", "/dashboard/api/graph", "", "Cookie", sess); resp.StatusCode != 200 {
		t.Errorf("session after %s: %s, want 200", DefaultLoginTTL, resp.Status)
	}
	now = now.Add(SessionTTL)
	if resp, _ := m.do(t, "GET", "/dashboard/api/graph", "", "Cookie", sess); resp.StatusCode != 401 {
		t.Errorf("session after %s: %s, want 401", SessionTTL, resp.Status)
	}
}

func TestDataRoutes(t *testing.T) {
	m := startTestMesh(t, Options{})
	sess := m.session(t)
	tests := []struct {
		name string
		path string
		hdr  []string
		want int
		// in is a string the body must contain.
		in string
	}{
		{"graph without a cookie", "/dashboard/api/graph", nil, 401, "not signed in"},
		{"graph with a wrong cookie", "/dashboard/api/graph", []string{"Cookie", CookieName + "=forged"}, 401, ""},
		{"graph with the admin token as cookie", "/dashboard/api/graph", []string{"Cookie", CookieName + "=" + testAdminToken}, 401, ""},
		{"graph with the admin token as bearer", "/dashboard/api/graph", []string{"Authorization", "Bearer " + testAdminToken}, 401, ""},
		{"graph", "/dashboard/api/graph?window=1m", []string{"Cookie", sess}, 200, `"nodes"`},
		{"graph with a bad window", "/dashboard/api/graph?window=1y", []string{"Cookie", sess}, 400, "window"},
		{"graph from another site", "/dashboard/api/graph", []string{"Cookie", sess, "Sec-Fetch-Site", "cross-site"}, 403, ""},
		{"graph from another origin", "/dashboard/api/graph", []string{"Cookie", sess, "Origin", "https://evil.example"}, 403, ""},
		{"graph from the page", "/dashboard/api/graph", []string{"Cookie", sess, "Sec-Fetch-Site", "same-origin", "Origin", m.srv.URL}, 200, ""},
		{"mesh", "/dashboard/api/mesh", []string{"Cookie", sess}, 200, "backend-1"},
		{"routes", "/dashboard/api/resources/httproutes", []string{"Cookie", sess}, 200, "backend-split"},
		{"a kind the dashboard does not read", "/dashboard/api/resources/meshconfigs", []string{"Cookie", sess}, 404, ""},
		{"join tokens are not forwarded", "/dashboard/api/tokens", []string{"Cookie", sess}, 404, ""},
		{"proxies", "/dashboard/api/proxies", []string{"Cookie", sess}, 200, `"certExpiry"`},
		{"an escaped slash in a service name", "/dashboard/api/services/a%2F..%2F..%2Fmesh", []string{"Cookie", sess}, 400, "invalid"},
		{"a service with no traffic", "/dashboard/api/services/backend", []string{"Cookie", sess}, 404, "no traffic"},
		{"the API itself wants the admin token", "/api/v1/stats/graph", []string{"Cookie", sess}, 401, ""},
		{"demo state outside the demo", "/dashboard/api/demo", []string{"Cookie", sess}, 200, `"enabled":false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := m.do(t, "GET", tt.path, "", tt.hdr...)
			if resp.StatusCode != tt.want || !strings.Contains(body, tt.in) {
				t.Errorf("GET %s: %s %s, want %d with %q", tt.path, resp.Status, body, tt.want, tt.in)
			}
			if resp.StatusCode == 200 && resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("GET %s: Cache-Control %q, want no-store", tt.path, resp.Header.Get("Cache-Control"))
			}
		})
	}
	if resp, body := m.do(t, "POST", "/dashboard/api/demo/break", `{"service":"backend","broken":true}`, "Cookie", sess, "Origin", m.srv.URL); resp.StatusCode != 404 {
		t.Errorf("breaking a service outside the demo: %s %s, want 404", resp.Status, body)
	}
}

func TestAssets(t *testing.T) {
	m := startTestMesh(t, Options{})
	tests := []struct {
		path string
		want int
		in   string
	}{
		{"/dashboard/", 200, "<title>weft dashboard</title>"},
		{"/dashboard/app.js", 200, "weftDashboard"},
		{"/dashboard/app.css", 200, "--bad"},
		{"/dashboard", 302, ""},
		{"/dashboard/../api/v1/mesh", 307, ""},
		{"/dashboard/%2e%2e/dashboard.go", 404, ""},
		{"/dashboard/..%2fdashboard.go", 404, ""},
		{"/dashboard/assets/app.js", 404, ""},
		{"/dashboard/.hidden", 404, ""},
		{"/dashboard/dashboard.go", 404, ""},
		{"/dashboard/%2fetc%2fpasswd", 404, ""},
		{"/dashboard/app.js%00.css", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := m.do(t, "GET", tt.path, "")
			if resp.StatusCode != tt.want || !strings.Contains(body, tt.in) {
				t.Errorf("GET %s: %s %.200s, want %d with %q", tt.path, resp.Status, body, tt.want, tt.in)
			}
			if tt.want == 307 && strings.HasPrefix(resp.Header.Get("Location"), "/dashboard") {
				t.Errorf("GET %s: redirected into the dashboard: %s", tt.path, resp.Header.Get("Location"))
			}
			if tt.want == 200 {
				if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
					t.Errorf("GET %s: Content-Security-Policy %q", tt.path, csp)
				}
			}
		})
	}
}

func TestDemoBreak(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "backend"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := startTestMesh(t, Options{DemoBreakDir: dir})
	sess := m.session(t)
	post := func(body string, hdr ...string) (*http.Response, string) {
		return m.do(t, "POST", "/dashboard/api/demo/break", body, append([]string{"Cookie", sess, "Origin", m.srv.URL}, hdr...)...)
	}
	tests := []struct {
		name, body string
		hdr        []string
		want       int
		file       string
	}{
		{"break", `{"service":"backend","broken":true}`, nil, 200, "0.5\n"},
		{"fix", `{"service":"backend","broken":false}`, nil, 200, "0\n"},
		{"a service the demo cannot break", `{"service":"frontend","broken":true}`, nil, 400, "0\n"},
		{"a path", `{"service":"../backend","broken":true}`, nil, 400, "0\n"},
		{"not JSON", `break it`, nil, 400, "0\n"},
		{"from another site", `{"service":"backend","broken":true}`, []string{"Origin", "https://evil.example"}, 403, "0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(tt.body, tt.hdr...)
			if resp.StatusCode != tt.want {
				t.Errorf("POST %s: %s %s, want %d", tt.body, resp.Status, body, tt.want)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "backend")); string(b) != tt.file {
				t.Errorf("break file %q, want %q", b, tt.file)
			}
		})
	}
	if resp, body := m.do(t, "POST", "/dashboard/api/demo/break", `{"service":"backend","broken":true}`, "Origin", m.srv.URL); resp.StatusCode != 401 {
		t.Errorf("breaking without a session: %s %s, want 401", resp.Status, body)
	}
	if _, body := m.do(t, "GET", "/dashboard/api/demo", "", "Cookie", sess); !strings.Contains(body, `"enabled":true,"breakable":["backend"],"broken":[]`) {
		t.Errorf("demo state: %s", body)
	}
}
