package h1fast

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"weft.dev/weft/internal/proxy/h1parse"
)

// pipeServer serves the fast lane (handing off to net/http as the
// listeners do) over in-memory connections: net.Pipe delivers each Write
// to the server's reads separately, so a head written in two pieces
// arrives in two pieces, deterministically.
func pipeServer(t testing.TB, h http.Handler) func() net.Conn {
	ctx, cancel := context.WithCancel(context.Background())
	handed := NewConnListener(nil)
	srv := &http.Server{Handler: OneRequest(h)}
	fast := &Server{Handler: h, Handoff: func(c net.Conn) bool { return handed.Push(ctx, c) }}
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(handed) })
	t.Cleanup(func() {
		cancel()
		fast.Close()
		srv.Close()
		wg.Wait()
	})
	return func() net.Conn {
		client, server := net.Pipe()
		wg.Go(func() { fast.ServeConn(ctx, server) })
		t.Cleanup(func() { client.Close() })
		return client
	}
}

// sizedHead is a valid request head of exactly n bytes (n >= 27): the path
// is padded up to 2 KiB, a header field beyond.
func sizedHead(n int) string {
	const base = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	if n < len(base) {
		panic("head too small")
	}
	pad := n - len(base)
	if pad <= 2048 {
		return "GET /" + strings.Repeat("a", pad) + " HTTP/1.1\r\nHost: x\r\n\r\n"
	}
	const field = "X-Pad: \r\n"
	return "GET / HTTP/1.1\r\nHost: x\r\n" + "X-Pad: " + strings.Repeat("p", pad-len(field)) + "\r\n\r\n"
}

// sizeHandler answers with the length of the path and of X-Pad.
var sizeHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body := strconv.Itoa(len(r.URL.Path)) + " " + strconv.Itoa(len(r.Header.Get("X-Pad")))
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	io.WriteString(w, body)
})

