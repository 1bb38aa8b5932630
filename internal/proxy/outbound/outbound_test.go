package outbound

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/http2"

	"weft.dev/weft/internal/proxy/identity"
	"weft.dev/weft/internal/proxy/inbound"
	"weft.dev/weft/internal/proxy/upstream/meshtest"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

func TestHTTPAcrossTwoProxies(t *testing.T) {
	m := newMesh(t)
	m.addService(svc("orders"))
	m.addWorkload(t, "orders", startApp(t, echoApp("orders")))
	m.commit(t)
	m.startOutbound(t, nil)

	wantXFCC := "xfcc=By=spiffe://cluster.local/ns/default/sa/orders;URI=spiffe://cluster.local/ns/default/sa/web"
	for _, tc := range []struct {
		name, url string
		hdr       []string
		want      string
	}{
		{"absolute form by name", "http://orders/hello", nil, "app=orders host=orders path=/hello proto=1 " + wantXFCC},
		{"qualified name and port", "http://orders.default.svc.cluster.local:80/x", nil, "host=orders.default.svc.cluster.local:80 path=/x"},
		{"forged xfcc stripped", "http://orders/", []string{"X-Forwarded-Client-Cert", "By=evil;URI=spiffe://cluster.local/ns/default/sa/admin"}, wantXFCC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := m.get(t, tc.url, tc.hdr...)
			if code != 200 || !strings.Contains(body, tc.want) {
				t.Fatalf("got %d %q, want 200 containing %q", code, body, tc.want)
			}
		})
	}

	t.Run("origin form with Host", func(t *testing.T) {
		c, err := net.Dial("tcp", m.proxyURL.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /origin HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(body), "path=/origin") {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
	})

	t.Run("h2c prior knowledge", func(t *testing.T) {
		tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", m.proxyURL.Host)
		}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("http://orders/h2")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "path=/h2 proto=2 "+wantXFCC) {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
	})

	t.Run("HTTP/1.1 inside CONNECT", func(t *testing.T) {
		c, br := connect(t, m.proxyURL.Host, "orders:80")
		defer c.Close()
		fmt.Fprintf(c, "GET /tunnelled HTTP/1.1\r\nHost: orders\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "path=/tunnelled") {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
	})

	if n := testutil.CollectAndCount(m.reg, "http_client_request_duration_seconds"); n == 0 {
		t.Error("no client metrics recorded")
	}
	if n := testutil.CollectAndCount(m.reg, "http_server_request_duration_seconds"); n == 0 {
		t.Error("no server metrics recorded")
	}
}

// connect opens a CONNECT tunnel to target through the proxy.
func connect(t testing.TB, proxy, target string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT %s: %s", target, resp.Status)
	}
	return c, br
}

func TestErrors(t *testing.T) {
	m := newMesh(t)
	m.addService(svc("empty"))
	m.addService(svc("api", &weftv1.Route{Name: "api-only",
		Matches:  []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Value: "/api"}}},
		Backends: []*weftv1.Backend{backend("api", 1)}}))
	m.addWorkload(t, "api", startApp(t, echoApp("api")))
	m.addService(svc("noapp"))
	m.addWorkload(t, "noapp", 0)
	m.addService(svc("down"))
	down := listen(t)
	downPort := down.Addr().(*net.TCPAddr).Port
	down.Close() // nothing listens there now
	m.addWorkload(t, "down", downPort)
	m.addService(svc("gone"))
	m.addEndpoint("gone", "127.0.0.1:1", m.ca.ID("default", "gone").String())
	m.commit(t)
	m.startOutbound(t, nil)

	for _, tc := range []struct {
		name, url string
		code      int
		body      string
	}{
		{"no endpoints", "http://empty/", 503, "weft: no healthy endpoints for empty.default\n"},
		{"no matching route", "http://api/other", 404, "weft: no route for /other on api.default\n"},
		{"matching route", "http://api/api/v1", 200, "app=api"},
		{"no app port", "http://noapp/", 503, "weft: this workload has no --app-port\n"},
		{"app down", "http://down/", 503, "weft: local app unreachable: "},
		{"peer unreachable", "http://gone/", 502, "weft: upstream gone.default at 127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := m.get(t, tc.url)
			if code != tc.code || !strings.Contains(body, tc.body) {
				t.Fatalf("got %d %q, want %d containing %q", code, body, tc.code, tc.body)
			}
		})
	}
}

