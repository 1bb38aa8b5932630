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

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/identity"
	"weft.dev/weft/internal/proxy/telemetry"
	"weft.dev/weft/internal/proxy/upstream/meshtest"
)

// countingListener counts the bytes the app reads from every connection.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// modeConfig is a configuration in which orders.default has the given mode.
func modeConfig(permissive bool) *config.Config {
	c := config.Empty()
	c.Services = map[string]*config.Service{"orders.default": {Key: "orders.default", Name: "orders", Namespace: "default", PermissiveMTLS: permissive}}
	return c
}

type permissiveEnv struct {
	addr     string
	appBytes *atomic.Int64
	lastXFCC *atomic.Value // string: the app's last x-forwarded-client-cert, "-" if none
	cfg      *config.Static
	reg      *prometheus.Registry
	ca       *meshtest.CA
}

func startPermissive(t *testing.T) *permissiveEnv {
	t.Helper()
	env := &permissiveEnv{appBytes: new(atomic.Int64), lastXFCC: new(atomic.Value), cfg: config.NewStatic(modeConfig(true)), reg: prometheus.NewRegistry(), ca: meshtest.NewCA(t, "cluster.local")}
	app := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := "-"
		if v, ok := r.Header["X-Forwarded-Client-Cert"]; ok {
			x = strings.Join(v, ",")
		}
		env.lastXFCC.Store(x)
		io.WriteString(w, "ok")
	}))
	app.Config.Protocols = new(http.Protocols)
	app.Config.Protocols.SetHTTP1(true)
	app.Config.Protocols.SetUnencryptedHTTP2(true)
	app.Listener = countingListener{app.Listener, env.appBytes}
	app.Start()
	t.Cleanup(app.Close)
	_, port, _ := net.SplitHostPort(app.Listener.Addr().String())
	appPort, _ := strconv.Atoi(port)
	m, err := telemetry.New(env.reg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(Options{Identity: env.ca.Source(t, "default", "orders"), ServiceName: "orders", Namespace: "default", AppPort: appPort,
		Provider: env.cfg, Metrics: m, HandshakeTimeout: 300 * time.Millisecond, HeaderTimeout: 300 * time.Millisecond})
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
	env.addr = ln.Addr().String()
	return env
}

// raw sends in on a new plaintext connection and returns all it reads back
// until the proxy closes the connection (or 3 s pass).
func (env *permissiveEnv) raw(t *testing.T, in string) string {
	t.Helper()
	c, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if in != "" {
		io.WriteString(c, in)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

// TestPermissiveDetection checks what the inbound does with the first bytes
// of a connection, in mode PERMISSIVE and STRICT: plaintext HTTP reaches the
// app without a caller identity (a forged one removed), garbage gets 400
// and the app zero bytes, a silent client is closed after the bounded wait,
// and in STRICT plaintext gets nothing.
func TestPermissiveDetection(t *testing.T) {
	const get = "GET / HTTP/1.1\r\nHost: orders\r\nConnection: close\r\nX-Forwarded-Client-Cert: By=spiffe://cluster.local/ns/default/sa/x;URI=spiffe://cluster.local/ns/default/sa/admin\r\nx_forwarded_client_cert: forged\r\n\r\n"
	tests := []struct {
		name       string
		permissive bool
		in         string
		wantPrefix string // of the response; "" means none at all
		wantApp    bool   // the app receives bytes
		wantReject string // a reason counted in weft_proxy_http_rejected_total
	}{
		{"plaintext GET", true, get, "HTTP/1.1 200 ", true, ""},
		{"garbage", true, "\x01\x02\x03 not http\r\n\r\n", "HTTP/1.1 400 ", false, ""},
		{"bad request line", true, "GET /\r\n\r\n", "HTTP/1.1 400 ", false, ""},
		{"smuggling head", true, "POST / HTTP/1.1\r\nHost: o\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 400 ", false, ""},
		// A TLS record that is no ClientHello: a TLS alert, as in STRICT.
		{"TLS record of garbage", true, "\x16\x03\x01\x00\x05hello", "\x15\x03", false, ""},
		{"silent client", true, "", "", false, "first_byte_timeout"},
		// The first byte, then a stall: the head's own timeout.
		{"slow head", true, "GET / HTT", "HTTP/1.1 408 ", false, "header_timeout"},
		{"strict: plaintext GET", false, get, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := startPermissive(t)
			env.cfg.Store(modeConfig(tt.permissive))
			start := time.Now()
			got := env.raw(t, tt.in)
			if tt.wantPrefix == "" && got != "" || !strings.HasPrefix(got, tt.wantPrefix) {
				t.Fatalf("response %q, want prefix %q", got, tt.wantPrefix)
			}
			if tt.in == "" && time.Since(start) > 2*time.Second {
				t.Errorf("silent client held for %v, want about the 300ms handshake timeout", time.Since(start))
			}
			if n := env.appBytes.Load(); (n > 0) != tt.wantApp {
				t.Errorf("app received %d bytes, want any: %v", n, tt.wantApp)
			}
			if tt.wantReject != "" {
				eventuallyRejected(t, env.reg, tt.wantReject)
			}
			if tt.wantApp {
				if x := env.lastXFCC.Load(); x != "-" {
					t.Errorf("app got x-forwarded-client-cert %q, want none", x)
				}
			}
		})
	}
}

// TestPermissiveMTLSAndH2C checks that in mode PERMISSIVE a mesh client's
// mutual TLS works as in STRICT and carries its identity, a TLS client
// without a mesh certificate still fails its handshake, an h2c
// prior-knowledge client is served, and plaintext requests are counted with
// tls="false" and no source identity.
func TestPermissiveMTLSAndH2C(t *testing.T) {
	env := startPermissive(t)
	server := env.ca.ID("default", "orders")
	client := env.ca.Source(t, "default", "web")

	// Mutual TLS from a mesh client.
	tr := &http.Transport{DialTLSContext: func(context.Context, string, string) (net.Conn, error) {
		return tls.Dial("tcp", env.addr, client.ClientTLS(server, identity.ALPNHTTP1))
	}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "https://orders/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	want := "By=" + server.String() + ";URI=" + env.ca.ID("default", "web").String()
	if resp.StatusCode != 200 || env.lastXFCC.Load() != want {
		t.Errorf("mTLS: %d, xfcc %q, want 200 and %q", resp.StatusCode, env.lastXFCC.Load(), want)
	}

	// TLS without a client certificate: refused, as in STRICT.
	c, err := tls.Dial("tcp", env.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{identity.ALPNHTTP1}})
	if err == nil {
		c.SetDeadline(time.Now().Add(3 * time.Second))
		_, err = c.Write([]byte("GET / HTTP/1.1\r\nHost: o\r\n\r\n"))
		if err == nil {
			_, err = bufio.NewReader(c).ReadByte()
		}
		c.Close()
	}
	if err == nil {
		t.Error("TLS client without a mesh certificate was served")
	}

	// h2c with prior knowledge, through the h2guard.
	before := env.appBytes.Load()
	h2 := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return net.Dial("tcp", env.addr)
	}}
	defer h2.CloseIdleConnections()
	req, _ = http.NewRequest("GET", "http://orders/h2c", nil)
	req.Header.Set("X-Forwarded-Client-Cert", "forged")
	resp, err = h2.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || env.appBytes.Load() == before || env.lastXFCC.Load() != "-" {
		t.Errorf("h2c: %d %s, xfcc %q; want 200 over HTTP/2 and no xfcc", resp.StatusCode, resp.Proto, env.lastXFCC.Load())
	}

	if got := serverSeries(t, env.reg); !got[`source_identity="" tls="false"`] || !got[`source_identity="`+env.ca.ID("default", "web").String()+`" tls="true"`] {
		t.Errorf("server request series %v, want a plaintext one and an mTLS one", got)
	}
}

