package inbound

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"weft.dev/weft/internal/proxy/identity"
	"weft.dev/weft/internal/proxy/upstream/meshtest"
)

// TestDrainClosesPeerConnections: once draining, an HTTP/1.1 response
// carries Connection: close and an HTTP/2 connection gets GOAWAY after its
// response, so peers stop reusing pooled connections; the request itself is
// still served, and Activity counts arrivals.
func TestDrainClosesPeerConnections(t *testing.T) {
	ca := meshtest.NewCA(t, "cluster.local")
	// The app speaks HTTP/1.1 and h2c, as the inbound listener forwards
	// each protocol as it came.
	app := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	app.Config.Protocols = new(http.Protocols)
	app.Config.Protocols.SetHTTP1(true)
	app.Config.Protocols.SetUnencryptedHTTP2(true)
	app.Start()
	defer app.Close()
	_, port, _ := net.SplitHostPort(app.Listener.Addr().String())
	appPort, _ := strconv.Atoi(port)
	l, err := New(Options{Identity: ca.Source(t, "default", "orders"), ServiceName: "orders", Namespace: "default", AppPort: appPort})
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
	defer func() { cancel(); <-served }()

	client := ca.Source(t, "default", "web")
	server := ca.ID("default", "orders")
	dial := func(alpn string) *tls.Conn {
		c, err := tls.Dial("tcp", ln.Addr().String(), client.ClientTLS(server, alpn))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	h1 := &http.Transport{DialTLSContext: func(context.Context, string, string) (net.Conn, error) { return dial(identity.ALPNHTTP1), nil }}
	defer h1.CloseIdleConnections()
	get := func(rt http.RoundTripper) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://orders/", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("response %d %q", resp.StatusCode, b)
		}
		return resp
	}
	h2 := &http2.Transport{}
	h2conn, err := h2.NewClientConn(dial(identity.ALPNHTTP2))
	if err != nil {
		t.Fatal(err)
	}
	defer h2conn.Close()

	if resp := get(h1); resp.Close {
		t.Errorf("before the drain: HTTP/1.1 response asks to close the connection")
	}
	get(h2conn)
	if st := h2conn.State(); st.Closing || st.Closed {
		t.Fatalf("before the drain: HTTP/2 connection closing: %+v", st)
	}
	before := time.Now()

	l.StartDrain()
	if resp := get(h1); !resp.Close {
		t.Errorf("while draining: HTTP/1.1 response has no Connection: close")
	}
	get(h2conn)
	deadline := time.Now().Add(5 * time.Second)
	for h2conn.CanTakeNewRequest() {
		if time.Now().After(deadline) {
			t.Fatal("while draining: no GOAWAY on the HTTP/2 connection")
		}
		time.Sleep(5 * time.Millisecond)
	}
	inflight, last := l.Activity()
	if inflight != 0 || last.Before(before) {
		t.Errorf("Activity() = %d, %v; want 0 in flight and an arrival after %v", inflight, last, before)
	}

	// An HTTP/2 connection idle through the drain gets GOAWAY from
	// Shutdown, before the listener closes.
	idle, err := h2.NewClientConn(dial(identity.ALPNHTTP2))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	get(idle)
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := l.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for idle.CanTakeNewRequest() {
		if time.Now().After(deadline) {
			t.Fatal("after Shutdown: no GOAWAY on the idle HTTP/2 connection")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
