package outbound

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/telemetry"
	"weft.dev/weft/internal/proxy/upstream"
)

var connectOK = []byte("HTTP/1.1 200 Connection established\r\n\r\n")

// connect serves a CONNECT request: a tunnel to a mesh service (sniffed) or
// to any other host (passed through).
func (s *serving) connect(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 1 {
		upstream.WriteError(w, r, http.StatusMethodNotAllowed, "weft: CONNECT is supported over HTTP/1.1 only")
		return
	}
	if !s.group.add() {
		upstream.WriteError(w, r, http.StatusServiceUnavailable, "weft: proxy shutting down")
		return
	}
	defer s.group.done()
	l := s.l
	cfg := l.opts.Provider.Load()
	svc := cfg.Resolve(r.Host, l.opts.Namespace)

	var target net.Conn
	dest := "passthrough"
	if svc == nil {
		if name, ok := cfg.MeshName(r.Host); ok {
			upstream.WriteError(w, r, http.StatusServiceUnavailable, unknownServiceMessage(name))
			return
		}
		var ok bool
		if dest, ok = l.egressConnect(w, r, cfg); !ok { // egress.go
			return
		}
		var err error
		if target, err = l.dialer.DialContext(r.Context(), "tcp", r.Host); err != nil {
			upstream.WriteError(w, r, http.StatusBadGateway, passthroughMessage(r.Host, err))
			return
		}
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		if target != nil {
			target.Close()
		}
		upstream.WriteError(w, r, http.StatusInternalServerError, "weft: "+err.Error())
		return
	}
	conn.SetDeadline(time.Time{})
	if _, err := conn.Write(connectOK); err != nil {
		conn.Close()
		if target != nil {
			target.Close()
		}
		return
	}
	var src io.Reader = conn
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(b)), conn)
	}
	app := &bufConn{Conn: conn, r: bufio.NewReaderSize(src, 4096)}

	if svc == nil {
		tl := telemetry.TCPLabels{Listener: "outbound", DestinationService: dest}
		l.opts.Metrics.TCPOpened(tl)
		up, down := upstream.Pipe(s.ctx, app, target)
		l.opts.Metrics.TCPConnection(tl, up, down)
		return
	}

	var kind sniffKind
	switch portProtocol(svc, r.Host) {
	case "http", "http2", "grpc":
		// A port known to be HTTP is served as HTTP however slowly the
		// app writes: never as an opaque stream after the sniff timeout.
		// What is not HTTP gets a 400 from the HTTP server.
		kind = sniffedHTTP
	case "tcp":
		kind = sniffedOpaque
	default:
		conn.SetReadDeadline(time.Now().Add(l.opts.SniffTimeout))
		kind = sniff(app.r)
		conn.SetReadDeadline(time.Time{})
	}
	if kind == sniffedHTTP {
		if !s.tunnels.Push(s.ctx, &tunnelConn{bufConn: app, service: svc.Key}) {
			app.Close()
		}
		return
	}

	// Opaque stream (TLS from the app, a database protocol, ...).
	l.tunnelTCP(s.ctx, cfg, svc, authorityPort(r.Host), app, "outbound")
}

// forwardOpaque sends app's stream to mesh service key over mTLS (ALPN
// weft-tcp), counted under listener (the gateway's TLS and TCP listeners).
func (l *Listener) forwardOpaque(ctx context.Context, cfg *config.Config, app net.Conn, key, listener string) {
	svc := cfg.Services[key]
	if svc == nil {
		l.log.Debug("tcp tunnel", "service", key, "error", "not a mesh service")
		app.Close()
		return
	}
	l.tunnelTCP(ctx, cfg, svc, 0, app, listener)
}

// tunnelTCP streams app, opaque, over mTLS (ALPN weft-tcp) to an endpoint
// of mesh service svc, or of the backend its TCPRoutes for port pick
// (tcpupstream.go), counted under listener, and closes it.
func (l *Listener) tunnelTCP(ctx context.Context, cfg *config.Config, svc *config.Service, port int, app net.Conn, listener string) {
	upConn, key, err := l.dialOpaque(ctx, cfg, svc, port)
	if err != nil {
		l.log.Debug("tcp tunnel", "service", key, "error", err)
		app.Close()
		return
	}
	tl := telemetry.TCPLabels{Listener: listener, DestinationService: key}
	l.opts.Metrics.TCPOpened(tl)
	up, down := upstream.Pipe(ctx, app, upConn)
	l.opts.Metrics.TCPConnection(tl, up, down)
}

