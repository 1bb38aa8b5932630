package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// backendServed is how many requests the backend's inbound proxy has
// answered.
func backendServed(t *testing.T, w *workload) float64 {
	t.Helper()
	ms, err := w.metrics()
	if err != nil {
		t.Fatal(err)
	}
	return sum(ms, "http_server_request_duration_seconds_count", map[string]string{"destination_service": destService("backend")})
}

// startAuthz starts the external authorization service of TestExternalAuth:
// an HTTP server in the test process, behind `weft run` as service authz.
// It allows a check (200, x-auth-user: alice) when it carries x-user:
// alice and a path under /check/, and denies every other (403). It counts
// the checks it answers; stop closes it.
func startAuthz(t *testing.T, c *control) (checks *atomic.Int64, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	checks = new(atomic.Int64)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checks.Add(1)
		if r.Header.Get("X-User") == "alice" && len(r.URL.Path) > len("/check/") && r.URL.Path[:len("/check/")] == "/check/" {
			w.Header().Set("X-Auth-User", "alice")
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="test"`)
		http.Error(w, "denied by authz", http.StatusForbidden)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	startWorkload(t, c, wlOpts{service: "authz", appPort: port, cmd: []string{"sleep", "3600"}, waitApp: true})
	return checks, func() { srv.Close() }
}

// TestExternalAuth applies the external authorization page's example
// verbatim, with an auth service allowing x-user: alice. 200 requests as
// alice reach the backend with the auth service's x-auth-user: alice on
// them (a caller's own x-auth-user replaced); 200 requests as bob or
// anonymous get 403 with x-weft-reason external-auth-denied and the auth
// service's WWW-Authenticate, and none reaches the backend; with the auth
// service's app down, 100 requests get 503 external-auth-unavailable and
// none reaches the backend.
func TestExternalAuth(t *testing.T) {
	c := startControl(t)
	bp := freePort(t)
	backend := startWorkload(t, c, wlOpts{service: "backend", appPort: bp, cmd: backendCmd(bp, "v1"), waitApp: true})
	checks, stopAuthz := startAuthz(t, c)
	client := startClient(t, c, "client")
	c.apply(docYAML(t, "traffic/external-auth.md", docExample("extauth-route")))

	eventually(t, 10*time.Second, 50*time.Millisecond, "the route checks with authz", func() error {
		r, err := client.get("http://backend/echo/x", "x-user", "bob")
		if err != nil {
			return err
		}
		if r.code != http.StatusForbidden {
			return fmt.Errorf("bob: %d, want 403", r.code)
		}
		return nil
	})

	const n = 200
	t.Run("allowed", func(t *testing.T) {
		checksBefore, servedBefore := checks.Load(), backendServed(t, backend)
		bad := 0
		var first string
		for i := range n {
			hdr := []string{"x-user", "alice"}
			if i%2 == 1 {
				hdr = append(hdr, "x-auth-user", "mallory") // replaced by authz's
			}
			r, err := client.get("http://backend/echo/orders?id=1", hdr...)
			if err != nil {
				t.Fatal(err)
			}
			var echo struct {
				Path   string              `json:"path"`
				Header map[string][]string `json:"header"`
			}
			if r.code == http.StatusOK {
				if err := json.Unmarshal([]byte(r.body), &echo); err != nil {
					t.Fatal(err)
				}
			}
			if got := echo.Header["X-Auth-User"]; r.code != http.StatusOK || len(got) != 1 || got[0] != "alice" || echo.Path != "/echo/orders" {
				bad++
				if first == "" {
					first = fmt.Sprintf("%d %s", r.code, r.body)
				}
			}
		}
		if bad > 0 {
			t.Errorf("%d of %d allowed requests did not reach the backend with x-auth-user: alice, first: %s", bad, n, first)
		}
		if got := checks.Load() - checksBefore; got != n {
			t.Errorf("authz answered %d checks, want %d", got, n)
		}
		eventually(t, 5*time.Second, 50*time.Millisecond, "the backend counts the allowed requests", func() error {
			if got := backendServed(t, backend) - servedBefore; got != n {
				return fmt.Errorf("backend served %v, want %d", got, n)
			}
			return nil
		})
	})

	t.Run("denied", func(t *testing.T) {
		servedBefore := backendServed(t, backend)
		bob := burst(client, "http://backend/echo/x", n/2, 4, "x-user", "bob")
		anon := burst(client, "http://backend/echo/x", n/2, 4)
		for what, os := range map[string][]outcome{"bob": bob, "anonymous": anon} {
			if got, err := countOutcomes(os, http.StatusForbidden, "external-auth-denied"); got != len(os) {
				t.Errorf("%s: %d of %d requests got 403 external-auth-denied (first error %v)", what, got, len(os), err)
			}
		}
		r, err := client.get("http://backend/echo/x", "x-user", "bob")
		if err != nil {
			t.Fatal(err)
		}
		if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="test"` {
			t.Errorf("denied answer's WWW-Authenticate %q, want authz's", got)
		}
		if got := backendServed(t, backend) - servedBefore; got != 0 {
			t.Errorf("backend served %v denied requests, want 0", got)
		}
	})

	t.Run("auth down", func(t *testing.T) {
		stopAuthz()
		servedBefore := backendServed(t, backend)
		os := burst(client, "http://backend/echo/x", n/2, 4, "x-user", "alice")
		if got, err := countOutcomes(os, http.StatusServiceUnavailable, "external-auth-unavailable"); got != len(os) {
			t.Errorf("%d of %d requests got 503 external-auth-unavailable (first error %v)", got, len(os), err)
		}
		if got := backendServed(t, backend) - servedBefore; got != 0 {
			t.Errorf("backend served %v requests with the auth service down, want 0", got)
		}
	})
}

