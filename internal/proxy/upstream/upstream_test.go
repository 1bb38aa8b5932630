package upstream

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.uber.org/goleak"

	"weft.dev/weft/internal/proxy/balancer"
	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/identity"
	"weft.dev/weft/internal/proxy/outlier"
	"weft.dev/weft/internal/proxy/upstream/meshtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func endpoints(n int) []config.Endpoint {
	eps := make([]config.Endpoint, n)
	for i := range eps {
		eps[i] = config.Endpoint{
			Address:  fmt.Sprintf("10.0.0.%d:15006", i+1),
			Identity: spiffeid.RequireFromString("spiffe://cluster.local/ns/default/sa/orders"),
		}
	}
	return eps
}

func TestPick(t *testing.T) {
	ca := meshtest.NewCA(t, "cluster.local")
	eps := endpoints(4)
	for _, tc := range []struct {
		name string
		lb   config.LoadBalancer
	}{{"round-robin", config.RoundRobin}, {"random", config.Random}, {"least-request", config.LeastRequest}} {
		t.Run(tc.name, func(t *testing.T) {
			p := New(Options{Identity: ca.Source(t, "default", "web")})
			counts := map[string]int{}
			const n = 4000
			for range n {
				l, err := p.Pick("orders.default", tc.lb, eps)
				if err != nil {
					t.Fatal(err)
				}
				counts[l.Endpoint.Address]++
				l.Done()
			}
			for _, ep := range eps {
				c := counts[ep.Address]
				if tc.lb == config.RoundRobin && c != n/4 {
					t.Errorf("%s picked %d times, want exactly %d", ep.Address, c, n/4)
				}
				if c < n/4-n/10 || c > n/4+n/10 {
					t.Errorf("%s picked %d times, want about %d", ep.Address, c, n/4)
				}
				if got := p.InFlight(ep.Address); got != 0 {
					t.Errorf("%s in flight = %d after Done, want 0", ep.Address, got)
				}
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		p := New(Options{Identity: ca.Source(t, "default", "web")})
		if _, err := p.Pick("x.default", config.RoundRobin, nil); err != ErrNoEndpoints {
			t.Fatalf("err = %v, want ErrNoEndpoints", err)
		}
	})
}

func TestLeastRequestAvoidsBusyEndpoint(t *testing.T) {
	ca := meshtest.NewCA(t, "cluster.local")
	p := New(Options{Identity: ca.Source(t, "default", "web")})
	eps := endpoints(2)
	// Hold 10 requests on endpoint 0 (picked by its session token).
	for range 10 {
		if l, _ := p.PickWith("orders.default", balancer.Request{Algorithm: config.LeastRequest, Sticky: balancer.Token(eps[0].Address), HasSticky: true}, eps); l.Endpoint.Address != eps[0].Address {
			t.Fatalf("sticky pick got %s", l.Endpoint.Address)
		}
	}
	for range 100 {
		l, _ := p.Pick("orders.default", config.LeastRequest, eps)
		if l.Endpoint.Address != eps[1].Address {
			t.Fatalf("picked busy endpoint %s", l.Endpoint.Address)
		}
		l.Done()
	}
}

// tlsServer accepts mTLS as src with the given ALPN and echoes, for HTTP/1.1,
// the peer's SPIFFE ID.
func tlsServer(t *testing.T, src *identity.Source) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", src.ServerTLS(identity.ALPNHTTP1, identity.ALPNTCP))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := identity.PeerID(r.TLS)
		io.WriteString(w, id.String())
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestHTTP1IdentityChecked(t *testing.T) {
	ca := meshtest.NewCA(t, "cluster.local")
	addr := tlsServer(t, ca.Source(t, "default", "orders"))
	p := New(Options{Identity: ca.Source(t, "default", "web")})
	defer p.Close()

	for _, tc := range []struct {
		name    string
		id      spiffeid.ID
		wantErr string
	}{
		{"expected identity", ca.ID("default", "orders"), ""},
		{"unexpected identity", ca.ID("default", "payments"), "unexpected ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eps := []config.Endpoint{{Address: addr, Identity: tc.id}}
			l, err := p.Pick("orders.default", config.RoundRobin, eps)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Done()
			req, _ := http.NewRequest("GET", "https://"+addr+"/", nil)
			req.Host = "orders"
			resp, err := l.HTTP1().RoundTrip(req)
			if tc.wantErr != "" {
				if err == nil {
					resp.Body.Close()
					t.Fatal("round trip succeeded, want handshake failure")
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := ca.ID("default", "web").String(); string(body) != want {
				t.Fatalf("server saw peer %q, want %q", body, want)
			}
		})
	}
}

func TestPruneClosesDepartedEndpoints(t *testing.T) {
	ca := meshtest.NewCA(t, "cluster.local")
	p := New(Options{Identity: ca.Source(t, "default", "web")})
	eps := endpoints(2)
	for i := range eps {
		l, _ := p.Pick("orders.default", config.Random, eps[i:i+1])
		l.Done()
	}
	cfg := config.Empty()
	cfg.Endpoints["orders.default"] = eps[:1]
	p.Prune(cfg)
	peers := *p.peers.Load()
	if _, ok := peers[eps[0].Address]; !ok {
		t.Error("live endpoint pruned")
	}
	if _, ok := peers[eps[1].Address]; ok {
		t.Error("departed endpoint kept")
	}
}

func TestDialTCPAndPipeHalfClose(t *testing.T) {
	ca := meshtest.NewCA(t, "cluster.local")
	srvSrc := ca.Source(t, "default", "db")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srvSrc.ServerTLS(identity.ALPNTCP))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() { // upper-cases what it reads, then answers after the client half-closes
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		c.Write([]byte(strings.ToUpper(string(b))))
	}()

	p := New(Options{Identity: ca.Source(t, "default", "web")})
	l, _ := p.Pick("db.default", config.RoundRobin, []config.Endpoint{{Address: ln.Addr().String(), Identity: ca.ID("default", "db")}})
	defer l.Done()
	up, err := l.DialTCP(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// down is the app's connection to the proxy: a loopback TCP pair.
	appLn, _ := net.Listen("tcp", "127.0.0.1:0")
	defer appLn.Close()
	app, _ := net.Dial("tcp", appLn.Addr().String())
	down, _ := appLn.Accept()
	pipeDone := make(chan [2]int64)
	go func() {
		u, d := Pipe(context.Background(), down, up)
		pipeDone <- [2]int64{u, d}
	}()
	app.Write([]byte("hello"))
	app.(*net.TCPConn).CloseWrite()
	got, _ := io.ReadAll(app)
	app.Close()
	if string(got) != "HELLO" {
		t.Fatalf("got %q, want HELLO", got)
	}
	select {
	case n := <-pipeDone:
		if n != [2]int64{5, 5} {
			t.Errorf("bytes = %v, want [5 5]", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Pipe did not return")
	}
	<-done
}

func BenchmarkPickEndpoint(b *testing.B) {
	ca := meshtest.NewCA(b, "cluster.local")
	p := New(Options{Identity: ca.Source(b, "default", "web")})
	eps := endpoints(8)
	for _, tc := range []struct {
		name string
		lb   config.LoadBalancer
	}{{"round-robin", config.RoundRobin}, {"random", config.Random}, {"least-request", config.LeastRequest}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					l, _ := p.Pick("orders.default", tc.lb, eps)
					l.Done()
				}
			})
		})
	}
}

