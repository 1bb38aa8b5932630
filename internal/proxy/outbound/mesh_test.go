package outbound

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"weft.dev/weft/internal/proxy/accesslog"
	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/inbound"
	"weft.dev/weft/internal/proxy/tap"
	"weft.dev/weft/internal/proxy/telemetry"
	"weft.dev/weft/internal/proxy/upstream/meshtest"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// grpcProxyLn is the outbound listener the gRPC tests serve on. grpc-go
// reads HTTPS_PROXY through http.ProxyFromEnvironment, which caches the
// environment on first use, so the address is fixed before any test runs.
var grpcProxyLn net.Listener

// grpcListener returns the listener HTTPS_PROXY names, re-opened on the same
// address when an earlier run (-count) closed it.
func grpcListener(t testing.TB) net.Listener {
	if grpcProxyLn != nil {
		ln := grpcProxyLn
		grpcProxyLn = nil
		grpcProxyAddr = ln.Addr().String()
		return ln
	}
	ln, err := net.Listen("tcp", grpcProxyAddr)
	if err != nil {
		t.Skipf("re-opening the HTTPS_PROXY address: %v", err)
	}
	return ln
}

var grpcProxyAddr string

func TestMain(m *testing.M) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	grpcProxyLn = ln
	os.Setenv("HTTPS_PROXY", "http://"+ln.Addr().String())
	os.Setenv("NO_PROXY", "")
	goleak.VerifyTestMain(m)
}

// serve runs a Serve-style function on ln until the test ends.
func serve(t testing.TB, name string, fn func(context.Context, net.Listener) error, ln net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s Serve: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s Serve did not return after cancel", name)
		}
	})
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// echoApp is a workload's app: it answers with what it saw.
func echoApp(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App", name)
		fmt.Fprintf(w, "app=%s host=%s path=%s proto=%d xfcc=%s", name, r.Host, r.URL.Path, r.ProtoMajor, strings.Join(r.Header.Values("X-Forwarded-Client-Cert"), ","))
	})
}

// startApp serves h over HTTP/1.1 and h2c on loopback; it returns the port.
func startApp(t testing.TB, h http.Handler) int {
	ln := listen(t)
	srv := &http.Server{Handler: h, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// testMesh is an in-process mesh: workloads each behind an inbound proxy,
// and the outbound proxy of workload "web" that tests send requests to.
type testMesh struct {
	ca       *meshtest.CA
	provider *config.Static
	services []*weftv1.Service
	eps      map[string]*weftv1.Endpoints
	proxyURL *url.URL
	client   *http.Client
	metrics  *telemetry.Metrics
	reg      *prometheus.Registry
	// sniffTimeout is the outbound's SniffTimeout (0: its default).
	sniffTimeout time.Duration
	// accessLog and tap are the outbound's (observe_test.go).
	accessLog *accesslog.Logger
	tap       *tap.Hub
}

func newMesh(t testing.TB) *testMesh {
	m := &testMesh{ca: meshtest.NewCA(t, "cluster.local"), eps: map[string]*weftv1.Endpoints{}}
	m.provider = config.NewStatic(config.Empty())
	m.reg = prometheus.NewRegistry()
	var err error
	if m.metrics, err = telemetry.New(m.reg); err != nil {
		t.Fatal(err)
	}
	return m
}

// addService declares a service (built on the next commit).
func (m *testMesh) addService(s *weftv1.Service) {
	if s.Namespace == "" {
		s.Namespace = "default"
	}
	m.services = append(m.services, s)
	key := s.Name + "." + s.Namespace
	if m.eps[key] == nil {
		m.eps[key] = &weftv1.Endpoints{Service: s.Name, Namespace: s.Namespace}
	}
}

// addWorkload starts an inbound proxy for a workload of service name with
// the given app port (0 = none) and registers it as an endpoint.
func (m *testMesh) addWorkload(t testing.TB, name string, appPort int) string {
	return m.addWorkloadProto(t, name, appPort, "")
}

// addWorkloadProto is addWorkload for an app speaking proto.
func (m *testMesh) addWorkloadProto(t testing.TB, name string, appPort int, proto inbound.AppProtocol) string {
	in, err := inbound.New(inbound.Options{
		Identity: m.ca.Source(t, "default", name), Metrics: m.metrics,
		ServiceName: name, Namespace: "default", AppPort: appPort, AppProtocol: proto,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	serve(t, "inbound "+name, in.Serve, ln)
	m.addEndpoint(name, ln.Addr().String(), m.ca.ID("default", name).String())
	return ln.Addr().String()
}

func (m *testMesh) addEndpoint(service, addr, id string) {
	key := service + ".default"
	if m.eps[key] == nil {
		m.eps[key] = &weftv1.Endpoints{Service: service, Namespace: "default"}
	}
	m.eps[key].Endpoints = append(m.eps[key].Endpoints, &weftv1.Endpoint{Address: addr, Identity: id})
}

func (m *testMesh) commit(t testing.TB) {
	t.Helper()
	var eps []*weftv1.Endpoints
	for _, e := range m.eps {
		eps = append(eps, e)
	}
	cfg, err := config.Build("test", m.services, eps)
	if err != nil {
		t.Fatal(err)
	}
	m.provider.Store(cfg)
}

// startOutbound starts web's outbound proxy on ln (nil = a new listener).
func (m *testMesh) startOutbound(t testing.TB, ln net.Listener) {
	if ln == nil {
		ln = listen(t)
	}
	out, err := New(Options{
		Provider: m.provider, Identity: m.ca.Source(t, "default", "web"), Metrics: m.metrics,
		ServiceName: "web", Namespace: "default", SniffTimeout: m.sniffTimeout,
		AccessLog: m.accessLog, Tap: m.tap,
	})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, "outbound", out.Serve, ln)
	m.proxyURL = &url.URL{Scheme: "http", Host: ln.Addr().String()}
	tr := &http.Transport{Proxy: http.ProxyURL(m.proxyURL), MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	m.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func (m *testMesh) get(t testing.TB, rawURL string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", rawURL, nil)
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
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func svc(name string, routes ...*weftv1.Route) *weftv1.Service {
	return &weftv1.Service{Name: name, Namespace: "default", Routes: routes}
}

func backend(name string, weight uint32) *weftv1.Backend {
	return &weftv1.Backend{Service: name, Namespace: "default", Weight: weight}
}
