package outbound

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/internal/proxy/extauth"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// authMesh is a mesh where requests to "api" are checked with "authz",
// whose app is h.
func authMesh(t *testing.T, a *weftv1.ExternalAuth, h http.Handler) *testMesh {
	m := newMesh(t)
	a.Service, a.Namespace = "authz", "default"
	m.addService(svc("api", &weftv1.Route{Name: "default/api/0", Backends: []*weftv1.Backend{backend("api", 1)}, ExternalAuth: a}))
	m.addService(svc("authz"))
	m.addWorkload(t, "api", startApp(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Saw-User", r.Header.Get("X-Auth-User"))
		w.Write(b)
	})))
	m.addWorkload(t, "authz", startApp(t, h))
	m.commit(t)
	m.startOutbound(t, nil)
	return m
}

func post(t *testing.T, m *testMesh, body string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("POST", "http://api/x", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := m.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestExternalAuthOutcomes: the check carries the prefixed path, the
// allowed headers and the body; an allowing answer's header reaches the
// app and the app gets the whole body; a body over the limit is refused
// with 413; a denial is passed on; a slow auth service times out into 503.
func TestExternalAuthOutcomes(t *testing.T) {
	type check struct{ path, user, secret, body string }
	got := make(chan check, 8)
	release := make(chan struct{})
	m := authMesh(t, &weftv1.ExternalAuth{Path: "/auth", AllowedHeaders: []string{"x-user"}, AllowedResponseHeaders: []string{"x-auth-user"}, MaxBodyBytes: 16, TimeoutMs: 300},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			got <- check{r.URL.Path, r.Header.Get("X-User"), r.Header.Get("X-Secret"), string(b)}
			switch r.Header.Get("X-User") {
			case "alice":
				w.Header().Set("X-Auth-User", "alice")
			case "slow":
				select {
				case <-release:
				case <-time.After(time.Second):
				}
			default:
				http.Error(w, "no", http.StatusUnauthorized)
			}
		}))
	t.Cleanup(func() { close(release) })

	code, body, h := post(t, m, "hello", "x-user", "alice", "x-secret", "s")
	if code != http.StatusOK || body != "hello" || h.Get("X-Saw-User") != "alice" {
		t.Errorf("allowed: %d %q, app saw x-auth-user %q", code, body, h.Get("X-Saw-User"))
	}
	if c := <-got; c != (check{"/auth/x", "alice", "", "hello"}) {
		t.Errorf("check request %+v", c)
	}

	code, _, h = post(t, m, "hello", "x-user", "bob")
	if code != http.StatusUnauthorized || h.Get(ReasonHeader) != extauth.ReasonDenied {
		t.Errorf("denied: %d %q", code, h.Get(ReasonHeader))
	}
	<-got

	code, _, h = post(t, m, strings.Repeat("x", 17), "x-user", "alice")
	if code != http.StatusRequestEntityTooLarge || h.Get(ReasonHeader) != extauth.ReasonBodyTooLarge {
		t.Errorf("long body: %d %q", code, h.Get(ReasonHeader))
	}

	start := time.Now()
	code, _, h = post(t, m, "", "x-user", "slow")
	if took := time.Since(start); code != http.StatusServiceUnavailable || h.Get(ReasonHeader) != extauth.ReasonUnavailable || took > 900*time.Millisecond {
		t.Errorf("slow auth service: %d %q after %v, want 503 %s within the 300ms timeout", code, h.Get(ReasonHeader), took, extauth.ReasonUnavailable)
	}
}

// TestBackendRefFilters: an ExternalAuth filter on a backendRef checks only
// the requests picked for that backend, and a backendRef's CORS filter
// answers preflights for it.
func TestBackendRefFilters(t *testing.T) {
	m := newMesh(t)
	m.addService(svc("api", &weftv1.Route{Name: "default/api/0", Backends: []*weftv1.Backend{{Service: "api", Namespace: "default", Weight: 1,
		ExternalAuth: &weftv1.ExternalAuth{Service: "authz", Namespace: "default"},
		Cors:         &weftv1.CORSPolicy{AllowOrigins: []string{"https://a.example"}, AllowMethods: []string{"PUT"}}}}}))
	m.addService(svc("authz"))
	m.addWorkload(t, "api", startApp(t, echoApp("api")))
	m.addWorkload(t, "authz", startApp(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "ok" {
			w.WriteHeader(http.StatusForbidden)
		}
	})))
	m.commit(t)
	m.startOutbound(t, nil)

	if code, _, h := m.get(t, "http://api/x"); code != http.StatusForbidden || h.Get(ReasonHeader) != extauth.ReasonDenied {
		t.Errorf("without credentials: %d %q, want 403 %s", code, h.Get(ReasonHeader), extauth.ReasonDenied)
	}
	if code, _, _ := m.get(t, "http://api/x", "Authorization", "ok"); code != http.StatusOK {
		t.Errorf("with credentials: %d, want 200", code)
	}
	req, _ := http.NewRequest("OPTIONS", "http://api/x", nil)
	req.Header.Set("Origin", "https://a.example")
	req.Header.Set("Access-Control-Request-Method", "PUT")
	resp, err := m.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://a.example" || resp.Header.Get("Access-Control-Allow-Methods") != "PUT" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}
