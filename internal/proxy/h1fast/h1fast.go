// Package h1fast serves HTTP/1.x keep-alive connections of a proxy listener
// on one goroutine per connection, calling an ordinary http.Handler.
//
// Why hand-written: net/http's server, for each request, starts a background
// read on the connection to notice a client going away and cancels it when
// the handler returns; in a sidecar that forwards small requests this wake-up
// and the deadline juggling around it cost more CPU than the forwarding
// itself (bench/RESULTS.md). The fast lane writes responses itself.
//
// Every request head is first read and checked with h1parse, the proxy's
// one set of HTTP/1 framing rules (docs/http1.md); what it refuses is
// answered with its status and Connection: close, and the connection is
// closed before anything is forwarded. Heads that pass are parsed by
// net/http's http.ReadRequest. The fast lane serves every request shape —
// any method, bodies of known length or chunked, Expect: 100-continue,
// HTTP/1.0 — except three after which a connection carries no further
// HTTP/1 request: CONNECT, Upgrade and the HTTP/2 preface, which it hands,
// with the bytes already read, to a net/http server (Handoff; wrap that
// server's handler in OneRequest).
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
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"weft.dev/weft/internal/proxy/h1parse"
)

// Server runs fast-lane connections.
type Server struct {
	// Handler serves requests.
	Handler http.Handler
	// Handoff takes over a connection whose next request is CONNECT, an
	// Upgrade or (with AllowH2C) the HTTP/2 preface: after those there is
	// no further HTTP/1 request on the connection. The connection replays
	// the bytes already read and, for TLS, exposes ConnectionState. It
	// reports false if it did not take the connection.
	Handoff func(net.Conn) bool
	// AllowH2C hands the HTTP/2 prior-knowledge preface to Handoff; without
	// it the preface is refused (505).
	AllowH2C bool
	// ConnContext derives a connection's context from the serve context.
	ConnContext func(context.Context, net.Conn) context.Context
	// IdleTimeout closes connections idle between requests (default 5m).
	IdleTimeout time.Duration
	// HeaderTimeout bounds reading a request's head from its first byte
	// (default 10s).
	HeaderTimeout time.Duration
	// Limits bound request heads (defaults: h1parse's).
	Limits h1parse.Limits
	// Reject, when set, is told of every request refused, after the
	// refusal was sent: it counts and logs them.
	Reject func(c net.Conn, err *h1parse.Error)

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closed  bool
	bigPool sync.Pool // *bufio.Reader of bigSize()
}

// smallBuffer is the read buffer of every connection; a head that does
// not fit moves the connection to a buffer of the head limit.
const smallBuffer = 8 << 10

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, smallBuffer) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 8<<10) }}
)

// errHeaderTimeout answers a head that did not arrive in time.
var errHeaderTimeout = &h1parse.Error{Status: http.StatusRequestTimeout, Reason: "header_timeout", Msg: "request header not received in time"}

// errMalformed answers what net/http's parser refuses after h1parse passed
// it (the differential fuzz target looks for such heads).
var errMalformed = &h1parse.Error{Status: http.StatusBadRequest, Reason: "malformed", Msg: "malformed request"}

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

func (s *Server) bigSize() int { return s.Limits.WithDefaults().MaxHeaderBytes + 4<<10 }

// conn is the state of one connection.
type conn struct {
	s   *Server
	c   net.Conn
	br  *bufio.Reader
	big bool // br came from s.bigPool
	sc  h1parse.Scanner
}

