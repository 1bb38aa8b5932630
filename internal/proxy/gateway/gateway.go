// Package gateway is the ingress gateway's listeners: it opens the ports
// its Gateway's listeners name, terminates TLS on HTTPS listeners (the
// certificate chosen by SNI), checks every request head like the sidecar
// does (h1parse, through the h1fast lane), picks the routes of the
// request's host and hands the request to the outbound listener's
// forward path (outbound.Listener.ServeGateway), which calls the mesh
// service over mTLS with the gateway's own identity.
package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/h1fast"
	"weft.dev/weft/internal/proxy/h1parse"
	"weft.dev/weft/internal/proxy/h2guard"
	"weft.dev/weft/internal/proxy/upstream"
)

// Source gives the current Gateway and a channel closed when it changes
// (the xDS client implements it).
type Source interface {
	Gateway() (*config.Gateway, <-chan struct{})
}

// Forwarder serves a request with a host's routes (outbound.Listener).
type Forwarder interface {
	ServeGateway(w http.ResponseWriter, r *http.Request, svc *config.Service)
	// ServeGatewayStream forwards a TLS (passthrough) or TCP connection
	// to service key as an opaque stream and closes it.
	ServeGatewayStream(ctx context.Context, c net.Conn, key string)
}

// Options configure a gateway's listeners.
type Options struct {
	Logger    *slog.Logger
	Source    Source
	Forwarder Forwarder
	// Address is the host the listeners bind ("" is every interface).
	Address string
	// Limits and HeaderTimeout bound request heads as on the sidecar's
	// outbound listener.
	Limits        h1parse.Limits
	HeaderTimeout time.Duration
	// Rejected, if set, counts a refused request or connection by reason.
	Rejected func(reason string)
	// Bound, if set, is told the address of every port opened.
	Bound func(listener string, addr net.Addr)
}