// exchange writes the pieces of a request (concurrently, as a client that
// sends while the server may already answer) and reads one response.
func exchange(c net.Conn, br *bufio.Reader, pieces ...string) (*http.Response, string, error) {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	go func() {
		for _, p := range pieces {
			if _, err := io.WriteString(c, p); err != nil {
				return
			}
		}
	}()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

func wantBody(head string) string {
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("%d %d", len(req.URL.Path), len(req.Header.Get("X-Pad")))
}

// TestHeadSizes: heads of every size from the smallest request (27 bytes)
// to 2 KiB, then in strides up to the limit, are served at once on one
// keep-alive connection; one byte over the limit is refused with 431.
func TestHeadSizes(t *testing.T) {
	dial := pipeServer(t, sizeHandler)
	c := dial()
	br := bufio.NewReader(c)
	limit := h1parse.DefaultMaxHeaderBytes
	var sizes []int
	for n := 27; n <= 2048; n++ {
		sizes = append(sizes, n)
	}
	for n := 2048 + 1021; n < limit; n += 1021 {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, 8<<10-1, 8<<10, 8<<10+1, limit-1, limit)
	for _, n := range sizes {
		head := sizedHead(n)
		resp, body, err := exchange(c, br, head)
		if err != nil {
			t.Fatalf("head of %d bytes: %v", n, err)
		}
		if resp.StatusCode != 200 || body != wantBody(head) {
			t.Fatalf("head of %d bytes: %d %q, want 200 %q", n, resp.StatusCode, body, wantBody(head))
		}
	}
	c = dial()
	resp, body, err := exchange(c, bufio.NewReader(c), sizedHead(limit+1))
	if err != nil {
		t.Fatalf("head over the limit: %v", err)
	}
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !resp.Close {
		t.Fatalf("head over the limit: %d close=%v %q, want 431 and close", resp.StatusCode, resp.Close, body)
	}
}

// TestHeadSplit: representative heads written in two pieces, split at
// every byte boundary, are served at once (a split head used to wait for
// the header timeout).
func TestHeadSplit(t *testing.T) {
	dial := pipeServer(t, sizeHandler)
	cookie := "GET /app HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\nCookie: " +
		strings.Repeat("session=0123456789abcdef; ", 45) + "\r\n\r\n"
	for _, head := range []string{sizedHead(27), cookie, sizedHead(9000)} {
		c := dial()
		br := bufio.NewReader(c)
		for i := 1; i < len(head); i++ {
			resp, body, err := exchange(c, br, head[:i], head[i:])
			if err != nil {
				t.Fatalf("%d-byte head split at %d: %v", len(head), i, err)
			}
			if resp.StatusCode != 200 || body != wantBody(head) {
				t.Fatalf("%d-byte head split at %d: %d %q", len(head), i, resp.StatusCode, body)
			}
		}
	}
}

// TestChunkedAndExpect: the fast lane serves chunked request bodies and
// Expect: 100-continue itself, and refuses a malformed chunked body
// without calling the handler when the error arrived with the head.
func TestChunkedAndExpect(t *testing.T) {
	calls := 0
	dial := pipeServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway) // what a proxy would answer
			return
		}
		io.WriteString(w, "got "+string(b)+" expect="+r.Header.Get("Expect"))
	}))
	for _, tc := range []struct {
		name   string
		pieces []string
		status int
		body   string
		calls  int
	}{
		{"chunked", []string{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"}, 200, "got hello expect=", 1},
		{"chunked in pieces", []string{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\nhel", "lo\r\n0\r\n\r\n"}, 200, "got hello expect=", 1},
		{"expect", []string{"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n", "hi"}, 200, "got hi expect=", 1},
		{"bad chunk size", []string{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"}, 400, "weft: malformed chunk size line (RFC 9112 §7.1)\n", 0},
		{"bad chunk later", []string{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "5\r\nworldXX\r\n0\r\n\r\n"}, 400, "weft: malformed chunked request body (RFC 9112 §7.1)\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls = 0
			c := dial()
			br := bufio.NewReader(c)
			resp, body, err := exchange(c, br, tc.pieces...)
			if err == nil && resp.StatusCode == http.StatusContinue {
				resp, body, err = exchange(c, br)
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || body != tc.body || calls != tc.calls {
				t.Fatalf("got %d %q after %d handler calls, want %d %q after %d", resp.StatusCode, body, calls, tc.status, tc.body, tc.calls)
			}
		})
	}
}

// TestUnreadBadChunkClosesConnection: a chunked body the handler did not
// read is drained; when it turns out malformed the connection is closed, so
// the bytes after it are never taken for a request.
func TestUnreadBadChunkClosesConnection(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	dial := pipeServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		io.WriteString(w, "ok") // without reading the body
	}))
	c := dial()
	br := bufio.NewReader(c)
	resp, _, err := exchange(c, br,
		"POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
		"5\r\nworldXXGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first request: %v %v", resp, err)
	}
	if _, err := http.ReadResponse(br, nil); err == nil {
		t.Fatal("a second response: the bytes after the bad chunk were served")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 1 {
		t.Fatalf("handler saw %q, want only /first", paths)
	}
}

// TestClosedBodyKeepsConnection: a handler that closes the request body
// (as a forwarding transport does once it has sent it) leaves the
// connection usable for the next request, for Content-Length and chunked
// bodies; closing a body whose remaining chunks are malformed still ends
// the connection. (The keep-alive was lost after every such request, and a
// peer reusing the pooled connection got it closed under its request.)
func TestClosedBodyKeepsConnection(t *testing.T) {
	tests := []struct {
		name   string
		first  []string // written one piece at a time
		second bool     // whether a second request is served
	}{
		{"content-length, partly read", []string{"POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhelloworld"}, true},
		{"chunked, partly read", []string{"POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"}, true},
		// The malformed chunk arrives after the head, so the head's own
		// check cannot see it: Close must.
		{"chunked, bad remainder", []string{"POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "5\r\nworldXX"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var paths []string
			dial := pipeServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				paths = append(paths, r.URL.Path)
				mu.Unlock()
				io.ReadFull(r.Body, make([]byte, 3))
				r.Body.Close()
				io.WriteString(w, "ok")
			}))
			c := dial()
			br := bufio.NewReader(c)
			resp, _, err := exchange(c, br, tt.first...)
			if tt.second && (err != nil || resp.StatusCode != 200) {
				t.Fatalf("first request: %v %v", resp, err)
			}
			if tt.second {
				resp, _, err = exchange(c, br, "GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("second request on the connection: %v %v", resp, err)
				}
			} else {
				io.WriteString(c, "GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
				if _, err := http.ReadResponse(br, nil); err == nil {
					t.Fatal("a second response after a malformed chunked body")
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if want := map[bool]int{true: 2, false: 1}[tt.second]; len(paths) != want {
				t.Fatalf("handler saw %q, want %d requests", paths, want)
			}
		})
	}
}
