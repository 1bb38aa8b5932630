// Package h1fast serves HTTP/1.1 keep-alive connections of a proxy listener
// on one goroutine per connection, calling an ordinary http.Handler.
//
// Why hand-written: net/http's server, for each request, starts a background
// read on the connection to notice a client going away and cancels it when
// the handler returns; in a sidecar that forwards small requests this wake-up
// and the deadline juggling around it cost more CPU than the forwarding
// itself (bench/RESULTS.md). The fast lane reads with net/http's own parser
// (http.ReadRequest) and writes responses itself, so it handles only the
// common shape of request: HTTP/1.1, a known method, a body of known length
// or none, no Upgrade, no Expect. Any other request — and everything after it
// on that connection — is handed, with the bytes already read, to a
// net/http server (Handoff), which implements the whole protocol.
//
// Trade-offs: a client that disconnects while its request is in flight is
// noticed when the response is written, not at once; and a request's context
// ends with its connection, not when ServeHTTP returns, so a handler must not
// leave work behind that relies on it.
package h1fast

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server runs fast-lane connections.
type Server struct {
	// Handler serves requests.
	Handler http.Handler
	// Handoff takes over a connection the fast lane does not serve. The
	// connection replays the bytes already read and, for TLS, exposes
	// ConnectionState. It reports false if it did not take the connection.
	Handoff func(net.Conn) bool
	// ConnContext derives a connection's context from the serve context.
	ConnContext func(context.Context, net.Conn) context.Context
	// IdleTimeout closes connections idle between requests (default 5m).
	IdleTimeout time.Duration
	// HeaderTimeout bounds reading a request's header (default 30s).
	HeaderTimeout time.Duration

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

const maxHeader = 8 << 10

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, maxHeader) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 8<<10) }}
)

// Close closes every connection the fast lane still owns.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

func (s *Server) track(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closed {
			return false
		}
		if s.conns == nil {
			s.conns = map[net.Conn]struct{}{}
		}
		s.conns[c] = struct{}{}
		return true
	}
	delete(s.conns, c)
	return true
}

// ServeConn serves c until it closes, idles out, ctx ends, or it is handed
// off. It closes c unless it was handed off.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) {
	if !s.track(c, true) {
		c.Close()
		return
	}
	idle, header := s.IdleTimeout, s.HeaderTimeout
	if idle <= 0 {
		idle = 5 * time.Minute
	}
	if header <= 0 {
		header = 30 * time.Second
	}
	connCtx := ctx
	if s.ConnContext != nil {
		connCtx = s.ConnContext(ctx, c)
	}
	// Every request of the connection shares one context that ends with
	// the connection (or ctx), not one per request that ends with
	// ServeHTTP: that saves a context, and the registration of whatever
	// the handler ties to it with the parent shared by all connections,
	// per request. Handlers here leave nothing running when they return.
	connCtx, cancelConn := context.WithCancel(connCtx)
	defer cancelConn()
	var tlsState *tls.ConnectionState
	if tc, ok := c.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		tlsState = &cs
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	br := readerPool.Get().(*bufio.Reader)
	br.Reset(c)
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(c)
	handedOff := false
	defer func() {
		s.track(c, false)
		bw.Reset(nil)
		writerPool.Put(bw)
		if !handedOff {
			c.Close()
			br.Reset(nil)
			readerPool.Put(br)
		}
	}()
	remote := c.RemoteAddr().String()
	var w *responseWriter

	for {
		c.SetReadDeadline(time.Now().Add(idle))
		if _, err := br.Peek(1); err != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(header))
		ok, err := eligible(br)
		if err != nil {
			return
		}
		if !ok {
			c.SetReadDeadline(time.Time{})
			s.track(c, false)
			handedOff = s.Handoff(handoffConn(c, br, tlsState))
			return
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
			return
		}
		c.SetReadDeadline(time.Time{})
		req.RemoteAddr = remote
		req.TLS = tlsState
		req = req.WithContext(connCtx)
		// One writer and header map per connection, reset for each
		// request: requests on a connection are served one at a time.
		if w == nil {
			w = &responseWriter{h: make(http.Header, 8)}
		}
		clear(w.h)
		*w = responseWriter{bw: bw, req: req, h: w.h}
		ok = serve(s.Handler, w, req)
		if !ok || w.finish() != nil || w.closeAfter || req.Close {
			bw.Flush()
			return
		}
		// Whatever the handler left of the request body must be read
		// before the next request; a large remainder ends the connection.
		if req.Body != http.NoBody {
			if n, _ := io.CopyN(io.Discard, req.Body, 256<<10); n == 256<<10 {
				return
			}
		}
	}
}

// serve runs the handler, turning its panics (ReverseProxy aborts a broken
// response with http.ErrAbortHandler) into a closed connection.
func serve(h http.Handler, w *responseWriter, req *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			ok = false
		}
	}()
	h.ServeHTTP(w, req)
	return true
}

var fastMethods = [...]string{"GET ", "POST ", "PUT ", "DELETE ", "HEAD ", "PATCH ", "OPTIONS "}

// eligible reads the request header into br's buffer (without consuming it)
// and reports whether the fast lane can serve the request.
func eligible(br *bufio.Reader) (bool, error) {
	n := 1
	var buf []byte
	for {
		var err error
		// Look at everything buffered; block only for bytes not yet read.
		buf, err = br.Peek(max(n, br.Buffered()))
		if bytes.Contains(buf, []byte("\r\n\r\n")) {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return false, nil // a large header: let net/http judge it
		}
		if err != nil {
			return false, err
		}
		n = br.Buffered() + 1
		if n > maxHeader {
			return false, nil
		}
	}
	end := bytes.Index(buf, []byte("\r\n\r\n"))
	lines := buf[:end]
	first, rest, _ := bytes.Cut(lines, []byte("\r\n"))
	known := false
	for _, m := range fastMethods {
		if bytes.HasPrefix(first, []byte(m)) {
			known = true
			break
		}
	}
	if !known || !bytes.HasSuffix(first, []byte(" HTTP/1.1")) {
		return false, nil
	}
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, _, _ := bytes.Cut(line, []byte(":"))
		if bytes.EqualFold(name, []byte("Transfer-Encoding")) || bytes.EqualFold(name, []byte("Upgrade")) || bytes.EqualFold(name, []byte("Expect")) {
			return false, nil
		}
	}
	return true, nil
}

// prefixConn replays the bytes the fast lane read before handing off.
type prefixConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *prefixConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// tlsPrefixConn is a prefixConn over TLS: it exposes ConnectionState, as
// net/http and the handlers' ConnContext expect of TLS connections. (A
// plaintext connection must not have the method: net/http would take it for
// TLS and not look for an h2c preface.)
type tlsPrefixConn struct {
	prefixConn
	state tls.ConnectionState
}

// ConnectionState reports the TLS state of the underlying connection.
func (p *tlsPrefixConn) ConnectionState() tls.ConnectionState { return p.state }

func handoffConn(c net.Conn, r *bufio.Reader, state *tls.ConnectionState) net.Conn {
	if state == nil {
		return &prefixConn{Conn: c, r: r}
	}
	return &tlsPrefixConn{prefixConn: prefixConn{Conn: c, r: r}, state: *state}
}
