package outbound

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"weft.dev/weft/internal/proxy/identity"
	"weft.dev/weft/internal/proxy/inbound"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// identityApp answers with every header it received whose name, read the
// way frameworks that map '_' to '-' read it, is x-forwarded-client-cert.
func identityApp() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var got []string
		for k, vs := range r.Header {
			if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "x-forwarded-client-cert") {
				for _, v := range vs {
					got = append(got, k+"="+v)
				}
			}
		}
		sort.Strings(got)
		fmt.Fprintf(w, "xfcc=[%s]", strings.Join(got, " "))
	})
}

// rawHTTP writes req on c, after wait, and reads one response.
func rawHTTP(t *testing.T, c net.Conn, br *bufio.Reader, wait time.Duration, req string) (int, string) {
	t.Helper()
	if wait > 0 {
		time.Sleep(wait) // the scenario: an app slower than the sniff timeout
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestForgedIdentityHeaders: whatever path a request takes into an HTTP app
// (explicit proxy over HTTP/1.1 or h2c, CONNECT tunnel sniffed as HTTP or
// too slow for the sniff, a port declared http, inbound weft-tcp), the app
// sees exactly one identity header, the inbound proxy's, whatever case or
// '_' spelling the caller used for its forged one.
func TestForgedIdentityHeaders(t *testing.T) {
	m := newMesh(t)
	m.sniffTimeout = 100 * time.Millisecond
	m.addService(svc("orders"))
	ordersIn := m.addWorkload(t, "orders", startApp(t, identityApp()))
	// A port declared http whose workload (wrongly) says tcp: only the
	// outbound's refusal to fall back to opaque protects it.
	m.addService(&weftv1.Service{Name: "api", Namespace: "default", Ports: []*weftv1.ServicePort{{Name: "http", Port: 8080, Protocol: "http"}}})
	m.addWorkloadProto(t, "api", startApp(t, identityApp()), inbound.AppTCP)
	m.commit(t)
	m.startOutbound(t, nil)

	want := func(svc string) string {
		return "xfcc=[X-Forwarded-Client-Cert=By=spiffe://cluster.local/ns/default/sa/" + svc + ";URI=spiffe://cluster.local/ns/default/sa/web]"
	}
	forged := []string{"X-Forwarded-Client-Cert", "X_Forwarded_Client_Cert", "x-FORWARDED-client-CERT", "x_forwarded_client_cert", "X-Forwarded_Client-Cert"}
	const evil = "By=evil;URI=spiffe://cluster.local/ns/default/sa/admin"

	for _, name := range forged {
		t.Run("http1 explicit proxy/"+name, func(t *testing.T) {
			c, err := net.Dial("tcp", m.proxyURL.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			code, body := rawHTTP(t, c, bufio.NewReader(c), 0, "GET http://orders/ HTTP/1.1\r\nHost: orders\r\n"+name+": "+evil+"\r\n\r\n")
			if code != 200 || body != want("orders") {
				t.Fatalf("got %d %q, want 200 %q", code, body, want("orders"))
			}
		})
		t.Run("h2c explicit proxy/"+name, func(t *testing.T) {
			tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", m.proxyURL.Host)
			}}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest("GET", "http://orders/", nil)
			req.Header[name] = []string{evil}
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != want("orders") {
				t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want("orders"))
			}
		})
		for _, tc := range []struct {
			name, target, svc string
			wait              time.Duration
		}{
			{"CONNECT sniffed", "orders:80", "orders", 0},
			{"CONNECT slower than the sniff", "orders:80", "orders", 300 * time.Millisecond},
			{"CONNECT to a port declared http, slow", "api:8080", "api", 300 * time.Millisecond},
		} {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				c, br := connect(t, m.proxyURL.Host, tc.target)
				defer c.Close()
				code, body := rawHTTP(t, c, br, tc.wait, "GET / HTTP/1.1\r\nHost: "+tc.svc+"\r\n"+name+": "+evil+"\r\n\r\n")
				if code != 200 || body != want(tc.svc) {
					t.Fatalf("got %d %q, want 200 %q", code, body, want(tc.svc))
				}
			})
		}
		t.Run("inbound weft-tcp/"+name, func(t *testing.T) {
			src := m.ca.Source(t, "default", "web")
			c, err := tls.Dial("tcp", ordersIn, src.ClientTLS(m.ca.ID("default", "orders"), identity.ALPNTCP))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			code, body := rawHTTP(t, c, bufio.NewReader(c), 0, "GET / HTTP/1.1\r\nHost: orders\r\n"+name+": "+evil+"\r\n\r\n")
			if code != 200 || body != want("orders") {
				t.Fatalf("got %d %q, want 200 %q", code, body, want("orders"))
			}
		})
	}
}

// countingTCPApp accepts TCP connections and counts the bytes they carry.
func countingTCPApp(t *testing.T) (int, func() int64) {
	ln := listen(t)
	var mu sync.Mutex
	var n int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					k, err := c.Read(buf)
					mu.Lock()
					n += int64(k)
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port, func() int64 { mu.Lock(); defer mu.Unlock(); return n }
}

// TestConnectToHTTPPortNeverOpaque: bytes in a CONNECT tunnel to a port
// declared http that are not HTTP, quick or slow, get a 400 and never reach
// the app, even one whose inbound would pipe opaque streams (tcp); and
// non-HTTP bytes on inbound weft-tcp to an HTTP app get a 400 and never
// reach it.
func TestConnectToHTTPPortNeverOpaque(t *testing.T) {
	m := newMesh(t)
	m.sniffTimeout = 100 * time.Millisecond
	port, received := countingTCPApp(t)
	m.addService(&weftv1.Service{Name: "api", Namespace: "default", Ports: []*weftv1.ServicePort{{Name: "http", Port: 8080, Protocol: "http"}}})
	m.addWorkloadProto(t, "api", port, inbound.AppTCP)
	// An HTTP app (default protocol) reached over inbound weft-tcp.
	m.addService(svc("orders"))
	ordersPort, ordersReceived := countingTCPApp(t)
	ordersIn := m.addWorkload(t, "orders", ordersPort)
	m.commit(t)
	m.startOutbound(t, nil)

	for _, tc := range []struct {
		name  string
		wait  time.Duration
		bytes string
	}{
		{"TLS record", 0, "\x16\x03\x01\x00\x05hello\r\n\r\n"},
		{"TLS record after the sniff timeout", 300 * time.Millisecond, "\x16\x03\x01\x00\x05hello\r\n\r\n"},
		{"not a request line", 0, "HELLO, THIS IS NOT HTTP\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, br := connect(t, m.proxyURL.Host, "api:8080")
			defer c.Close()
			code, _ := rawHTTP(t, c, br, tc.wait, tc.bytes)
			if code != 400 {
				t.Fatalf("got %d, want 400", code)
			}
		})
	}
	t.Run("inbound weft-tcp to an HTTP app", func(t *testing.T) {
		src := m.ca.Source(t, "default", "web")
		c, err := tls.Dial("tcp", ordersIn, src.ClientTLS(m.ca.ID("default", "orders"), identity.ALPNTCP))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		code, _ := rawHTTP(t, c, bufio.NewReader(c), 0, "\x16\x03\x01\x00\x05hello\r\n\r\n")
		if code != 400 {
			t.Fatalf("got %d, want 400", code)
		}
	})
	if n, k := received(), ordersReceived(); n != 0 || k != 0 {
		t.Fatalf("apps received %d and %d bytes, want 0", n, k)
	}
}
