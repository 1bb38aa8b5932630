package transparent

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []string // written with pauses, then the writer waits
		want   Protocol
	}{
		{"http1", []string{"GET / HTTP/1.1\r\nHost: a\r\n\r\n"}, HTTP1},
		{"http1 short", []string{"GET / HTTP/1.0\r\n"}, HTTP1},
		{"http1 split", []string{"PO", "ST /x HTTP/1.1\r\n"}, HTTP1},
		{"put is not h2", []string{"PUT / HTTP/1.1\r\n"}, HTTP1},
		{"h2 preface", []string{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"}, HTTP2},
		{"h2 preface split", []string{"PRI * HTTP/2.0\r\n", "\r\nSM\r\n\r\n"}, HTTP2},
		{"tls", []string{"\x16\x03\x01\x02\x00\x01"}, TLS},
		{"opaque binary", []string{"\x00\x01\x02"}, Opaque},
		{"opaque lowercase", []string{"hello world"}, Opaque},
		{"server first", nil, Opaque},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			go func() {
				for _, c := range tc.chunks {
					io.WriteString(b, c)
					time.Sleep(5 * time.Millisecond)
				}
			}()
			r := bufio.NewReader(a)
			start := time.Now()
			got, err := Detect(a, r, 100*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Detect = %s, want %s", got, tc.want)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Detect took %s", d)
			}
			// The bytes stay readable for whoever serves the connection.
			if len(tc.chunks) > 0 {
				b, _ := r.Peek(1)
				if len(b) != 1 || b[0] != tc.chunks[0][0] {
					t.Errorf("first byte not kept: %q", b)
				}
			}
		})
	}
}
