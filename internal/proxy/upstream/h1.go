package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// H1Transport is a lean HTTP/1.1 client for one destination (a peer proxy
// or the local app). It writes the request and reads the response on the
// caller's goroutine and keeps idle keep-alive connections in a LIFO pool.
//
// Why hand-written: net/http.Transport runs two goroutines per connection
// and hands every request and response across channels between them; under
// load that costs a goroutine switch and futex wake-ups per request, which
// the bench profile of the sidecar showed as its largest cost (see
// bench/RESULTS.md). This transport handles the common case: requests whose
// body is absent or of known length. Anything else — bodies of unknown
// length that may stream both ways, Upgrade, Expect: 100-continue — goes to
// Fallback, a net/http.Transport, which handles every corner of the protocol.
type H1Transport struct {
	// Dial opens a new connection to the destination.
	Dial func(ctx context.Context) (net.Conn, error)
	// Fallback serves requests this transport does not handle itself.
	Fallback http.RoundTripper
	// MaxIdle is the number of idle connections kept (default 64).
	MaxIdle int
	// IdleTimeout closes connections idle for longer (default 90s).
	IdleTimeout time.Duration

	mu     sync.Mutex
	idle   []*h1Conn
	closed bool
}

type h1Conn struct {
	t        *H1Transport
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
}

var (
	h1ReaderPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	h1WriterPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
)

// handles reports whether the fast path can carry req.
func handles(req *http.Request) bool {
	if req.ContentLength < 0 || (req.ContentLength > 0 && req.Body == nil) {
		return false
	}
	if req.Header.Get("Upgrade") != "" || req.Header.Get("Expect") != "" {
		return false
	}
	return len(req.TransferEncoding) == 0
}

// RoundTrip implements http.RoundTripper.
func (t *H1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !handles(req) {
		return t.Fallback.RoundTrip(req)
	}
	replayable := req.Body == nil || req.Body == http.NoBody
	safe := replayable && Idempotent(req)
	for attempt := 0; ; attempt++ {
		// The retry probes idle connections: the peer may have closed
		// all of them at once (a draining or restarted proxy).
		pc, reused, err := t.get(req.Context(), !replayable || attempt > 0)
		if err != nil {
			return nil, err
		}
		resp, err := pc.roundTrip(req)
		if err == nil {
			return resp, nil
		}
		pc.close()
		if !safe || req.Context().Err() != nil || !errors.Is(err, errNoResponse) {
			return nil, err
		}
		// A pooled connection the other side closed while it was idle
		// fails before any response byte: go again, once, here.
		if reused && attempt == 0 {
			continue
		}
		// The destination took the request and answered nothing: for a
		// safe request the caller may try another endpoint.
		return nil, fmt.Errorf("%w: %w", ErrNoResponse, err)
	}
}

// errNoResponse marks a failure before any byte of the response arrived.
var errNoResponse = errors.New("connection closed before the response")

func (pc *h1Conn) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// Cancellation unblocks reads and writes by expiring the deadline; the
	// connection is then closed, never reused.
	c := pc.c
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	err := writeRequest(pc.bw, req)
	if err == nil {
		err = pc.bw.Flush()
	}
	if err != nil {
		stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Nothing was received: a stale pooled connection.
		return nil, errors.Join(errNoResponse, err)
	}
	for {
		if _, err := pc.br.Peek(1); err != nil {
			stop()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, errors.Join(errNoResponse, err)
		}
		resp, err := http.ReadResponse(pc.br, req)
		if err != nil {
			stop()
			return nil, ctxErr(ctx, err)
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			resp.Body.Close()
			continue // informational: wait for the final response
		}
		keep := !resp.Close && !req.Close && resp.StatusCode != http.StatusSwitchingProtocols
		if resp.Body == http.NoBody {
			pc.release(stop, keep)
			return resp, nil
		}
		resp.Body = &h1Body{pc: pc, body: resp.Body, stop: stop, keep: keep}
		return resp, nil
	}
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// release ends a request on pc: the connection goes back to the pool when
// the exchange completed cleanly and the context did not interfere.
func (pc *h1Conn) release(stop func() bool, keep bool) {
	if !stop() || !keep {
		// stop reports false when the cancellation already fired.
		pc.close()
		return
	}
	pc.t.put(pc)
}

// h1Body returns its connection to the pool once read to the end.
type h1Body struct {
	pc   *h1Conn
	body io.ReadCloser
	stop func() bool
	keep bool
	done bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.done = true
		b.pc.release(b.stop, b.keep)
	} else if err != nil {
		b.done = true
		b.stop()
		b.pc.close()
	}
	return n, err
}

func (b *h1Body) Close() error {
	if !b.done {
		// Not read to the end: the connection is mid-response.
		b.done = true
		b.stop()
		b.pc.close()
	}
	return nil
}

// get returns an idle connection or dials a new one. With probe, an idle
// connection is first checked for having been closed by the other side:
// a request that cannot be replayed must not be sent on a dead connection.
func (t *H1Transport) get(ctx context.Context, probe bool) (*h1Conn, bool, error) {
	idleTimeout := t.IdleTimeout
	if idleTimeout <= 0 {
		idleTimeout = 90 * time.Second
	}
	now := time.Now()
	t.mu.Lock()
	for n := len(t.idle); n > 0; n = len(t.idle) {
		pc := t.idle[n-1]
		t.idle = t.idle[:n-1]
		if now.Sub(pc.lastUsed) < idleTimeout && (!probe || idleAlive(pc.c)) {
			t.mu.Unlock()
			return pc, true, nil
		}
		pc.closeLocked()
	}
	t.mu.Unlock()
	c, err := t.Dial(ctx)
	if err != nil {
		return nil, false, err
	}
	br := h1ReaderPool.Get().(*bufio.Reader)
	br.Reset(c)
	bw := h1WriterPool.Get().(*bufio.Writer)
	bw.Reset(c)
	return &h1Conn{t: t, c: c, br: br, bw: bw}, false, nil
}

// idleAlive reports whether an idle keep-alive connection is still open: a
// non-blocking peek must find nothing to read (no FIN, no alert, no stray
// bytes). One syscall; Linux.
func idleAlive(c net.Conn) bool {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok { // *tls.Conn, gatedConn
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	alive := false
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = rerr == syscall.EAGAIN
		return true // never wait
	})
	return err == nil && alive
}

func (t *H1Transport) put(pc *h1Conn) {
	max := t.MaxIdle
	if max <= 0 {
		max = 64
	}
	pc.lastUsed = time.Now()
	t.mu.Lock()
	if t.closed || len(t.idle) >= max || pc.br.Buffered() > 0 {
		t.mu.Unlock()
		pc.close()
		return
	}
	t.idle = append(t.idle, pc)
	t.mu.Unlock()
}

// CloseIdleConnections closes every pooled connection.
func (t *H1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, pc := range idle {
		pc.close()
	}
	if f, ok := t.Fallback.(interface{ CloseIdleConnections() }); ok {
		f.CloseIdleConnections()
	}
}

func (pc *h1Conn) close() {
	pc.t.mu.Lock()
	defer pc.t.mu.Unlock()
	pc.closeLocked()
}

func (pc *h1Conn) closeLocked() {
	if pc.c == nil {
		return
	}
	pc.c.Close()
	pc.c = nil
	h1ReaderPool.Put(pc.br)
	h1WriterPool.Put(pc.bw)
	pc.br, pc.bw = nil, nil
}
