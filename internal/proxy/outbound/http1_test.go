package outbound

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"weft.dev/weft/internal/proxy/identity"
)

// countingApp serves echoApp and counts every byte it receives.
type countingApp struct {
	net.Listener
	bytes atomic.Int64
}

func (a *countingApp) Accept() (net.Conn, error) {
	c, err := a.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &a.bytes}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func startCountingApp(t testing.TB) (*countingApp, int) {
	app := &countingApp{Listener: listen(t)}
	srv := &http.Server{Handler: echoApp("orders")}
	go srv.Serve(app)
	t.Cleanup(func() { srv.Close() })
	return app, app.Addr().(*net.TCPAddr).Port
}

// hostileRequests are request heads (and bodies) that each listener must
// refuse with the status given, closing the connection, before any byte
// reaches the app. Each is sent in one write.
var hostileRequests = []struct {
	name, req string
	status    int
}{
	{"space before colon", "GET / HTTP/1.1\r\nHost: orders\r\nX-Foo : bar\r\n\r\n", 400},
	{"space before colon on TE", "POST / HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400},
	{"tab before colon", "GET / HTTP/1.1\r\nHost: orders\r\nX-Foo\t: bar\r\n\r\n", 400},
	{"CL then TE", "POST / HTTP/1.1\r\nHost: orders\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"TE then CL", "POST / HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400},
	{"duplicate CL", "POST / HTTP/1.1\r\nHost: orders\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400},
	{"conflicting CL", "POST / HTTP/1.1\r\nHost: orders\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
	{"CL list", "POST / HTTP/1.1\r\nHost: orders\r\nContent-Length: 5, 5\r\n\r\nhello", 400},
	{"TE chunked, identity", "POST / HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400},
	{"TE xchunked", "POST / HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400},
	{"TE folded", "POST / HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding:\r\n\tchunked\r\n\r\n0\r\n\r\n", 400},
	{"TE twice", "POST / HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"TE on HTTP/1.0", "POST / HTTP/1.0\r\nHost: orders\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"NUL in value", "GET / HTTP/1.1\r\nHost: orders\r\nX-A: a\x00b\r\n\r\n", 400},
	{"CR in value", "GET / HTTP/1.1\r\nHost: orders\r\nX-A: a\rb\r\n\r\n", 400},
	{"bare LF in header", "GET / HTTP/1.1\r\nHost: orders\nX-A: b\r\n\r\n", 400},
	{"bare LF request line", "GET / HTTP/1.1\nHost: orders\n\n", 400},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: orders\r\nX-A: a\r\n b\r\n\r\n", 400},
	{"invalid name byte", "GET / HTTP/1.1\r\nHost: orders\r\nX(A): b\r\n\r\n", 400},
	{"bad chunk size", "POST / HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400},
	{"no CRLF after chunk data", "POST / HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400},
	{"oversize chunk line", "POST / HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: chunked\r\n\r\n1;" + strings.Repeat("e", 5000) + "\r\nx\r\n0\r\n\r\n", 400},
	{"no Host", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400},
	{"two Hosts", "GET / HTTP/1.1\r\nHost: orders\r\nHost: evil\r\n\r\n", 400},
	{"invalid target", "GET orders HTTP/1.1\r\nHost: orders\r\n\r\n", 400},
	{"target with control byte", "GET /\x7f HTTP/1.1\r\nHost: orders\r\n\r\n", 400},
	{"unknown version", "GET / HTTP/1.2\r\nHost: orders\r\n\r\n", 505},
	{"HTTP/2.0 request line", "GET / HTTP/2.0\r\nHost: orders\r\n\r\n", 505},
	{"other Expect", "POST / HTTP/1.1\r\nHost: orders\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417},
	{"10,000 headers", "GET / HTTP/1.1\r\nHost: orders\r\n" + strings.Repeat("X-A: b\r\n", 10000) + "\r\n", 431},
	{"101 headers", "GET / HTTP/1.1\r\nHost: orders\r\n" + strings.Repeat("X-A: b\r\n", 100) + "\r\n", 431},
	{"1 MiB header block", "GET / HTTP/1.1\r\nHost: orders\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\n\r\n", 431},
}

// refused sends req on c and checks the answer: the status, Connection:
// close, and the connection closed after it; all within 5 s (the header
// timeout is 10 s: a refusal must not wait for it).
func refused(t *testing.T, c net.Conn, req string, status int) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go io.WriteString(c, req)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status || !resp.Close || !strings.HasPrefix(string(body), "weft: ") {
		t.Fatalf("got %d close=%v %q, want %d with Connection: close and a weft reason", resp.StatusCode, resp.Close, body, status)
	}
	if n, err := br.Read(make([]byte, 1)); err == nil || n > 0 {
		t.Fatalf("connection still open after the refusal")
	}
}

// TestHostileHeadsOutbound sends each hostile request to a real outbound
// listener in front of a real inbound listener and app.
func TestHostileHeadsOutbound(t *testing.T) {
	m := newMesh(t)
	m.addService(svc("orders"))
	app, port := startCountingApp(t)
	m.addWorkload(t, "orders", port)
	m.commit(t)
	m.startOutbound(t, nil)

	// The harness reaches the app: a valid request does.
	if code, body, _ := m.get(t, "http://orders/ok"); code != 200 || app.bytes.Load() == 0 {
		t.Fatalf("valid request: %d %q, app received %d bytes", code, body, app.bytes.Load())
	}
	for _, tc := range hostileRequests {
		t.Run(tc.name, func(t *testing.T) {
			before := app.bytes.Load()
			c, err := net.Dial("tcp", m.proxyURL.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			refused(t, c, tc.req, tc.status)
			if n := app.bytes.Load() - before; n != 0 {
				t.Fatalf("the app received %d bytes", n)
			}
		})
	}
	if n := rejected(t, m, "outbound", "te_and_cl"); n != 2 {
		t.Errorf("weft_proxy_http_rejected_total{listener=outbound,reason=te_and_cl} = %v, want 2", n)
	}
}

// TestHostileHeadsInbound sends each hostile request to a real inbound
// listener over mTLS as a mesh peer.
func TestHostileHeadsInbound(t *testing.T) {
	m := newMesh(t)
	app, port := startCountingApp(t)
	addr := m.addWorkload(t, "orders", port)
	cfg := m.ca.Source(t, "default", "web").ClientTLS(m.ca.ID("default", "orders"), identity.ALPNHTTP1)
	dial := func(t *testing.T) net.Conn {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := dial(t)
	resp, _, err := exchangeOnce(c, "GET /ok HTTP/1.1\r\nHost: orders\r\n\r\n")
	c.Close()
	if err != nil || resp.StatusCode != 200 || app.bytes.Load() == 0 {
		t.Fatalf("valid request: %v %v, app received %d bytes", resp, err, app.bytes.Load())
	}
	for _, tc := range hostileRequests {
		t.Run(tc.name, func(t *testing.T) {
			before := app.bytes.Load()
			c := dial(t)
			defer c.Close()
			refused(t, c, tc.req, tc.status)
			if n := app.bytes.Load() - before; n != 0 {
				t.Fatalf("the app received %d bytes", n)
			}
		})
	}
	t.Run("without ALPN", func(t *testing.T) {
		noALPN := cfg.Clone()
		noALPN.NextProtos = nil
		c, err := tls.Dial("tcp", addr, noALPN)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		before := app.bytes.Load()
		// net/http accepts this one (it drops the Content-Length).
		refused(t, c, "POST / HTTP/1.1\r\nHost: orders\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)
		if n := app.bytes.Load() - before; n != 0 {
			t.Fatalf("the app received %d bytes", n)
		}
	})
	if n := rejected(t, m, "inbound", "te_and_cl"); n != 3 {
		t.Errorf("weft_proxy_http_rejected_total{listener=inbound,reason=te_and_cl} = %v, want 3", n)
	}
}

func exchangeOnce(c net.Conn, req string) (*http.Response, string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return nil, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, "", err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), nil
}

// TestHostileHeadInTunnel: HTTP/1 inside a CONNECT tunnel to a mesh service
// passes the same checks.
func TestHostileHeadInTunnel(t *testing.T) {
	m := newMesh(t)
	m.addService(svc("orders"))
	app, port := startCountingApp(t)
	m.addWorkload(t, "orders", port)
	m.commit(t)
	m.startOutbound(t, nil)
	for _, req := range []string{
		"GET / HTTP/1.1\r\nHost: orders\r\nX-Foo : bar\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: orders\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	} {
		c, br := connect(t, m.proxyURL.Host, "orders:80")
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, req)
		resp, err := http.ReadResponse(br, nil)
		c.Close()
		if err != nil {
			t.Fatalf("%q: %v", req, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 || !resp.Close || app.bytes.Load() != 0 {
			t.Fatalf("%q: got %d close=%v, app received %d bytes; want 400, close, nothing", req, resp.StatusCode, resp.Close, app.bytes.Load())
		}
	}
}

// TestBodiesAcrossTheMesh: chunked request bodies and Expect:
// 100-continue, now served by the fast lanes, reach the app whole.
func TestBodiesAcrossTheMesh(t *testing.T) {
	m := newMesh(t)
	m.addService(svc("orders"))
	m.addWorkload(t, "orders", startApp(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, "len="+strconv.Itoa(len(b))+" expect="+r.Header.Get("Expect"))
	})))
	m.commit(t)
	m.startOutbound(t, nil)
	for _, tc := range []struct {
		name, req, want string
	}{
		{"chunked", "POST http://orders/ HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-T: 1\r\n\r\n", "len=11 expect="},
		{"expect", "POST http://orders/ HTTP/1.1\r\nHost: orders\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", "len=5 expect="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", m.proxyURL.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, tc.req)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err == nil && resp.StatusCode == http.StatusContinue {
				resp, err = http.ReadResponse(br, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != tc.want {
				t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, b, tc.want)
			}
		})
	}
}

// rejected reads weft_proxy_http_rejected_total{listener,reason} from the
// mesh's registry.
func rejected(t *testing.T, m *testMesh, listener, reason string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "weft_proxy_http_rejected_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["listener"] == listener && labels["reason"] == reason {
				return mt.GetCounter().GetValue()
			}
		}
	}
	return 0
}