// portProtocol is the declared protocol of the service port a CONNECT
// authority names ("http", "http2", "grpc", "tcp"), or "" (detect) when the
// port declares none or the authority names no declared port.
func portProtocol(svc *config.Service, authority string) string {
	n := authorityPort(authority)
	if n == 0 {
		return ""
	}
	for _, p := range svc.Ports {
		if int(p.Number) == n {
			return p.Protocol
		}
	}
	return ""
}

type sniffKind int

const (
	undecided sniffKind = iota
	sniffedHTTP
	sniffedOpaque
)

const maxSniff = 4096

var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// sniff reads the first bytes of a tunnel (leaving them buffered) and tells
// HTTP (an HTTP/2 preface or an HTTP/1.x request line) from anything else.
// A read error, including the sniff deadline, means opaque.
func sniff(br *bufio.Reader) sniffKind {
	n := 1
	for {
		if _, err := br.Peek(n); err != nil {
			return sniffedOpaque
		}
		b, _ := br.Peek(br.Buffered())
		if k := classify(b); k != undecided {
			return k
		}
		if len(b) >= maxSniff {
			return sniffedOpaque
		}
		n = len(b) + 1
	}
}

// classify decides from a tunnel's first bytes; undecided asks for more.
func classify(b []byte) sniffKind {
	if len(b) < len(h2Preface) && bytes.HasPrefix(h2Preface, b) {
		return undecided
	}
	if bytes.HasPrefix(b, h2Preface) {
		return sniffedHTTP
	}
	// HTTP/1.x request line: METHOD SP target SP HTTP/1.x CRLF
	i := 0
	for i < len(b) && b[i] >= 'A' && b[i] <= 'Z' {
		i++
	}
	if i == len(b) {
		if i > 16 {
			return sniffedOpaque
		}
		return undecided
	}
	if i == 0 || b[i] != ' ' {
		return sniffedOpaque
	}
	eol := bytes.IndexByte(b, '\n')
	if eol < 0 {
		return undecided
	}
	line := bytes.TrimSuffix(b[:eol], []byte("\r"))
	if bytes.HasSuffix(line, []byte(" HTTP/1.1")) || bytes.HasSuffix(line, []byte(" HTTP/1.0")) {
		return sniffedHTTP
	}
	return sniffedOpaque
}

// bufConn is a connection whose first bytes were read ahead into r.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes the connection when it supports it.
func (c *bufConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// tunnelConn is a CONNECT tunnel carrying HTTP to one mesh service.
type tunnelConn struct {
	*bufConn
	service string
}

func (t *tunnelConn) tunnelService() string { return t.service }

// guardedTunnel is a tunnelConn carrying HTTP/2, behind the flood guard.
type guardedTunnel struct {
	net.Conn
	service string
}

func (t *guardedTunnel) tunnelService() string { return t.service }

type tunnelKey struct{}

// tunnelContext fixes the destination of requests on a tunnel.
func tunnelContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(interface{ tunnelService() string }); ok {
		return context.WithValue(ctx, tunnelKey{}, tc.tunnelService())
	}
	return ctx
}

// group tracks hijacked streams so Serve can wait for them; once closed it
// admits no more.
type group struct {
	mu     sync.Mutex
	n      int
	closed bool
	zero   chan struct{}
}

func (g *group) add() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *group) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 && g.zero != nil {
		close(g.zero)
		g.zero = nil
	}
}

// close admits no more streams and waits for the running ones.
func (g *group) close() {
	g.mu.Lock()
	g.closed = true
	if g.n == 0 {
		g.mu.Unlock()
		return
	}
	zero := make(chan struct{})
	g.zero = zero
	g.mu.Unlock()
	<-zero
}

// tunnelServiceOf is the mesh service of a tunnel connection that the
// tunnel's fast lane handed off (wrapped to replay what it read).
func tunnelServiceOf(c net.Conn) string {
	if u, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = u.NetConn()
	}
	if tc, ok := c.(interface{ tunnelService() string }); ok {
		return tc.tunnelService()
	}
	return ""
}