// readHead buffers the next request's head in br (without consuming it)
// and checks it. The head limit bounds what is buffered: a connection
// needs more than its small buffer only for a head that is larger.
func (cn *conn) readHead(header time.Duration) (h1parse.Head, *h1parse.Error, error) {
	lim := cn.s.Limits
	cn.sc.Reset()
	cn.c.SetReadDeadline(time.Now().Add(header))
	for {
		buf, _ := cn.br.Peek(cn.br.Buffered())
		n, err := cn.sc.Scan(buf, lim)
		if err != nil {
			return h1parse.Head{}, refusal(err), nil
		}
		if n > 0 {
			h, err := h1parse.Parse(buf[:n], lim)
			if err != nil {
				return h, refusal(err), nil
			}
			return h, nil, nil
		}
		if len(buf) == cn.br.Size() {
			if cn.big {
				return h1parse.Head{}, h1parse.ErrHeadTooLarge, nil
			}
			cn.grow()
			continue
		}
		// Wait for at least one more byte; the loop then looks at all
		// that arrived.
		if _, err := cn.br.Peek(len(buf) + 1); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return h1parse.Head{}, errHeaderTimeout, nil
			}
			return h1parse.Head{}, nil, err
		}
	}
}

// refusal is the h1parse.Error in err (every error h1parse returns is one).
func refusal(err error) *h1parse.Error {
	var e *h1parse.Error
	if errors.As(err, &e) {
		return e
	}
	return errMalformed
}

// grow moves the connection to a reader as large as the head limit,
// carrying over what the small one holds.
func (cn *conn) grow() {
	buffered, _ := cn.br.Peek(cn.br.Buffered())
	big, _ := cn.s.bigPool.Get().(*bufio.Reader)
	if big == nil {
		big = bufio.NewReaderSize(nil, cn.s.bigSize())
	}
	n := len(buffered)
	big.Reset(&replayReader{b: bytes.Clone(buffered), r: cn.c})
	big.Peek(n) // the replayed bytes, in one read: the scanner resumes after them
	cn.br.Reset(nil)
	readerPool.Put(cn.br)
	cn.br, cn.big = big, true
}

func (cn *conn) release() {
	cn.br.Reset(nil)
	if cn.big {
		cn.s.bigPool.Put(cn.br)
	} else {
		readerPool.Put(cn.br)
	}
}

// replayReader reads b, then r.
type replayReader struct {
	b []byte
	r io.Reader
}

func (r *replayReader) Read(p []byte) (int, error) {
	if len(r.b) > 0 {
		n := copy(p, r.b)
		r.b = r.b[n:]
		return n, nil
	}
	return r.r.Read(p)
}

// refuse answers a refused request and closes the connection. It half-closes
// first and reads (bounded) what the client still sends, so that closing
// with unread bytes does not reset the connection before the client has
// read the answer.
func (s *Server) refuse(c net.Conn, bw *bufio.Writer, e *h1parse.Error) {
	// Counted before the answer is written, so that whoever reads the
	// answer also sees the count.
	if s.Reject != nil {
		s.Reject(c, e)
	}
	msg := "weft: " + e.Msg + "\n"
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(e.Status))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(e.Status))
	bw.WriteString("\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ")
	bw.WriteString(strconv.Itoa(len(msg)))
	bw.WriteString("\r\n\r\n")
	bw.WriteString(msg)
	c.SetWriteDeadline(time.Now().Add(time.Second))
	bw.Flush()
	if cw, ok := c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		c.SetReadDeadline(time.Now().Add(time.Second))
		io.CopyN(io.Discard, c, 256<<10)
	}
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
		header = 10 * time.Second
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

	cn := &conn{s: s, c: c, br: readerPool.Get().(*bufio.Reader)}
	cn.br.Reset(c)
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(c)
	handedOff := false
	defer func() {
		s.track(c, false)
		bw.Reset(nil)
		writerPool.Put(bw)
		if !handedOff {
			c.Close()
			cn.release()
		}
	}()
	remote := c.RemoteAddr().String()
	var w *responseWriter

	for {
		c.SetReadDeadline(time.Now().Add(idle))
		if _, err := cn.br.Peek(1); err != nil {
			return
		}
		head, refusal, err := cn.readHead(header)
		if err != nil {
			return
		}
		if refusal != nil {
			s.refuse(c, bw, refusal)
			return
		}
		if head.Connect || head.Upgrade || head.H2Preface {
			if head.H2Preface && !s.AllowH2C {
				s.refuse(c, bw, h1parse.ErrVersionUnsupported)
				return
			}
			c.SetReadDeadline(time.Time{})
			s.track(c, false)
			handedOff = s.Handoff(handoffConn(c, cn.br, tlsState))
			return
		}
		req, err := http.ReadRequest(cn.br)
		if err != nil {
			s.refuse(c, bw, errMalformed)
			return
		}
		var body *checkedBody
		if head.Chunked {
			if e := cn.checkChunked(); e != nil {
				s.refuse(c, bw, e)
				return
			}
			body = &checkedBody{rc: req.Body}
			req.Body = body
		}
		if head.Expect100 {
			// The fast lane meets the expectation itself, at once (RFC
			// 9110 §10.1.1 lets a server send 100 before reading the
			// content); upstream sees a plain request.
			bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if bw.Flush() != nil {
				return
			}
			delete(req.Header, "Expect")
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
		*w = responseWriter{bw: bw, req: req, h: w.h, body: body}
		ok := serve(s.Handler, w, req)
		if body != nil && body.refused.Load() != nil {
			if !w.wroteHeader {
				w.WriteHeader(http.StatusBadRequest) // answers the refusal
			}
			bw.Flush()
			if s.Reject != nil {
				s.Reject(c, body.refused.Load())
			}
			return
		}
		if !ok || w.finish() != nil || w.closeAfter || req.Close {
			bw.Flush()
			return
		}
		// Whatever the handler left of the request body must be read
		// before the next request; a large remainder, or a body that does
		// not end cleanly (the next request would start mid-body), ends
		// the connection.
		if req.Body != http.NoBody && !drained(req.Body, body) {
			return
		}
	}
}