// Serve opens and closes listeners as the Gateway changes until ctx ends.
func Serve(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Rejected == nil {
		opts.Rejected = func(string) {}
	}
	opts.Limits = opts.Limits.WithDefaults()
	ports := map[uint32]*port{}
	defer func() {
		for _, p := range ports {
			p.close()
		}
	}()
	for {
		g, changed := opts.Source.Gateway()
		reconcile(ctx, &opts, ports, g)
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// port is one open port and the listeners of the Gateway on it.
type port struct {
	number uint32
	kind   string // "http", "https", or "stream" (TLS passthrough, TCP)
	ln     net.Listener
	srv    *h1fast.Server
	// h2 serves HTTP/2 (h2c prior knowledge, or ALPN h2 over TLS) with
	// net/http; h2conns feeds it.
	h2      *http.Server
	h2conns *h1fast.ConnListener
	// h1 serves the HTTP/1.1 requests h1fast hands off (Upgrade), one per
	// connection.
	h1      *http.Server
	h1conns *h1fast.ConnListener
	cfg     atomic.Pointer[[]*config.GatewayListener]
	opts    *Options
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// reconcile opens, updates and closes ports so they serve g (nil closes
// every port).
func reconcile(ctx context.Context, opts *Options, ports map[uint32]*port, g *config.Gateway) {
	want := map[uint32][]*config.GatewayListener{}
	if g != nil {
		for i := range g.Listeners {
			l := &g.Listeners[i]
			want[l.Port] = append(want[l.Port], l)
		}
	}
	for n, p := range ports {
		ls, ok := want[n]
		if !ok || portKind(ls[0]) != p.kind {
			p.close()
			delete(ports, n)
		}
	}
	for n, ls := range want {
		if p, ok := ports[n]; ok {
			p.cfg.Store(&ls)
			continue
		}
		p, err := open(ctx, opts, n, ls)
		if err != nil {
			opts.Logger.Error("gateway listener not served", "port", n, "listener", ls[0].Name, "err", err)
			opts.Rejected("listen_failed")
			continue
		}
		ports[n] = p
	}
}

// open listens on port n and serves listeners ls on it.
func open(ctx context.Context, opts *Options, n uint32, ls []*config.GatewayListener) (*port, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(opts.Address, strconv.Itoa(int(n))))
	if err != nil {
		return nil, fmt.Errorf("listening on port %d: %w", n, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &port{number: n, kind: portKind(ls[0]), ln: ln, opts: opts, cancel: cancel}
	p.cfg.Store(&ls)
	p.h2conns = h1fast.NewConnListener(ln.Addr())
	p.h2 = &http.Server{
		Handler:           p,
		Protocols:         new(http.Protocols),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: opts.HeaderTimeout,
		MaxHeaderBytes:    opts.Limits.MaxHeaderBytes,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		HTTP2:             h2guard.HTTP2Config(),
	}
	p.h2.Protocols.SetHTTP2(true)
	p.h2.Protocols.SetUnencryptedHTTP2(true)
	p.wg.Go(func() { p.h2.Serve(p.h2conns) })
	p.h1conns = h1fast.NewConnListener(ln.Addr())
	p.h1 = &http.Server{
		Handler:           h1fast.OneRequest(p),
		Protocols:         new(http.Protocols),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: opts.HeaderTimeout,
		MaxHeaderBytes:    opts.Limits.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}
	p.h1.Protocols.SetHTTP1(true)
	p.wg.Go(func() { p.h1.Serve(p.h1conns) })
	p.srv = &h1fast.Server{
		Handler:       p,
		Handoff:       func(c net.Conn) bool { return p.handoff(ctx, c) },
		AllowH2C:      true,
		HeaderTimeout: opts.HeaderTimeout,
		Limits:        opts.Limits,
		Reject: func(c net.Conn, e *h1parse.Error) {
			opts.Rejected(e.Reason)
			opts.Logger.Debug("request refused", "remote", c.RemoteAddr().String(), "status", e.Status, "reason", e.Reason, "error", e.Msg)
		},
	}
	if opts.Bound != nil {
		for _, l := range ls {
			opts.Bound(l.Name, ln.Addr())
		}
	}
	opts.Logger.Info("gateway listening", "port", n, "addr", ln.Addr().String(), "kind", p.kind)
	p.wg.Go(func() { p.accept(ctx) })
	return p, nil
}

// close stops accepting, closes the port's connections and waits for them.
func (p *port) close() {
	p.cancel()
	p.ln.Close()
	p.srv.Close()
	p.h2conns.Close()
	p.h2.Close()
	p.h1conns.Close()
	p.h1.Close()
	p.wg.Wait()
}

func (p *port) accept(ctx context.Context) {
	var tc *tls.Config
	if p.kind == "https" {
		tc = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}, GetCertificate: p.certificate}
	}
	for {
		c, err := p.ln.Accept()
		if err != nil {
			var ne net.Error
			if ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return
		}
		p.wg.Go(func() {
			if p.kind == "stream" {
				p.serveStream(ctx, c)
				return
			}
			if tc != nil {
				t := tls.Server(c, tc)
				hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := t.HandshakeContext(hctx)
				cancel()
				if err != nil {
					p.opts.Rejected("tls_handshake")
					p.opts.Logger.Debug("TLS handshake refused", "remote", c.RemoteAddr().String(), "err", err)
					c.Close()
					return
				}
				if t.ConnectionState().NegotiatedProtocol == "h2" {
					if !p.h2conns.Push(ctx, t) {
						t.Close()
					}
					return
				}
				c = t
			}
			p.srv.ServeConn(ctx, c)
		})
	}
}

// certificate picks the certificate of the HTTPS listener whose hostname
// covers the ClientHello's SNI (exact, then longest wildcard, then a
// listener without hostname); an SNI no listener serves fails the
// handshake.
func (p *port) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	l := pick(*p.cfg.Load(), hello.ServerName)
	if l == nil || l.Cert == nil {
		return nil, fmt.Errorf("gateway: no listener on port %d for server name %q", p.number, hello.ServerName)
	}
	return l.Cert, nil
}

// pick is the listener of ls whose hostname covers host best.
func pick(ls []*config.GatewayListener, host string) *config.GatewayListener {
	host = strings.ToLower(host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	var best *config.GatewayListener
	for _, l := range ls {
		switch {
		case l.Hostname == host:
			return l
		case l.Hostname == "":
			if best == nil {
				best = l
			}
		case config.HostCovers(l.Hostname, host):
			if best == nil || len(l.Hostname) > len(best.Hostname) {
				best = l
			}
		}
	}
	return best
}

// ServeHTTP routes a request by its Host: to the listener that serves the
// host, then to the routes of the host on it; a host none serves is
// answered 404 with x-weft-reason no-matching-host.
func (p *port) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		p.opts.Rejected("upgrade_not_supported")
		w.Header().Set("X-Weft-Reason", "upgrade-not-supported")
		upstream.WriteError(w, r, http.StatusNotImplemented, "weft: the gateway serves no CONNECT")
		return
	}
	l := pick(*p.cfg.Load(), r.Host)
	var svc *config.Service
	if l != nil {
		svc = l.Host(r.Host)
	}
	if svc == nil {
		p.opts.Rejected("no_matching_host")
		w.Header().Set("X-Weft-Reason", "no-matching-host")
		upstream.WriteError(w, r, http.StatusNotFound, "weft: no route of this gateway on port "+strconv.Itoa(int(p.number))+" serves host "+strconv.Quote(r.Host))
		return
	}
	p.opts.Forwarder.ServeGateway(w, r, svc)
}

