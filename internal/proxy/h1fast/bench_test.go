package h1fast

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
)

// BenchmarkFastLane: keep-alive requests over one loopback connection to a
// handler that writes 1 KiB with a Content-Length.
func BenchmarkFastLane(b *testing.B) {
	body := make([]byte, 1024)
	addr := startB(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1024")
		w.Write(body)
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