// TestPickKeepsOutlierSpec: a plain Pick (a retry's, a tunnel's) feeds the
// outlier detection that the service's last PickWith configured.
func TestPickKeepsOutlierSpec(t *testing.T) {
	ca := meshtest.NewCA(t, "cluster.local")
	p := New(Options{Identity: ca.Source(t, "default", "web")})
	eps := endpoints(2)
	spec := &config.Balancer{Outlier: outlier.Policy{ConsecutiveGatewayErrors: 2, BaseEjection: time.Minute, MaxEjection: time.Minute, MaxEjectionPercent: 50, Interval: time.Minute}}
	l, _ := p.PickWith("orders.default", balancer.Request{Algorithm: config.RoundRobin, Spec: spec}, eps)
	l.Done()
	var bad string
	for range 2 {
		l, _ := p.Pick("orders.default", config.RoundRobin, eps[:1])
		bad = l.Endpoint.Address
		l.Observe(503, nil, time.Millisecond)
		l.Done()
	}
	if got := p.Ejected()["orders.default"]; len(got) != 1 || got[0] != bad {
		t.Fatalf("ejected %v, want [%s]", got, bad)
	}
}

// TestPlaintextEndpoint: an endpoint marked plaintext (a pod without a
// sidecar) is reached over plain TCP with HTTP/1.1, h2c and an opaque
// stream, and the same address as an mTLS endpoint gets a pool of its own.
func TestPlaintextEndpoint(t *testing.T) {
	ca := meshtest.NewCA(t, "cluster.local")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s tls=%v", r.Proto, r.Host, r.TLS != nil)
	}), Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()

	p := New(Options{Identity: ca.Source(t, "default", "web")})
	defer p.Close()
	eps := []config.Endpoint{{Address: addr, Plaintext: true, Workload: "pod/default/legacy-0"}}
	for _, tc := range []struct {
		name string
		rt   func(Lease) http.RoundTripper
		want string
	}{
		{"HTTP/1.1", Lease.HTTP1, "HTTP/1.1 legacy tls=false"},
		{"h2c", Lease.HTTP2, "HTTP/2.0 legacy tls=false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := p.Pick("legacy.default", config.RoundRobin, eps)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Done()
			req, _ := http.NewRequest("GET", "https://"+addr+"/", nil)
			req.Host = "legacy"
			resp, err := tc.rt(l).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != tc.want {
				t.Fatalf("server saw %q, want %q", body, tc.want)
			}
		})
	}
	t.Run("TCP", func(t *testing.T) {
		l, _ := p.Pick("legacy.default", config.RoundRobin, eps)
		defer l.Done()
		c, err := l.DialTCP(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: raw\r\nConnection: close\r\n\r\n")
		b, _ := io.ReadAll(c)
		if !strings.Contains(string(b), "HTTP/1.1 raw tls=false") {
			t.Fatalf("opaque stream got %q", b)
		}
	})
	t.Run("an mTLS endpoint at the same address is another peer", func(t *testing.T) {
		plain := p.peer(&eps[0])
		meshed := p.peer(&config.Endpoint{Address: addr, Identity: ca.ID("default", "legacy")})
		if plain == meshed || meshed.plaintext || p.peer(&eps[0]) == meshed {
			t.Fatal("a plaintext and an mTLS endpoint at one address share a pool")
		}
	})
}