func TestPeerIdentityChecked(t *testing.T) {
	m := newMesh(t)
	m.addService(svc("payments"))
	// payments' endpoint is really the orders workload: its certificate
	// says sa/orders, not sa/payments.
	imposter := m.addWorkload(t, "orders", startApp(t, echoApp("orders")))
	m.addEndpoint("payments", imposter, m.ca.ID("default", "payments").String())
	m.commit(t)
	m.startOutbound(t, nil)

	code, body, _ := m.get(t, "http://payments/")
	if code != 502 || !strings.Contains(body, "unexpected ID") {
		t.Fatalf("got %d %q, want 502 naming the unexpected ID", code, body)
	}
}

func TestInboundRefusesUnauthenticated(t *testing.T) {
	m := newMesh(t)
	addr := m.addWorkload(t, "orders", startApp(t, echoApp("orders")))

	t.Run("plaintext", func(t *testing.T) {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("plaintext request answered with %s, want connection failure", resp.Status)
		}
	})
	t.Run("other trust domain", func(t *testing.T) {
		other := meshtest.NewCA(t, "evil.local")
		src := other.Source(t, "default", "web")
		// Trust the real mesh so only the client side is foreign.
		c, err := tls.Dial("tcp", addr, src.ClientTLS(m.ca.ID("default", "orders"), identity.ALPNHTTP1))
		if err == nil {
			// TLS 1.3: the server's verdict arrives with the first read.
			c.Write([]byte("GET / HTTP/1.1\r\nHost: orders\r\n\r\n"))
			_, err = c.Read(make([]byte, 1))
			c.Close()
		}
		if err == nil {
			t.Fatal("foreign trust domain accepted")
		}
	})
}

func TestRouting(t *testing.T) {
	m := newMesh(t)
	m.addService(svc("orders",
		&weftv1.Route{Name: "canary-header",
			Matches:  []*weftv1.RouteMatch{{Headers: []*weftv1.HeaderMatch{{Name: "x-canary", Value: "1"}}}},
			Backends: []*weftv1.Backend{backend("orders-v2", 1)}},
		&weftv1.Route{Name: "split", Backends: []*weftv1.Backend{backend("orders", 80), backend("orders-v2", 20)}},
	))
	m.addService(svc("orders-v2"))
	m.addWorkload(t, "orders", startApp(t, echoApp("orders")))
	m.addWorkload(t, "orders-v2", startApp(t, echoApp("orders-v2")))
	m.commit(t)
	m.startOutbound(t, nil)

	t.Run("header match", func(t *testing.T) {
		for range 10 {
			_, _, h := m.get(t, "http://orders/", "X-Canary", "1")
			if got := h.Get("X-App"); got != "orders-v2" {
				t.Fatalf("x-canary request served by %q, want orders-v2", got)
			}
		}
	})
	t.Run("weighted split", func(t *testing.T) {
		const n = 400
		counts := map[string]int{}
		for range n {
			_, _, h := m.get(t, "http://orders/")
			counts[h.Get("X-App")]++
		}
		if v2 := counts["orders-v2"]; v2 < n*10/100 || v2 > n*30/100 {
			t.Fatalf("orders-v2 got %d of %d requests, want about 20%%: %v", v2, n, counts)
		}
	})
}

func TestPassthrough(t *testing.T) {
	m := newMesh(t)
	m.commit(t)
	m.startOutbound(t, nil)
	plain := httptest.NewServer(echoApp("outside"))
	defer plain.Close()
	secure := httptest.NewTLSServer(echoApp("outside-tls"))
	defer secure.Close()

	t.Run("absolute form", func(t *testing.T) {
		code, body, _ := m.get(t, plain.URL+"/p", "X-Forwarded-For", "10.1.1.1")
		if code != 200 || !strings.Contains(body, "app=outside") {
			t.Fatalf("got %d %q", code, body)
		}
	})
	t.Run("CONNECT", func(t *testing.T) {
		tr := secure.Client().Transport.(*http.Transport).Clone()
		tr.Proxy = http.ProxyURL(m.proxyURL)
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(secure.URL + "/s")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "app=outside-tls") {
			t.Fatalf("got %q", body)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		code, body, _ := m.get(t, "http://127.0.0.1:1/")
		if code != 502 || !strings.Contains(body, "weft: passthrough to 127.0.0.1:1") {
			t.Fatalf("got %d %q", code, body)
		}
	})
}

