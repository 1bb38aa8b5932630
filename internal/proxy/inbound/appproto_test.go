package inbound

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestParseAppProtocol(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want AppProtocol
		ok   bool
	}{
		{"", AppHTTP, true},
		{"http", AppHTTP, true},
		{"http1", AppHTTP1, true},
		{"h2c", AppH2C, true},
		{"grpc", AppGRPC, true},
		{"tcp", AppTCP, true},
		{"HTTP", "", false},
		{"http2", "", false},
		{"udp", "", false},
	} {
		got, err := ParseAppProtocol(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseAppProtocol(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestH2CProbe: the probe tells an h2c app from an HTTP/1.1-only one,
// caches the answer, does not cache an unreachable app, and probes again
// after forget.
func TestH2CProbe(t *testing.T) {
	serve := func(h1, h2c bool) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.NotFoundHandler(), Protocols: new(http.Protocols)}
		srv.Protocols.SetHTTP1(h1)
		srv.Protocols.SetUnencryptedHTTP2(h2c)
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return ln.Addr().String()
	}
	probeOf := func(addr *string) *h2cProbe {
		return &h2cProbe{timeout: time.Second, dial: func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", *addr)
		}}
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		h1, h2c bool
		want    bool
	}{
		{"http1 only", true, false, false},
		{"h2c only", false, true, true},
		{"both", true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serve(tc.h1, tc.h2c)
			if got := probeOf(&addr).speaksH2C(ctx); got != tc.want {
				t.Fatalf("speaksH2C = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("unreachable is not cached; forget re-probes", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		p := probeOf(&addr)
		if p.speaksH2C(ctx) || p.known {
			t.Fatal("unreachable app: want false, not cached")
		}
		addr = serve(false, true)
		if !p.speaksH2C(ctx) {
			t.Fatal("h2c app now listening: want true")
		}
		addr = serve(true, false)
		if !p.speaksH2C(ctx) {
			t.Fatal("answer not cached")
		}
		p.forget()
		if p.speaksH2C(ctx) {
			t.Fatal("after forget: want a new probe to find HTTP/1.1 only")
		}
	})
}

// TestH2CProbeSilentApp: an app that accepts and says nothing is not h2c,
// and the answer is cached (no second one-second wait).
func TestH2CProbeSilentApp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	})
	addr := ln.Addr().String()
	p := &h2cProbe{timeout: 100 * time.Millisecond, dial: func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}}
	if p.speaksH2C(context.Background()) || !p.known {
		t.Fatal("silent app: want not h2c, cached")
	}
	start := time.Now()
	p.speaksH2C(context.Background())
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Fatalf("second call took %v: not cached", d)
	}
}
