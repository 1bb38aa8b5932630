package outbound

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/internal/proxy/inbound"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// startUpstream serves upstream u of web's outbound proxy on a new
// listener and returns its address.
func (m *testMesh) startUpstream(t *testing.T, u Upstream) string {
	t.Helper()
	out, err := New(Options{Provider: m.provider, Identity: m.ca.Source(t, "default", "web"), Metrics: m.metrics, ServiceName: "web", Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	serve(t, "upstream", func(ctx context.Context, ln net.Listener) error { return out.ServeUpstream(ctx, ln, u) }, ln)
	return ln.Addr().String()
}

// readBanner connects to a, reads the server's greeting, sends msg and
// half-closes, and returns everything it read.
func readBanner(t *testing.T, a, msg string) string {
	t.Helper()
	c, err := net.Dial("tcp", a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, msg)
	c.(*net.TCPConn).CloseWrite()
	b, _ := io.ReadAll(c)
	return string(b)
}

// TestServeUpstream: an upstream listener forwards raw TCP to the service
// (a server-first app greets first), splits connections by the service's
// TCPRoute, counts them as listener="upstream" by the backend they went
// to, and closes at once a connection to a service it does not know.
func TestServeUpstream(t *testing.T) {
	m := newMesh(t)
	m.addService(&weftv1.Service{Name: "db", Namespace: "default", TcpRoutes: []*weftv1.TcpRoute{
		{Name: "default/split", Port: 5432, Backends: []*weftv1.Backend{backend("db-v1", 3), backend("db-v2", 1), backend("db-v3", 0)}},
	}})
	m.addService(svc("db-v1"))
	m.addService(svc("db-v2"))
	m.addService(svc("db-v3"))
	m.addWorkloadProto(t, "db-v1", tcpApp(t, "v1:"), inbound.AppTCP)
	m.addWorkloadProto(t, "db-v2", tcpApp(t, "v2:"), inbound.AppTCP)
	m.addWorkloadProto(t, "db-v3", tcpApp(t, "v3:"), inbound.AppTCP)
	m.commit(t)
	a := m.startUpstream(t, Upstream{Service: "db", Port: 5432})
	other := m.startUpstream(t, Upstream{Service: "db", Port: 6000}) // no route on this port
	unknown := m.startUpstream(t, Upstream{Service: "nosuch", Port: 1})

	const n = 200
	counts := map[string]int{}
	for range n {
		got := readBanner(t, a, "select")
		v, rest, _ := strings.Cut(got, ":")
		if rest != "SELECT" {
			t.Fatalf("got %q, want a greeting then SELECT", got)
		}
		counts[v]++
	}
	if counts["v3"] != 0 || counts["v1"]+counts["v2"] != n || counts["v1"] < 120 || counts["v1"] > 180 {
		t.Fatalf("connections by backend %v: want 75%% ± 15 to v1, none to v3 (weight 0)", counts)
	}
	if got := readBanner(t, other, "x"); got != "" {
		t.Fatalf("port 6000 (no route, no workload of db): got %q, want the connection closed", got)
	}
	if got := readBanner(t, unknown, "x"); got != "" {
		t.Fatalf("unknown service: got %q, want the connection closed", got)
	}
	// Counted when each connection closes, after readBanner returned.
	deadline := time.Now().Add(5 * time.Second)
	for {
		v1 := m.counter(t, "weft_tcp_connections_opened_total", "upstream", "db-v1.default")
		c1 := m.counter(t, "weft_tcp_connections_total", "upstream", "db-v1.default")
		up := m.counter(t, "weft_tcp_bytes_total", "upstream", "db-v1.default", "upstream")
		down := m.counter(t, "weft_tcp_bytes_total", "upstream", "db-v1.default", "downstream")
		want := float64(counts["v1"])
		if v1 == want && c1 == want && up == want*float64(len("select")) && down == want*float64(len("v1:SELECT")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upstream db-v1.default: opened %v, closed %v, bytes up %v down %v; want %v connections of 6 bytes up, 9 down", v1, c1, up, down, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// counter is the value of the counter name with labels listener,
// destination_service and, if given, direction (0 when absent).
func (m *testMesh) counter(t *testing.T, name, listener, dest string, direction ...string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"listener": listener, "destination_service": dest}
	if len(direction) > 0 {
		want["direction"] = direction[0]
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if v, ok := want[lp.GetName()]; ok && v != lp.GetValue() {
					continue metrics
				}
			}
			return mt.GetCounter().GetValue()
		}
	}
	return 0
}

// TestServeUpstreamDeadEndpoint: with one endpoint of the service not
// listening, every connection still reaches the live one (a connect
// failure moves on to another endpoint) and the dead one is ejected by
// outlier detection.
func TestServeUpstreamDeadEndpoint(t *testing.T) {
	m := newMesh(t)
	m.addService(&weftv1.Service{Name: "db", Namespace: "default", OutlierDetection: &weftv1.OutlierDetection{ConsecutiveConnectFailures: 2, BaseEjectionMs: 30000, MaxEjectionMs: 60000, MaxEjectionPercent: 100, IntervalMs: 1000}})
	m.addWorkloadProto(t, "db", tcpApp(t, "live:"), inbound.AppTCP)
	dead := listen(t)
	deadAddr := dead.Addr().String()
	dead.Close()
	m.addEndpoint("db", deadAddr, m.ca.ID("default", "db").String())
	m.commit(t)
	out, err := New(Options{Provider: m.provider, Identity: m.ca.Source(t, "default", "web"), Metrics: m.metrics, ServiceName: "web", Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	serve(t, "upstream", func(ctx context.Context, ln net.Listener) error {
		return out.ServeUpstream(ctx, ln, Upstream{Service: "db", Port: 5432})
	}, ln)
	for i := range 20 {
		if got := readBanner(t, ln.Addr().String(), "q"); got != "live:Q" {
			t.Fatalf("connection %d: got %q, want live:Q", i, got)
		}
	}
	if ej := out.Ejected()["db.default"]; len(ej) != 1 || ej[0] != deadAddr {
		t.Fatalf("ejected %v, want [%s]", out.Ejected(), deadAddr)
	}
}

// TestServeUpstreamConnCap: past MaxConns open connections, a new one is
// closed at once; once one closes, connections are accepted again.
func TestServeUpstreamConnCap(t *testing.T) {
	m := newMesh(t)
	m.addService(svc("db"))
	m.addWorkloadProto(t, "db", tcpApp(t, "hi:"), inbound.AppTCP)
	m.commit(t)
	out, err := New(Options{Provider: m.provider, Identity: m.ca.Source(t, "default", "web"), ServiceName: "web", Namespace: "default", MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	serve(t, "upstream", func(ctx context.Context, ln net.Listener) error {
		return out.ServeUpstream(ctx, ln, Upstream{Service: "db", Port: 5432})
	}, ln)
	held, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	held.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(held, make([]byte, 3)); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	if got := readBanner(t, ln.Addr().String(), "x"); got != "" {
		t.Fatalf("second connection at the cap: got %q, want it closed", got)
	}
	held.Close()
	deadline := time.Now().Add(5 * time.Second)
	for readBanner(t, ln.Addr().String(), "x") != "hi:X" {
		if time.Now().After(deadline) {
			t.Fatal("no connection accepted after the held one closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkTCPBackend is the per-connection cost of choosing the backend:
// with no TCPRoute, and with an 80/20 one.
func BenchmarkTCPBackend(b *testing.B) {
	m := newMesh(b)
	m.addService(svc("plain"))
	m.addService(&weftv1.Service{Name: "db", Namespace: "default", TcpRoutes: []*weftv1.TcpRoute{
		{Name: "default/split", Backends: []*weftv1.Backend{backend("db-v1", 80), backend("db-v2", 20)}},
	}})
	m.commit(b)
	l, err := New(Options{Provider: m.provider, Identity: m.ca.Source(b, "default", "web"), ServiceName: "web", Namespace: "default"})
	if err != nil {
		b.Fatal(err)
	}
	cfg := m.provider.Load()
	for _, name := range []string{"plain", "db"} {
		s := cfg.Services[name+".default"]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := l.tcpBackend(s, 5432); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