// grpcAuthz is an Envoy ext_authz server allowing x-user: alice.
type grpcAuthz struct {
	authv3.UnimplementedAuthorizationServer
	checks atomic.Int64
}

// Check implements authv3.AuthorizationServer.
func (g *grpcAuthz) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	g.checks.Add(1)
	h := req.GetAttributes().GetRequest().GetHttp()
	if h.GetHeaders()["x-user"] == "alice" && h.GetPath() == "/echo/orders?id=1" {
		return &authv3.CheckResponse{Status: &rpcstatus.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-auth-user", Value: "alice"}}}}}}, nil
	}
	return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)}, HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized}, Body: "denied by ext_authz"}}}, nil
}

// TestExternalAuthGRPC applies the page's GRPC example verbatim, with an
// Envoy ext_authz server (behind `weft run --app-protocol grpc`) allowing
// x-user: alice: 100 requests as alice reach the backend with the
// server's x-auth-user: alice; 100 as bob get its 401 with
// external-auth-denied and none reaches the backend; with the server
// stopped, 100 requests get 503 external-auth-unavailable and none reaches
// the backend.
func TestExternalAuthGRPC(t *testing.T) {
	c := startControl(t)
	bp := freePort(t)
	backend := startWorkload(t, c, wlOpts{service: "backend", appPort: bp, cmd: backendCmd(bp, "v1"), waitApp: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	authz := &grpcAuthz{}
	srv := grpc.NewServer()
	authv3.RegisterAuthorizationServer(srv, authz)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	startWorkload(t, c, wlOpts{service: "authz", appPort: ln.Addr().(*net.TCPAddr).Port, appProtocol: "grpc", cmd: []string{"sleep", "3600"}})
	client := startClient(t, c, "client")
	c.apply(docYAML(t, "traffic/external-auth.md", docExample("extauth-grpc")))

	eventually(t, 10*time.Second, 50*time.Millisecond, "the route checks with authz", func() error {
		r, err := client.get("http://backend/echo/orders?id=1", "x-user", "bob")
		if err != nil {
			return err
		}
		if r.code != http.StatusUnauthorized {
			return fmt.Errorf("bob: %d %s, want 401", r.code, r.body)
		}
		return nil
	})
	const n = 100
	servedBefore, checksBefore := backendServed(t, backend), authz.checks.Load()
	bad := 0
	var first string
	for range n {
		r, err := client.get("http://backend/echo/orders?id=1", "x-user", "alice", "x-auth-user", "mallory")
		if err != nil {
			t.Fatal(err)
		}
		var echo struct {
			Header map[string][]string `json:"header"`
		}
		json.Unmarshal([]byte(r.body), &echo)
		if got := echo.Header["X-Auth-User"]; r.code != http.StatusOK || len(got) != 1 || got[0] != "alice" {
			bad++
			if first == "" {
				first = fmt.Sprintf("%d %s", r.code, r.body)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d allowed requests did not reach the backend with x-auth-user: alice, first: %s", bad, n, first)
	}
	if got := authz.checks.Load() - checksBefore; got != n {
		t.Errorf("authz answered %d checks, want %d", got, n)
	}
	eventually(t, 5*time.Second, 50*time.Millisecond, "the backend counts the allowed requests", func() error {
		if got := backendServed(t, backend) - servedBefore; got != n {
			return fmt.Errorf("backend served %v, want %d", got, n)
		}
		return nil
	})

	servedBefore = backendServed(t, backend)
	os := burst(client, "http://backend/echo/orders?id=1", n, 4, "x-user", "bob")
	if got, err := countOutcomes(os, http.StatusUnauthorized, "external-auth-denied"); got != n {
		t.Errorf("bob: %d of %d requests got 401 external-auth-denied (first error %v)", got, n, err)
	}
	srv.Stop()
	os = burst(client, "http://backend/echo/orders?id=1", n, 4, "x-user", "alice")
	if got, err := countOutcomes(os, http.StatusServiceUnavailable, "external-auth-unavailable"); got != n {
		t.Errorf("auth down: %d of %d requests got 503 external-auth-unavailable (first error %v)", got, n, err)
	}
	if got := backendServed(t, backend) - servedBefore; got != 0 {
		t.Errorf("backend served %v denied or unchecked requests, want 0", got)
	}
}
