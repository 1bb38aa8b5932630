package inbound

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// AppProtocol is what the local app speaks on its port. It decides how the
// inbound forwards HTTP/2 requests and what it does with weft-tcp streams.
type AppProtocol string

const (
	// AppHTTP (the default) is an HTTP app: HTTP/1.1 requests go to it as
	// HTTP/1.1; HTTP/2 requests go as h2c when a probe finds the app speaks
	// it, else as HTTP/1.1 (gRPC then gets UNIMPLEMENTED). weft-tcp streams
	// are parsed and served as HTTP/1.1.
	AppHTTP AppProtocol = "http"
	// AppHTTP1 is an HTTP/1.1-only app: every request goes as HTTP/1.1.
	AppHTTP1 AppProtocol = "http1"
	// AppH2C is an HTTP/2-with-prior-knowledge app (h2c): every request,
	// HTTP/1.1 ones included, goes as h2c.
	AppH2C AppProtocol = "h2c"
	// AppGRPC is a gRPC app; it is forwarded like AppH2C.
	AppGRPC AppProtocol = "grpc"
	// AppTCP is an opaque app: weft-tcp streams are piped to it unparsed,
	// and the app must not trust identity headers from them. HTTP requests
	// from peers are forwarded as for AppHTTP.
	AppTCP AppProtocol = "tcp"
)

// AppProtocols lists the valid values, for flag help and errors.
var AppProtocols = []AppProtocol{AppHTTP, AppHTTP1, AppH2C, AppGRPC, AppTCP}

// ParseAppProtocol validates s; "" is AppHTTP.
func ParseAppProtocol(s string) (AppProtocol, error) {
	if s == "" {
		return AppHTTP, nil
	}
	for _, p := range AppProtocols {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("app protocol %q: want one of http, http1, h2c, grpc, tcp", s)
}

// isHTTP reports whether a weft-tcp stream must be parsed as HTTP rather
// than piped: every protocol but tcp.
func (p AppProtocol) isHTTP() bool { return p != AppTCP }

// h2cProbe learns, once, whether an AppHTTP app speaks h2c, by sending the
// HTTP/2 connection preface and looking for a SETTINGS frame in reply. The
// answer is cached until a request to the app fails, which asks for a new
// probe (the app may have been restarted as something else).
type h2cProbe struct {
	dial    func(ctx context.Context) (net.Conn, error)
	timeout time.Duration

	mu    sync.Mutex
	known bool
	h2c   bool
}

// h2cPreface is the client connection preface followed by an empty
// SETTINGS frame (RFC 9113 §3.4).
var h2cPreface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")

// speaksH2C reports whether the app answers the h2c preface. An app that
// cannot be reached is reported as not speaking it, without caching, so the
// request fails as unreachable and the next one probes again; one that is
// silent for the timeout is cached as not speaking it.
func (p *h2cProbe) speaksH2C(ctx context.Context) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.known {
		return p.h2c
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	c, err := p.dial(ctx)
	if err != nil {
		return false
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write(h2cPreface); err != nil {
		return false
	}
	var hdr [9]byte
	n, _ := readFull(c, hdr[:])
	// A SETTINGS frame (not an ACK) is an h2c server's first frame, sent at
	// once. An HTTP/1.x answer ("HTTP/1.1 400 ..."), other bytes, a close
	// or silence until the timeout is not h2c.
	p.known = true
	p.h2c = n == len(hdr) && hdr[3] == 0x4 && hdr[4]&0x1 == 0 && !bytes.HasPrefix(hdr[:], []byte("HTTP/"))
	return p.h2c
}

// forget makes the next speaksH2C probe again.
func (p *h2cProbe) forget() {
	p.mu.Lock()
	p.known = false
	p.mu.Unlock()
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