// handoff takes the connections h1fast hands over: the HTTP/2 preface
// (h2c) goes to the HTTP/2 server; CONNECT and Upgrade requests go to the
// HTTP/1.1 server, which refuses CONNECT and forwards an Upgrade (a
// WebSocket) like any request, relaying the upgraded stream.
func (p *port) handoff(ctx context.Context, c net.Conn) bool {
	br := bufio.NewReaderSize(c, len(h2Preface))
	conns := p.h1conns
	if b, err := br.Peek(len(h2Preface)); err == nil && bytes.Equal(b, h2Preface) {
		conns = p.h2conns
	}
	if !conns.Push(ctx, &replayConn{Conn: c, r: br}) {
		c.Close()
	}
	return true
}

var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// portKind is how a port serving listener l (the first on the port: the
// API allows only one protocol family per port) handles connections.
func portKind(l *config.GatewayListener) string {
	switch l.Protocol {
	case "HTTPS":
		return "https"
	case "TLS", "TCP":
		return "stream"
	}
	return "http"
}

// errHelloRead stops the handshake once the ClientHello is read.
var errHelloRead = errors.New("ClientHello read")

// serveStream forwards a TLS passthrough or TCP connection: a TLS
// listener reads the ClientHello's SNI (bounded by the header timeout)
// and picks the TLSRoute that serves it, a TCP listener its TCPRoute; the
// bytes read are replayed to the backend. A connection no route serves is
// closed (for TLS, before any handshake answer).
func (p *port) serveStream(ctx context.Context, c net.Conn) {
	ls := *p.cfg.Load()
	var sni string
	var prefix []byte
	if ls[0].Protocol == "TLS" {
		var buf bytes.Buffer
		c.SetReadDeadline(time.Now().Add(p.headerTimeout()))
		err := tls.Server(helloConn{Conn: c, r: io.TeeReader(io.LimitReader(c, 64<<10), &buf)}, &tls.Config{
			GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
				sni = h.ServerName
				return nil, errHelloRead
			},
		}).Handshake()
		c.SetReadDeadline(time.Time{})
		if !errors.Is(err, errHelloRead) {
			p.opts.Rejected("tls_no_client_hello")
			p.opts.Logger.Debug("TLS passthrough: no ClientHello", "remote", c.RemoteAddr().String(), "err", err)
			c.Close()
			return
		}
		prefix = buf.Bytes()
	}
	var route *config.GatewayStream
	for _, l := range ls {
		if l.Protocol == "TLS" && l.Hostname != "" && !config.HostCovers(l.Hostname, strings.ToLower(sni)) {
			continue
		}
		if route = l.Stream(sni); route != nil {
			break
		}
	}
	key := ""
	if route != nil {
		key = route.Pick(rand.Uint32())
	}
	if key == "" {
		p.opts.Rejected("no_matching_route")
		p.opts.Logger.Debug("stream refused: no route", "port", p.number, "sni", sni, "remote", c.RemoteAddr().String())
		c.Close()
		return
	}
	p.opts.Forwarder.ServeGatewayStream(ctx, &replayConn{Conn: c, r: io.MultiReader(bytes.NewReader(prefix), c)}, key)
}

func (p *port) headerTimeout() time.Duration {
	if p.opts.HeaderTimeout > 0 {
		return p.opts.HeaderTimeout
	}
	return 10 * time.Second
}

// helloConn reads the ClientHello through r and discards what the TLS
// server writes (its alert): the client's handshake is the backend's.
type helloConn struct {
	net.Conn
	r io.Reader
}

func (c helloConn) Read(b []byte) (int, error)  { return c.r.Read(b) }
func (c helloConn) Write(b []byte) (int, error) { return len(b), nil }

// replayConn replays the bytes read for the SNI before the connection's.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// CloseWrite half-closes the client connection when the backend is done
// sending.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
