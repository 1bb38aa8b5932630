package inbound

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"weft.dev/weft/internal/proxy/authz"
	"weft.dev/weft/internal/proxy/identity"
	"weft.dev/weft/internal/proxy/upstream/meshtest"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// denyAdmin denies /admin, /admin/* and host evil.example, and allows the
// rest.
func denyAdmin(t *testing.T) *authz.View {
	set, err := authz.Compile([]*weftv1.AuthzPolicy{{
		Name: "default/deny-admin", Action: weftv1.AuthzPolicy_DENY,
		Rules: []*weftv1.AuthzRule{
			{To: []*weftv1.AuthzTo{{Paths: []string{"/admin", "/admin/*"}}}},
			{To: []*weftv1.AuthzTo{{Hosts: []string{"evil.example"}}}},
			{From: []*weftv1.AuthzFrom{{Namespaces: []string{"blocked"}}}},
		},
	}}, false)
	if err != nil {
		t.Fatal(err)
	}
	return authz.NewView(func() *authz.Set { return set }, nil)
}

// serveAuthz starts an inbound listener for app (host:port) with the
// policies of denyAdmin; it returns the listener's address and the CA.
func serveAuthz(t *testing.T, appAddr string, proto AppProtocol) (string, *meshtest.CA) {
	t.Helper()
	ca := meshtest.NewCA(t, "cluster.local")
	_, port, _ := net.SplitHostPort(appAddr)
	appPort, _ := strconv.Atoi(port)
	l, err := New(Options{Identity: ca.Source(t, "default", "web"), ServiceName: "web", Namespace: "default", AppPort: appPort, AppProtocol: proto, Authz: denyAdmin(t)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- l.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })
	return ln.Addr().String(), ca
}

// TestAuthorizeHTTP1Raw sends crafted request heads over mTLS: each is
// denied (or refused) before the app sees it, or forwarded with the path
// it was evaluated with.
func TestAuthorizeHTTP1Raw(t *testing.T) {
	var got atomic.Value
	var hits atomic.Int32
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		got.Store(r.RequestURI)
		io.WriteString(w, "ok")
	}))
	defer app.Close()
	addr, ca := serveAuthz(t, app.Listener.Addr().String(), AppHTTP1)
	tests := []struct {
		name, target, host string
		peerNS             string
		status             int
		forwarded          string // "" when the app must get nothing
	}{
		{"plain", "/x", "web", "default", 200, "/x"},
		{"admin", "/admin", "web", "default", 403, ""},
		{"double slash", "//admin", "web", "default", 403, ""},
		{"dot dot", "/a/../admin", "web", "default", 403, ""},
		{"encoded slash", "/%2Fadmin", "web", "default", 403, ""},
		{"encoded backslash", "/x%5C..%5Cadmin", "web", "default", 403, ""},
		{"encoded dots", "/x/%2e%2e/admin/users", "web", "default", 403, ""},
		{"param", "/admin;a=b", "web", "default", 403, ""},
		{"nul", "/admin%00", "web", "default", 400, ""},
		{"fragment", "/admin#frag", "web", "default", 400, ""},
		{"mixed-case host", "/x", "EVIL.Example:8080", "default", 403, ""},
		{"peer namespace", "/x", "web", "blocked", 403, ""},
		{"forwarded as evaluated", "/x//y/./z/../w;p?q=1", "web", "default", 200, "/x/y/w?q=1"},
		{"encoded letter forwarded decoded", "/%61pi", "web", "default", 200, "/api"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hits.Store(0)
			client := ca.Source(t, tc.peerNS, "caller")
			c, err := tls.Dial("tcp", addr, client.ClientTLS(ca.ID("default", "web"), identity.ALPNHTTP1))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "GET "+tc.target+" HTTP/1.1\r\nHost: "+tc.host+"\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d %q, want %d", resp.StatusCode, body, tc.status)
			}
			if tc.status == 403 && !strings.Contains(string(body), "weft: denied by policy default/deny-admin") {
				t.Errorf("body %q, want the policy named", body)
			}
			switch {
			case tc.forwarded == "" && hits.Load() != 0:
				t.Errorf("app received %d requests, want none", hits.Load())
			case tc.forwarded != "" && (hits.Load() != 1 || got.Load() != tc.forwarded):
				t.Errorf("app received %d requests, last %v; want one, %q", hits.Load(), got.Load(), tc.forwarded)
			}
		})
	}
}

// TestAuthorizeGRPC: a denied gRPC call gets HTTP 200 with grpc-status 7
// and never reaches the app.
func TestAuthorizeGRPC(t *testing.T) {
	var hits atomic.Int32
	app := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	app.Config.Protocols = new(http.Protocols)
	app.Config.Protocols.SetUnencryptedHTTP2(true)
	app.Start()
	defer app.Close()
	addr, ca := serveAuthz(t, app.Listener.Addr().String(), AppGRPC)
	c, err := tls.Dial("tcp", addr, ca.Source(t, "default", "caller").ClientTLS(ca.ID("default", "web"), identity.ALPNHTTP2))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := (&http2.Transport{}).NewClientConn(c)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	req, _ := http.NewRequest("POST", "https://web/admin/Delete", strings.NewReader("\x00\x00\x00\x00\x00"))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Grpc-Status") != "7" || !strings.Contains(resp.Header.Get("Grpc-Message"), "deny-admin") {
		t.Errorf("response %d grpc-status %q grpc-message %q; want 200, 7 (PERMISSION_DENIED), the policy named", resp.StatusCode, resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message"))
	}
	if hits.Load() != 0 {
		t.Errorf("app received %d calls, want none", hits.Load())
	}
}

// TestAuthorizeTCP: a weft-tcp stream from a denied peer is closed before
// the app is even dialled; an allowed one is piped.
func TestAuthorizeTCP(t *testing.T) {
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted, bytesIn atomic.Int64
	go func() {
		for {
			c, err := appLn.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				n, _ := c.Read(buf)
				bytesIn.Add(int64(n))
				c.Write(buf[:n])
			}()
		}
	}()
	defer appLn.Close()
	addr, ca := serveAuthz(t, appLn.Addr().String(), AppTCP)
	for _, tc := range []struct {
		ns      string
		allowed bool
	}{{"blocked", false}, {"default", true}} {
		accepted.Store(0)
		bytesIn.Store(0)
		c, err := tls.Dial("tcp", addr, ca.Source(t, tc.ns, "caller").ClientTLS(ca.ID("default", "web"), identity.ALPNTCP))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "hello")
		b, err := io.ReadAll(c)
		c.Close()
		if tc.allowed {
			if string(b) != "hello" {
				t.Errorf("%s: echoed %q (%v), want hello", tc.ns, b, err)
			}
			continue
		}
		if len(b) != 0 || accepted.Load() != 0 || bytesIn.Load() != 0 {
			t.Errorf("%s: read %q; app accepted %d connections, %d bytes; want the stream closed and nothing at the app", tc.ns, b, accepted.Load(), bytesIn.Load())
		}
	}
}
