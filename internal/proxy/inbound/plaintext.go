package inbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"weft.dev/weft/internal/proxy/h1fast"
	"weft.dev/weft/internal/proxy/h1parse"
	"weft.dev/weft/internal/proxy/h2guard"
	"weft.dev/weft/internal/proxy/upstream"
)

// tlsRecordHandshake is the first byte of every TLS connection: the record
// type of the ClientHello (RFC 8446 §5.1). No HTTP/1.x method and not the
// HTTP/2 preface starts with it.
const tlsRecordHandshake = 0x16

// permissive reports whether this workload's service is in mTLS mode
// PERMISSIVE in the current configuration. Without a provider, or before
// the service's resource arrived, the mode is STRICT.
func (l *Listener) permissive() bool {
	if l.opts.Provider == nil {
		return false
	}
	s := l.opts.Provider.Load().Services[l.dest]
	return s != nil && s.PermissiveMTLS
}

// errFirstByteTimeout is sniff's error for a client that sent nothing
// within the handshake timeout.
var errFirstByteTimeout = errors.New("no first byte within the handshake timeout")

// sniff reads the first byte of c, waiting at most until deadline, and
// reports whether it starts a TLS handshake. The returned connection
// replays that byte.
func sniff(c net.Conn, deadline time.Time) (net.Conn, bool, error) {
	c.SetReadDeadline(deadline)
	var b [1]byte
	_, err := io.ReadFull(c, b[:])
	c.SetReadDeadline(time.Time{})
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, false, errFirstByteTimeout
		}
		return nil, false, fmt.Errorf("reading the first byte: %w", err)
	}
	return &sniffedConn{Conn: c, first: b[0], pending: true}, b[0] == tlsRecordHandshake, nil
}

// sniffedConn replays the one byte sniff read. Its reads and the first
// byte are used by one goroutine at a time (the TLS or HTTP server that
// owns the connection).
type sniffedConn struct {
	net.Conn
	first   byte
	pending bool
}

// Read returns the sniffed byte alone, then reads from the connection: a
// short read, which every reader of a net.Conn expects.
func (s *sniffedConn) Read(b []byte) (int, error) {
	if !s.pending || len(b) == 0 {
		return s.Conn.Read(b)
	}
	b[0] = s.first
	s.pending = false
	return 1, nil
}

// NetConn returns the sniffed connection.
func (s *sniffedConn) NetConn() net.Conn { return s.Conn }

// plainLane serves the plaintext connections of mTLS mode PERMISSIVE: HTTP/1.x
// through the h1fast lane and its h1parse checks, HTTP/2 with prior knowledge
// (h2c) and CONNECT or Upgrade through a net/http server behind an h2guard,
// as the outbound listener serves its apps. Their requests carry no peer
// identity (plainPeer).
type plainLane struct {
	fast  *h1fast.Server
	srv   *http.Server
	conns *h1fast.ConnListener
}

// plainPeer is the peerInfo of every plaintext request: no identity, no
// x-forwarded-client-cert.
var plainPeer = &peerInfo{plaintext: true}

// plainHandler serves the requests of plaintext connections while the
// service is PERMISSIVE. A connection accepted in PERMISSIVE outlives a
// switch to STRICT: its next request is refused (403, connection closed)
// instead of served, so that STRICT holds for every request within the
// configuration push, not only for new connections.
type plainHandler struct{ l *Listener }

func (h plainHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.l.permissive() {
		h.l.opts.Metrics.HTTPRejected("inbound", "plaintext_strict")
		h.l.log.Debug("plaintext request refused: mTLS mode is STRICT now", "remote", r.RemoteAddr)
		w.Header()["Connection"] = []string{"close"}
		upstream.WriteError(w, r, http.StatusForbidden, "weft: plaintext refused: "+h.l.dest+" is in mTLS mode STRICT")
		return
	}
	h.l.ServeHTTP(w, r)
}

func (l *Listener) plainContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, peerKey{}, plainPeer)
}

// newPlainLane builds the plaintext lane; run serves its handed-off
// connections until close.
func (l *Listener) newPlainLane(ctx context.Context, addr net.Addr, reject func(net.Conn, *h1parse.Error)) *plainLane {
	p := &plainLane{conns: h1fast.NewConnListener(addr)}
	p.srv = &http.Server{
		Handler:           h1fast.OneRequest(plainHandler{l}),
		Protocols:         new(http.Protocols),
		HTTP2:             h2guard.HTTP2Config(),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext:       l.plainContext,
		ReadHeaderTimeout: l.opts.HeaderTimeout,
		MaxHeaderBytes:    l.opts.Limits.MaxHeaderBytes,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
	}
	p.srv.Protocols.SetHTTP1(true)
	p.srv.Protocols.SetUnencryptedHTTP2(true)
	p.fast = &h1fast.Server{
		Handler: plainHandler{l},
		Handoff: func(c net.Conn) bool {
			g := &h2guard.Guard{OnAbuse: func(nc net.Conn, reason string) {
				l.log.Warn("closed abusive HTTP/2 connection", "listener", "inbound-plaintext", "reason", reason, "remote", nc.RemoteAddr().String())
				l.opts.Metrics.H2Abuse("inbound", reason)
			}}
			return p.conns.Push(ctx, g.Wrap(c))
		},
		AllowH2C:      true,
		ConnContext:   l.plainContext,
		IdleTimeout:   5 * time.Minute,
		HeaderTimeout: l.opts.HeaderTimeout,
		Limits:        l.opts.Limits,
		Reject:        reject,
	}
	return p
}

func (p *plainLane) run() { p.srv.Serve(p.conns) }

func (p *plainLane) close() {
	p.fast.Close()
	p.srv.Close()
}
