package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// dropServer answers the first request of the test with 200 on a keep-alive
// connection; every later request is read in full and then answered with
// reply (possibly nothing) before the connection is closed, as a peer proxy
// closing its connections at the end of a drain does.
func dropServer(t *testing.T, reply string) (addr string, requests *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	requests = new(atomic.Int64)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if requests.Add(1) == 1 {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
						continue
					}
					io.WriteString(c, reply)
					return
				}
			})
		}
	})
	return ln.Addr().String(), requests
}

// TestH1TransportRetryRule: a request that failed on a pooled connection
// before any response byte is sent again exactly when that is safe — no
// body and an idempotent method or an idempotency key — and the error then
// tells the caller it may go to another endpoint. A request whose body was
// sent, or that received part of a response, is never repeated.
func TestH1TransportRetryRule(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		body      string
		header    string // an extra header name, set to "1"
		reply     string // what the server sends before closing
		wantTries int64  // requests the server saw after the first
		wantRetry bool   // errors.Is(err, ErrNoResponse)
	}{
		{name: "GET", method: "GET", wantTries: 2, wantRetry: true},
		{name: "HEAD", method: "HEAD", wantTries: 2, wantRetry: true},
		{name: "DELETE no body", method: "DELETE", wantTries: 1}, // idempotent by RFC 9110, but net/http does not repeat it either
		{name: "POST no body", method: "POST", wantTries: 1},
		{name: "POST with idempotency key", method: "POST", header: "Idempotency-Key", wantTries: 2, wantRetry: true},
		{name: "PUT with body", method: "PUT", body: "payload", wantTries: 1},
		{name: "GET with partial response", method: "GET", reply: "HTTP/1.1 200 OK\r\n", wantTries: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, requests := dropServer(t, tt.reply)
			d := net.Dialer{}
			tr := &H1Transport{
				Dial:     func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) },
				Fallback: &http.Transport{},
			}
			defer tr.CloseIdleConnections()
			if code, got := do(t, tr, "GET", "http://"+addr+"/", ""); code != 200 || got != "ok" {
				t.Fatalf("first request: %d %q", code, got)
			}
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequest(tt.method, "http://"+addr+"/", body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != "" {
				req.Header.Set(tt.header, "1")
			}
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("round trip succeeded with status %d; the server answered nothing", resp.StatusCode)
			}
			if got := requests.Load() - 1; got != tt.wantTries {
				t.Errorf("the server saw the request %d times, want %d (err: %v)", got, tt.wantTries, err)
			}
			if got := errors.Is(err, ErrNoResponse); got != tt.wantRetry {
				t.Errorf("errors.Is(%v, ErrNoResponse) = %v, want %v", err, got, tt.wantRetry)
			}
		})
	}
}
