package h1fast

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// start serves ln with the fast lane and hands other connections to a
// net/http server with the same handler.
func start(t *testing.T, h http.Handler) string { return startB(t, h) }

func startB(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	handed := NewConnListener(ln.Addr())
	srv := &http.Server{Handler: h, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	fast := &Server{Handler: h, AllowH2C: true, Handoff: func(c net.Conn) bool { return handed.Push(ctx, c) }}
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(handed) })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { fast.ServeConn(ctx, c) })
		}
	})
	t.Cleanup(func() {
		cancel()
		ln.Close()
		fast.Close()
		srv.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

func TestFastLane(t *testing.T) {
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Proto", r.Proto)
		switch r.URL.Path {
		case "/len":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/stream":
			for i := range 3 {
				io.WriteString(w, strings.Repeat("x", i+1))
				w.(http.Flusher).Flush()
			}
		default:
			io.WriteString(w, r.Method+" "+string(b))
		}
	}))
	c := &http.Client{Timeout: 5 * time.Second}
	for _, tc := range []struct {
		method, path, body, want, proto string
	}{
		{"GET", "/len", "", "hello", "HTTP/1.1"},
		{"GET", "/stream", "", "xxxxxx", "HTTP/1.1"},
		{"POST", "/echo", "data", "POST data", "HTTP/1.1"},
		{"HEAD", "/len", "", "", "HTTP/1.1"},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, strings.NewReader(tc.body))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != tc.want || resp.Header.Get("X-Proto") != tc.proto {
			t.Errorf("%s %s = %q via %s, want %q via %s", tc.method, tc.path, b, resp.Header.Get("X-Proto"), tc.want, tc.proto)
		}
	}
	// A chunked request body is served by the fast lane.
	req, _ := http.NewRequest("POST", "http://"+addr+"/echo", io.NopCloser(strings.NewReader("chunks")))
	req.ContentLength = -1
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "POST chunks" {
		t.Errorf("chunked request: %q", b)
	}
}

// TestHandoffH2C: prior-knowledge HTTP/2 is handed to net/http, which must
// still recognise the preface.
func TestHandoffH2C(t *testing.T) {
	addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) }))
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "HTTP/2.0" {
		t.Errorf("served as %q, want HTTP/2.0", b)
	}
}