// checkChunked checks the chunked body framing that arrived with its head
// (waiting, within the header deadline, for the first chunk-size line), so
// that a malformed body is refused before anything is forwarded.
func (cn *conn) checkChunked() *h1parse.Error {
	for {
		buf, _ := cn.br.Peek(cn.br.Buffered())
		done, err := h1parse.CheckChunked(buf)
		if err != nil {
			return refusal(err)
		}
		if done || bytes.IndexByte(buf, '\n') >= 0 || len(buf) == cn.br.Size() {
			return nil
		}
		if _, err := cn.br.Peek(len(buf) + 1); err != nil {
			return nil // the body reader reports it
		}
	}
}

// checkedBody is a chunked request body that the fast lane watches: a
// framing error refuses the request (400) whatever the handler answers. It
// may be read on another goroutine than the handler's (net/http.Transport
// writes request bodies on its own).
type checkedBody struct {
	rc      io.ReadCloser
	refused atomic.Pointer[h1parse.Error]
	// closeFailed is set when Close, which reads the rest of the body,
	// did not reach its clean end.
	closeFailed atomic.Bool
}

// errChunkFraming refuses a chunked body net/http's decoder found
// malformed beyond what arrived with the head.
var errChunkFraming = &h1parse.Error{Status: http.StatusBadRequest, Reason: "chunk_framing", Msg: "malformed chunked request body (RFC 9112 §7.1)"}

func (b *checkedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) {
		var ne net.Error
		if !errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
			b.refused.CompareAndSwap(nil, errChunkFraming)
		}
	}
	return n, err
}

func (b *checkedBody) Close() error {
	err := b.rc.Close()
	if err != nil {
		b.closeFailed.Store(true)
	}
	return err
}

// drained reads what the handler left of a request body (at most 256 KiB)
// and reports whether the body ended cleanly, so that the next request
// starts where this one ends. A body the handler closed was read to its
// end by Close (net/http's request bodies do that); chunked is the checked
// body of a chunked request, nil otherwise.
func drained(rb io.Reader, chunked *checkedBody) bool {
	_, err := io.CopyN(io.Discard, rb, 256<<10)
	switch {
	case err == io.EOF:
		return true
	case errors.Is(err, http.ErrBodyReadAfterClose):
		return chunked == nil || !chunked.closeFailed.Load()
	}
	return false
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

// prefixConn replays the bytes the fast lane read before handing off.
type prefixConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *prefixConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// NetConn returns the handed-off connection, for ConnContext functions
// that look at its type.
func (p *prefixConn) NetConn() net.Conn { return p.Conn }

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