// tcpApp upper-cases what it reads until EOF; with greet it speaks first.
func tcpApp(t testing.TB, greet string) int {
	ln := listen(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte(greet))
				b, _ := io.ReadAll(c)
				c.Write([]byte(strings.ToUpper(string(b))))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().(*net.TCPAddr).Port
}

func TestOpaqueTCP(t *testing.T) {
	m := newMesh(t)
	m.addService(svc("db"))
	m.addWorkloadProto(t, "db", tcpApp(t, ""), inbound.AppTCP)
	m.addService(svc("smtp"))
	m.addWorkloadProto(t, "smtp", tcpApp(t, "220 ready\n"), inbound.AppTCP)
	m.commit(t)
	m.startOutbound(t, nil)

	t.Run("client speaks first", func(t *testing.T) {
		c, br := connect(t, m.proxyURL.Host, "db:5432")
		defer c.Close()
		c.Write([]byte("\x16hello tls-ish"))
		c.(*net.TCPConn).CloseWrite()
		got, _ := io.ReadAll(br)
		if string(got) != "\x16HELLO TLS-ISH" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("server speaks first", func(t *testing.T) {
		c, br := connect(t, m.proxyURL.Host, "smtp:25")
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil || line != "220 ready\n" {
			t.Fatalf("greeting %q, %v", line, err)
		}
		c.Write([]byte("helo"))
		c.(*net.TCPConn).CloseWrite()
		got, _ := io.ReadAll(br)
		if string(got) != "HELO" {
			t.Fatalf("got %q", got)
		}
	})
	deadline := time.Now().Add(2 * time.Second)
	for testutil.CollectAndCount(m.reg, "weft_tcp_connections_total") < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // both proxies record when the stream ends
	}
	if n := testutil.CollectAndCount(m.reg, "weft_tcp_connections_total"); n != 4 {
		t.Errorf("tcp connection series = %d, want 4 (2 services × 2 listeners)", n)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want sniffKind
	}{
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", sniffedHTTP},
		{"PRI * HTTP/2.0\r\n", undecided},
		{"GET / HTTP/1.1\r\n", sniffedHTTP},
		{"POST /x HTTP/1.0\n", sniffedHTTP},
		{"GET / HTT", undecided},
		{"GET", undecided},
		{"\x16\x03\x01", sniffedOpaque},
		{"get / HTTP/1.1\r\n", sniffedOpaque},
		{"HELO there\r\n", sniffedOpaque},
		{"GETX/ HTTP/1.1\r\n", sniffedOpaque},
	} {
		if got := classify([]byte(tc.in)); got != tc.want {
			t.Errorf("classify(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{"GET / HTTP/1.1\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "\x16\x03"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k := classify(b)
		if k == sniffedHTTP && !strings.Contains(string(b), "HTTP/") {
			t.Fatalf("classify(%q) = HTTP", b)
		}
	})
}

// TestConnectFailureTriesAnotherEndpoint: an endpoint that refuses
// connections (its proxy just died) costs no request: the outbound tries
// another endpoint, and a mesh-looking name that is not a service is refused
// instead of leaking out of the mesh.
func TestConnectFailureTriesAnotherEndpoint(t *testing.T) {
	m := newMesh(t)
	m.addService(svc("api"))
	dead := listen(t)
	deadAddr := dead.Addr().String()
	dead.Close()
	// Round robin over one dead and one live endpoint: half of the requests
	// are first sent to the dead one.
	m.addEndpoint("api", deadAddr, m.ca.ID("default", "api").String())
	m.addWorkload(t, "api", startApp(t, echoApp("api")))
	m.commit(t)
	m.startOutbound(t, nil)
	for i := range 6 {
		if code, body, _ := m.get(t, "http://api/"); code != 200 {
			t.Fatalf("request %d: %d %q, want 200 via the live endpoint", i, code, body)
		}
	}
	code, body, _ := m.get(t, "http://nosuch.default/")
	if code != 503 || !strings.Contains(body, "no mesh service nosuch.default") {
		t.Errorf("unknown mesh name: %d %q, want 503 naming nosuch.default", code, body)
	}
}
