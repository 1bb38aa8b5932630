package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// h1Server is an HTTP/1.1 test server that counts the connections it accepts.
func h1Server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func h1Transport(srv *httptest.Server) *H1Transport {
	addr := srv.Listener.Addr().String()
	d := net.Dialer{}
	return &H1Transport{
		Dial:     func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) },
		Fallback: &http.Transport{},
	}
}

func do(t *testing.T, rt http.RoundTripper, method, url, body string, hdr ...string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestH1TransportReusesConnections(t *testing.T) {
	srv, conns := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(b))
		}
	})
	tr := h1Transport(srv)
	defer tr.CloseIdleConnections()
	for i := range 20 {
		tests := []struct{ method, path, body, want string }{
			{"GET", "/a", "", "GET /a "},
			{"POST", "/b", "hello", "POST /b hello"},
			{"HEAD", "/c", "", ""},
			{"GET", "/empty", "", ""},
		}
		for _, tt := range tests {
			if code, got := do(t, tr, tt.method, srv.URL+tt.path, tt.body); got != tt.want || code >= 300 {
				t.Fatalf("round %d: %s %s = %d %q, want %q", i, tt.method, tt.path, code, got, tt.want)
			}
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("80 sequential requests used %d connections, want 1", n)
	}
}

func TestH1TransportRetriesStaleConnection(t *testing.T) {
	srv, conns := h1Server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	tr := h1Transport(srv)
	defer tr.CloseIdleConnections()
	if _, got := do(t, tr, "GET", srv.URL, ""); got != "ok" {
		t.Fatal(got)
	}
	// The server drops its idle keep-alive connection, as apps with short
	// idle timeouts do; the next request must not fail.
	srv.CloseClientConnections()
	time.Sleep(50 * time.Millisecond)
	if code, got := do(t, tr, "GET", srv.URL, ""); code != 200 || got != "ok" {
		t.Fatalf("after the server closed the pooled connection: %d %q", code, got)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("connections = %d, want 2", n)
	}
}

func TestH1TransportFallbackAndCancel(t *testing.T) {
	srv, _ := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, strings.Join(r.TransferEncoding, ",")+":"+string(b))
	})
	tr := h1Transport(srv)
	defer tr.CloseIdleConnections()

	// A body of unknown length goes through the fallback, chunked.
	req, _ := http.NewRequest("POST", srv.URL, io.NopCloser(strings.NewReader("streamed")))
	req.ContentLength = -1
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "chunked:streamed" {
		t.Errorf("unknown-length body: got %q", b)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", srv.URL+"/slow", nil)
	start := time.Now()
	if _, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("cancelled request: err = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancellation took %s", d)
	}
	// The transport still works afterwards.
	if _, got := do(t, tr, "GET", srv.URL, ""); got != ":" {
		t.Errorf("after cancel: %q", got)
	}
}

// TestH1TransportProbesBeforeBody: a request with a body cannot be replayed,
// so a pooled connection the server closed must be noticed before sending.
func TestH1TransportProbesBeforeBody(t *testing.T) {
	srv, conns := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	tr := h1Transport(srv)
	defer tr.CloseIdleConnections()
	if _, got := do(t, tr, "POST", srv.URL, "one"); got != "one" {
		t.Fatal(got)
	}
	srv.CloseClientConnections()
	time.Sleep(50 * time.Millisecond)
	if code, got := do(t, tr, "POST", srv.URL, "two"); code != 200 || got != "two" {
		t.Fatalf("POST after the server closed the pooled connection: %d %q", code, got)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("connections = %d, want 2", n)
	}
	// A live idle connection passes the probe and is reused.
	if _, got := do(t, tr, "POST", srv.URL, "three"); got != "three" {
		t.Fatal(got)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("connections after a reuse = %d, want still 2", n)
	}
}

// TestForwarder: hop-by-hop headers are dropped both ways, end-to-end ones
// and trailers pass, and a failed round trip reaches the error handler.
func TestForwarder(t *testing.T) {
	srv, _ := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Keep-Alive") != "" || r.Header.Get("X-Hop") != "" || r.Header.Get("Proxy-Authorization") != "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Trailer", "X-Sum")
		w.Header().Set("X-End", r.Header.Get("X-End"))
		io.WriteString(w, "body")
		w.Header().Set("X-Sum", "42")
	})
	tr := h1Transport(srv)
	defer tr.CloseIdleConnections()
	f := &Forwarder{
		Transport: tr,
		Rewrite: func(out *http.Request) {
			u := *out.URL
			u.Scheme, u.Host = "http", srv.Listener.Addr().String()
			out.URL = &u
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "fwd: "+err.Error(), http.StatusBadGateway)
		},
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "1")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Authorization", "secret")
	req.Header.Set("X-End", "kept")
	rec := httptest.NewRecorder()
	f.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || string(b) != "body" || res.Header.Get("X-End") != "kept" || res.Trailer.Get("X-Sum") != "42" {
		t.Errorf("got %d %q X-End=%q trailer=%v", res.StatusCode, b, res.Header.Get("X-End"), res.Trailer)
	}

	srv.Close()
	rec = httptest.NewRecorder()
	f.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusBadGateway || !strings.HasPrefix(rec.Body.String(), "fwd: ") {
		t.Errorf("after the upstream closed: %d %q", rec.Code, rec.Body.String())
	}
}