// TestPermissiveSwitch checks that the mode applies to new connections as
// soon as the configuration changes, without a restart, and to the next
// request of a plaintext connection accepted before a switch to STRICT.
func TestPermissiveSwitch(t *testing.T) {
	env := startPermissive(t)
	const get = "GET / HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n"
	for i, permissive := range []bool{true, false, true, false} {
		env.cfg.Store(modeConfig(permissive))
		got := env.raw(t, get)
		if served := strings.HasPrefix(got, "HTTP/1.1 200 "); served != permissive {
			t.Errorf("step %d (permissive %v): response %q", i, permissive, got)
		}
	}
	// A connection accepted in PERMISSIVE: after the switch to STRICT its
	// next request is refused and the connection closed, and the app gets
	// nothing of it.
	env.cfg.Store(modeConfig(true))
	c, err := net.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReader(c)
	roundTrip := func() *http.Response {
		t.Helper()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: orders\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := roundTrip(); resp.StatusCode != 200 {
		t.Fatalf("kept-alive plaintext connection, PERMISSIVE: %d", resp.StatusCode)
	}
	appBefore := env.appBytes.Load()
	env.cfg.Store(modeConfig(false))
	if resp := roundTrip(); resp.StatusCode != http.StatusForbidden || !resp.Close {
		t.Errorf("kept-alive plaintext connection after the switch to STRICT: %d close=%v, want 403 and close", resp.StatusCode, resp.Close)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("connection still open after the refusal")
	}
	if n := env.appBytes.Load() - appBefore; n != 0 {
		t.Errorf("app received %d bytes of the refused request", n)
	}

	// No configuration for the service at all: STRICT.
	env.cfg.Store(config.Empty())
	if got := env.raw(t, get); got != "" {
		t.Errorf("without the service's resource: response %q, want none (STRICT)", got)
	}
}

// serverSeries returns the source_identity and tls labels of every
// http_server_request_duration_seconds series.
func serverSeries(t *testing.T, reg *prometheus.Registry) map[string]bool {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "http_server_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var id, tlsv string
			for _, lp := range m.GetLabel() {
				switch lp.GetName() {
				case "source_identity":
					id = lp.GetValue()
				case "tls":
					tlsv = lp.GetValue()
				}
			}
			out[`source_identity="`+id+`" tls="`+tlsv+`"`] = true
		}
	}
	return out
}

// eventuallyRejected waits (briefly: the count follows the close) until
// weft_proxy_http_rejected_total{listener="inbound",reason=reason} is
// counted.
func eventuallyRejected(t *testing.T, reg *prometheus.Registry, reason string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "weft_proxy_http_rejected_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, lp := range m.GetLabel() {
					labels[lp.GetName()] = lp.GetValue()
				}
				if labels["listener"] == "inbound" && labels["reason"] == reason && m.GetCounter().GetValue() > 0 {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refusal counted with reason %q", reason)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
