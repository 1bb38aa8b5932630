package transparent

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"os"
	"time"
)

// Protocol is what a captured connection was detected to speak.
type Protocol string

// The detected protocols; they label the detection metric.
const (
	HTTP1  Protocol = "http1"
	HTTP2  Protocol = "h2"
	TLS    Protocol = "tls"
	Opaque Protocol = "opaque"
)

var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// Detect waits at most wait for the client's first bytes on c (read through
// r, which keeps them buffered for whoever serves the connection) and
// classifies them. A client that sends nothing within wait (a server-first
// protocol: MySQL, SMTP) is Opaque.
func Detect(c net.Conn, r *bufio.Reader, wait time.Duration) (Protocol, error) {
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return Opaque, err
	}
	defer c.SetReadDeadline(time.Time{})
	n := 1
	for {
		b, err := r.Peek(n)
		if p, done := classify(b); done {
			return p, nil
		}
		if err != nil {
			p, _ := classify(b)
			if errors.Is(err, os.ErrDeadlineExceeded) || p != undecided {
				if p == undecided {
					p = Opaque // nothing sent: a server-first protocol
				}
				return p, nil
			}
			return Opaque, err
		}
		n = min(r.Buffered()+1, len(h2Preface))
	}
}

const undecided Protocol = ""

// classify decides from the bytes so far; done is false while more bytes
// could change the answer.
func classify(b []byte) (p Protocol, done bool) {
	switch {
	case len(b) == 0:
		return undecided, false
	case b[0] == 0x16: // TLS handshake record
		if len(b) < 2 {
			return undecided, false
		}
		if b[1] == 0x03 {
			return TLS, true
		}
		return Opaque, true
	case bytes.HasPrefix(h2Preface, b) && len(b) < len(h2Preface):
		return HTTP1, false // "PRI * HTTP/2.0" is a valid HTTP/1 request line until it is not
	case bytes.HasPrefix(b, h2Preface):
		return HTTP2, true
	}
	// An HTTP/1 request line starts with a method token and a space.
	for i, ch := range b {
		switch {
		case ch == ' ' && i > 0:
			return HTTP1, true
		case ch >= 'A' && ch <= 'Z', ch == '-' || ch == '_':
			if i >= 20 {
				return Opaque, true
			}
		default:
			return Opaque, true
		}
	}
	return HTTP1, false // a method token so far
}
