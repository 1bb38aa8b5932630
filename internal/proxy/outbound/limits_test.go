package outbound

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"weft.dev/weft/internal/proxy/identity"
	"weft.dev/weft/internal/proxy/inbound"
)

// startOutboundWith starts web's outbound proxy with edited options and
// returns its address.
func (m *testMesh) startOutboundWith(t testing.TB, edit func(*Options)) string {
	opts := Options{
		Provider: m.provider, Identity: m.ca.Source(t, "default", "web"), Metrics: m.metrics,
		ServiceName: "web", Namespace: "default",
	}
	edit(&opts)
	out, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	serve(t, "outbound", out.Serve, ln)
	return ln.Addr().String()
}

// TestPendingHeadFloodMemory: 100 connections each sending a 1 MiB header
// block are answered 431 once the 60 KiB limit is reached, and the
// proxy's heap never grows by more than 32 MiB meanwhile (it grew by over
// 100 MiB when heads were buffered up to net/http's 1 MiB limit).
func TestPendingHeadFloodMemory(t *testing.T) {
	m := newMesh(t)
	m.commit(t)
	m.startOutbound(t, nil)

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})

	const conns = 100
	big := bytes.Repeat([]byte("a"), 1<<20)
	head := []byte("GET http://orders/ HTTP/1.1\r\nHost: orders\r\nX-Big: ")
	statuses := make([]int, conns)
	var wg sync.WaitGroup
	var cs []net.Conn
	for i := range conns {
		c, err := net.Dial("tcp", m.proxyURL.Host)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
		wg.Go(func() { c.Write(head); c.Write(big) }) // never completes the head
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				statuses[i] = resp.StatusCode
			}
		})
	}
	wg.Wait() // every head was answered (or its read timed out)
	close(stop)
	sampler.Wait()
	for _, c := range cs {
		c.Close()
	}
	growth := int64(peak) - int64(base)
	t.Logf("heap in use grew by at most %.1f MiB during the flood", float64(growth)/(1<<20))
	for i, s := range statuses {
		if s != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("connection %d: status %d, want 431", i, s)
		}
	}
	if growth > 32<<20 {
		t.Fatalf("heap grew by %d MiB, want at most 32", growth>>20)
	}
}

// TestOutboundConnectionCap: past MaxConns a connection is answered 503
// and closed at once and counted; a slot freed is usable again.
func TestOutboundConnectionCap(t *testing.T) {
	m := newMesh(t)
	m.commit(t)
	addr := m.startOutboundWith(t, func(o *Options) { o.MaxConns = 3 })
	// A request the outbound answers itself (404: origin form to a
	// non-mesh name) proves a connection is being served.
	served := func(c net.Conn) bool {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: elsewhere\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNotFound
	}
	var open []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if !served(c) {
			t.Fatal("connection within the cap not served")
		}
		open = append(open, c)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	c.Close()
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || !resp.Close {
		t.Fatalf("connection over the cap: %v %v, want 503 and close", resp, err)
	}
	if n := rejected(t, m, "outbound", "connection_limit"); n != 1 {
		t.Errorf("connection_limit refusals = %v, want 1", n)
	}
	open[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		ok := served(c)
		c.Close()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("freed slot not reused")
		}
	}
}

// TestHeaderTimeout: a head that trickles in (slowloris) is answered 408
// and closed after HeaderTimeout, and counted.
func TestHeaderTimeout(t *testing.T) {
	m := newMesh(t)
	m.commit(t)
	addr := m.startOutboundWith(t, func(o *Options) { o.HeaderTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	c.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Fatalf("slow head: %v %v, want 408 and close", resp, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("answered after %v, want about 200ms", d)
	}
	if n := rejected(t, m, "outbound", "header_timeout"); n != 1 {
		t.Errorf("header_timeout refusals = %v, want 1", n)
	}
}

// TestInboundConnectionCap: past MaxConns a peer's connection is closed
// before the TLS handshake, and counted.
func TestInboundConnectionCap(t *testing.T) {
	m := newMesh(t)
	in, err := inbound.New(inbound.Options{
		Identity: m.ca.Source(t, "default", "orders"), Metrics: m.metrics,
		ServiceName: "orders", Namespace: "default", AppPort: startApp(t, echoApp("orders")), MaxConns: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	serve(t, "inbound", in.Serve, ln)
	cfg := m.ca.Source(t, "default", "web").ClientTLS(m.ca.ID("default", "orders"), identity.ALPNHTTP1)
	first, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	resp, body, err := exchangeOnce(first, "GET /x HTTP/1.1\r\nHost: orders\r\n\r\n")
	if err != nil || resp.StatusCode != 200 || !strings.Contains(body, "path=/x") {
		t.Fatalf("first connection: %v %q %v", resp, body, err)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	second, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), cfg)
	if err == nil {
		second.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = second.Read(make([]byte, 1))
		second.Close()
	}
	if err == nil {
		t.Fatal("connection over the cap was served")
	}
	if n := rejected(t, m, "inbound", "connection_limit"); n != 1 {
		t.Errorf("connection_limit refusals = %v, want 1", n)
	}
}
