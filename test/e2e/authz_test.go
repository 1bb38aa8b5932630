package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingApp is an HTTP app in the test process that records the
// request target of every request it receives.
type recordingApp struct {
	port int
	mu   sync.Mutex
	seen []string
}

func startRecordingApp(t *testing.T) *recordingApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &recordingApp{port: ln.Addr().(*net.TCPAddr).Port}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.seen = append(a.seen, r.RequestURI+" x-tenant="+strings.Join(r.Header.Values("X-Tenant"), "|"))
		a.mu.Unlock()
		fmt.Fprintf(w, "app saw %s\n", r.RequestURI)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

// take returns and forgets what the app has received.
func (a *recordingApp) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.seen
	a.seen = nil
	return s
}

func TestAuthorizationPolicy(t *testing.T) {
	c := startControl(t)
	app := startRecordingApp(t)
	web := startWorkload(t, c, wlOpts{service: "web", appPort: app.port, cmd: []string{"sleep", "3600"}})
	plainApp := startRecordingApp(t)
	startWorkload(t, c, wlOpts{service: "plain", appPort: plainApp.port, cmd: []string{"sleep", "3600"}})
	orders := startWorkload(t, c, wlOpts{service: "orders", namespace: "shop", cmd: []string{"sleep", "3600"}})
	ops := startClient(t, c, "ops")
	stranger := startWorkload(t, c, wlOpts{service: "stranger", namespace: "other", cmd: []string{"sleep", "3600"}})
	for _, w := range []*workload{orders, ops, stranger} {
		eventually(t, 15*time.Second, 50*time.Millisecond, w.service+" reaches web", func() error {
			r, err := w.get("http://web.default/api/ping")
			if err != nil {
				return err
			}
			if r.code != http.StatusOK {
				return fmt.Errorf("status %d: %s", r.code, r.body)
			}
			return nil
		})
	}
	app.take()

	c.apply(docYAML(t, "security/authorization-policy.md", docExample("deny-admin")) + "---\n" + docYAML(t, "security/authorization-policy.md", docExample("allow-web")) + "---\n" + docYAML(t, "security/authorization-policy.md", docExample("audit-web")))
	// The policies are in effect when the stranger is refused.
	eventually(t, 15*time.Second, 50*time.Millisecond, "policies in effect", func() error {
		r, err := stranger.get("http://web.default/api/ping")
		if err != nil {
			return err
		}
		if r.code != http.StatusForbidden {
			return fmt.Errorf("stranger got %d, want 403", r.code)
		}
		return nil
	})
	app.take()

	type call struct {
		name   string
		from   *workload
		method string
		path   string
		hdr    []string
		code   int
		body   string // in the response
		appGot string // what the app must have received; "" for nothing
	}
	acme := []string{"x-tenant", "acme"}
	calls := []call{
		{"namespace shop GET /api", orders, "GET", "/api/orders", nil, 200, "", "/api/orders x-tenant="},
		{"namespace shop POST /api: no ALLOW", orders, "POST", "/api/orders", nil, 403, "weft: denied: no ALLOW policy matches", ""},
		{"namespace shop GET /other: no ALLOW", orders, "GET", "/other", nil, 403, "no ALLOW policy matches", ""},
		{"namespace shop GET /admin: DENY", orders, "GET", "/admin", nil, 403, "weft: denied by policy default/web-deny-admin", ""},
		{"identity ops with header", ops, "GET", "/anything", acme, 200, "", "/anything x-tenant=acme"},
		{"identity ops without header", ops, "GET", "/anything", nil, 403, "no ALLOW policy matches", ""},
		{"identity ops other header value", ops, "GET", "/anything", []string{"x-tenant", "evil"}, 403, "", ""},
		{"header repeated with another value", ops, "GET", "/anything", []string{"x-tenant", "acme", "x-tenant", "evil"}, 403, "", ""},
		{"DENY beats ALLOW", ops, "GET", "/admin", acme, 403, "web-deny-admin", ""},
		{"other namespace", stranger, "GET", "/api/orders", nil, 403, "", ""},
		// Path tricks against DENY /admin, from a caller the ALLOW
		// policy lets reach every other path.
		{"//admin", ops, "GET", "//admin", acme, 403, "web-deny-admin", ""},
		{"/a/../admin", ops, "GET", "/a/../admin", acme, 403, "web-deny-admin", ""},
		{"/./admin", ops, "GET", "/./admin", acme, 403, "web-deny-admin", ""},
		{"%2F", ops, "GET", "/%2Fadmin", acme, 403, "web-deny-admin", ""},
		{"%2F inside", ops, "GET", "/x%2F..%2Fadmin", acme, 403, "web-deny-admin", ""},
		{"%5C", ops, "GET", "/x%5C..%5Cadmin", acme, 403, "web-deny-admin", ""},
		{"%2e%2e", ops, "GET", "/x/%2e%2e/admin", acme, 403, "web-deny-admin", ""},
		{"%61", ops, "GET", "/%61dmin/users", acme, 403, "web-deny-admin", ""},
		{";param", ops, "GET", "/admin;jsessionid=1", acme, 403, "web-deny-admin", ""},
		{"%00", ops, "GET", "/admin%00", acme, 400, "", ""},
		{"upper case is another path, forwarded as evaluated", ops, "GET", "/ADMIN", acme, 200, "", "/ADMIN x-tenant=acme"},
		{"forwarded normalised", ops, "GET", "//x/./y/../z?q=1", acme, 200, "", "/x/z?q=1 x-tenant=acme"},
		{"repeated header evaluated joined (acme,acme)", ops, "GET", "/j", []string{"x-tenant", "acme", "x-tenant", "acme"}, 403, "", ""},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://web.default"+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				req.Header.Add(tc.hdr[i], tc.hdr[i+1])
			}
			resp, err := tc.from.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			body := string(b)
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.body) {
				t.Errorf("%s %s from %s: %d %q, want %d containing %q", tc.method, tc.path, tc.from.service, resp.StatusCode, body, tc.code, tc.body)
			}
			got := app.take()
			switch {
			case tc.appGot == "" && len(got) > 0:
				t.Errorf("app received %q, want nothing", got)
			case tc.appGot != "" && (len(got) != 1 || got[0] != tc.appGot):
				t.Errorf("app received %q, want exactly [%q]", got, tc.appGot)
			}
		})
	}

	// Counted on web's proxy, by policy and action; AUDIT never blocks
	// (ops matches it and was allowed).
	for _, labels := range []map[string]string{
		{"policy": "default/web-allow", "action": "ALLOW", "decision": "allow"},
		{"policy": "default/web-deny-admin", "action": "DENY", "decision": "deny"},
		{"policy": "default/web-audit", "action": "AUDIT", "decision": "audit"},
		{"policy": "", "action": "DEFAULT", "decision": "deny"},
	} {
		eventually(t, 5*time.Second, 50*time.Millisecond, "authz decision counted "+fmt.Sprint(labels), func() error {
			m, err := web.metrics()
			if err != nil {
				return err
			}
			if sum(m, "weft_proxy_authz_decisions_total", labels) == 0 {
				return fmt.Errorf("no sample; have:\n%s", describe(m, "weft_proxy_authz_decisions_total"))
			}
			return nil
		})
	}

	// Default deny: plain has no ALLOW policy; under the mesh default
	// DENY nobody reaches it, while web's ALLOW policy still lets shop in.
	if r, err := orders.get("http://plain.default/x"); err != nil || r.code != http.StatusOK {
		t.Fatalf("plain before default deny: %+v %v, want 200", r, err)
	}
	c.apply(docYAML(t, "security/authorization-policy.md", docExample("default-deny")))
	eventually(t, 15*time.Second, 50*time.Millisecond, "default deny in effect", func() error {
		r, err := orders.get("http://plain.default/x")
		if err != nil {
			return err
		}
		if r.code != http.StatusForbidden || !strings.Contains(r.body, "mesh default") {
			return fmt.Errorf("plain: %d %q, want 403 from the mesh default", r.code, r.body)
		}
		return nil
	})
	plainApp.take()
	if r, err := orders.get("http://plain.default/x"); err != nil || r.code != http.StatusForbidden {
		t.Errorf("plain under default deny: %+v %v, want 403", r, err)
	}
	if got := plainApp.take(); len(got) > 0 {
		t.Errorf("plain's app received %q under default deny", got)
	}
	if r, err := orders.get("http://web.default/api/orders"); err != nil || r.code != http.StatusOK {
		t.Errorf("web GET /api from shop under default deny: %+v %v, want 200", r, err)
	}
}
