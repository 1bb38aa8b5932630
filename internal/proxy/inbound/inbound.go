// Package inbound is the proxy's inbound listener: it terminates mutual TLS
// from peer proxies (only identities of the mesh trust domain) and forwards
// to the local app on 127.0.0.1:<app-port>, branching on the negotiated
// ALPN protocol and on what the app speaks (Options.AppProtocol):
//
//   - h2: HTTP/2 requests, to the app over h2c or HTTP/1.1 (AppProtocol);
//   - http/1.1: HTTP/1.1 requests, to the app over HTTP/1.1 or h2c;
//   - weft-tcp: for a tcp app, the opaque byte stream to the app port; for
//     an HTTP app, parsed and served as HTTP/1.1 like http/1.1, so that no
//     unparsed bytes reach an HTTP port.
//
// Every HTTP request gets x-forwarded-client-cert: By=<own id>;URI=<peer id>,
// after every header the caller sent that names it in any case or spelling
// with '_' for '-' is removed.
//
// In mTLS mode PERMISSIVE (the service's mode in the configuration from
// Options.Provider, read for every new connection) a connection whose first
// byte does not start a TLS handshake is served as plaintext HTTP/1.x or h2c
// with no peer identity: its requests get no x-forwarded-client-cert (and
// any the caller sent is removed) and are counted with tls="false". A TLS
// connection is mutual TLS in either mode: a failed handshake stays failed.
package inbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"weft.dev/weft/internal/proxy/accesslog"
	"weft.dev/weft/internal/proxy/authz"
	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/connlimit"
	"weft.dev/weft/internal/proxy/h1fast"
	"weft.dev/weft/internal/proxy/h1parse"
	"weft.dev/weft/internal/proxy/h2guard"
	"weft.dev/weft/internal/proxy/identity"
	"weft.dev/weft/internal/proxy/jwtauthn"
	"weft.dev/weft/internal/proxy/tap"
	"weft.dev/weft/internal/proxy/telemetry"
	"weft.dev/weft/internal/proxy/trace"
	"weft.dev/weft/internal/proxy/upstream"
)

// Options configure the inbound listener.
type Options struct {
	Logger *slog.Logger
	// Identity is this proxy's SVID source (required).
	Identity *identity.Source
	// Metrics records requests and TCP connections; nil records nothing.
	Metrics *telemetry.Metrics
	// AccessLog writes the access log lines the service's mode asks for;
	// nil writes none. Tap streams requests to /tap subscribers; nil taps
	// nothing (see observe.go).
	AccessLog *accesslog.Logger
	Tap       *tap.Hub
	// Tracer gives requests a span of this hop; nil traces nothing.
	Tracer *trace.Tracer
	// Provider gives the current configuration, whose Service resource of
	// this workload's service sets the mTLS mode; nil means STRICT.
	Provider config.Provider
	// ServiceName and Namespace name this workload's service.
	ServiceName string
	Namespace   string
	// Version is this workload's version (the destination_version label).
	Version string
	// AppPort is the local app's port; 0 means the workload serves nothing
	// and requests get 503.
	AppPort int
	// AppHost is where the app listens (default 127.0.0.1).
	AppHost string
	// AppProtocol is what the app speaks ("" is AppHTTP).
	AppProtocol AppProtocol
	// HandshakeTimeout bounds a peer's TLS handshake (default 10s) and, in
	// mTLS mode PERMISSIVE, the wait for a connection's first byte.
	HandshakeTimeout time.Duration
	// Limits bound HTTP/1.x request heads (default 60 KiB, 100 fields;
	// over them: 431) and, for HTTP/2, the header list.
	Limits h1parse.Limits
	// HeaderTimeout bounds receiving a request head from its first byte
	// (default 10s; then 408).
	HeaderTimeout time.Duration
	// MaxConns caps the peer connections the listener holds open (default
	// DefaultMaxConns); past it a new connection is closed at once,
	// before the TLS handshake.
	MaxConns int
	// JWT returns the verifier of the service's RequestAuthentications
	// (see jwt.go); nil, or a nil result, authenticates nothing. JWKS holds
	// the key sets of its jwksUri rules.
	JWT  func() *jwtauthn.Verifier
	JWKS *jwtauthn.JWKSCache
	// Authz is the workload's AuthorizationPolicies (see authz.go); nil
	// authorizes everything.
	Authz *authz.View
}

// DefaultMaxConns is the inbound listener's default connection cap. Peers
// pool their connections (up to 64 idle HTTP/1.1 connections per peer
// proxy, one HTTP/2 connection), so 4,096 serves a few dozen busy callers;
// it bounds a flood to about 4,096 × 20 KiB of buffers plus TLS state.
const DefaultMaxConns = 4096

// Listener is the inbound listener.
type Listener struct {
	opts    Options
	log     *slog.Logger
	dest    string // "<name>.<namespace>"
	appAddr string
	h1      *upstream.Forwarder // HTTP/1.1 to the app
	h2      *upstream.Forwarder // HTTP/2 and gRPC (h2c) to the app
	dialer  net.Dialer
	drain   drainState // see drain.go
	probe   *h2cProbe  // for AppHTTP and AppTCP: does the app speak h2c?
	h2srv   *http2.Server
	routes  routeNames // routelabel.go
}

// New validates opts and returns a Listener.
func New(opts Options) (*Listener, error) {
	if opts.Identity == nil {
		return nil, errors.New("inbound: Identity is required")
	}
	if opts.ServiceName == "" || opts.Namespace == "" {
		return nil, errors.New("inbound: ServiceName and Namespace are required")
	}
	if opts.AppPort < 0 || opts.AppPort > 65535 {
		return nil, fmt.Errorf("inbound: AppPort %d out of range", opts.AppPort)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.AppHost == "" {
		opts.AppHost = "127.0.0.1"
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 10 * time.Second
	}
	if opts.HeaderTimeout <= 0 {
		opts.HeaderTimeout = 10 * time.Second
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	opts.Limits = opts.Limits.WithDefaults()
	proto, err := ParseAppProtocol(string(opts.AppProtocol))
	if err != nil {
		return nil, fmt.Errorf("inbound: %w", err)
	}
	opts.AppProtocol = proto
	l := &Listener{
		opts:    opts,
		log:     opts.Logger.With("component", "inbound"),
		dest:    opts.ServiceName + "." + opts.Namespace,
		appAddr: net.JoinHostPort(opts.AppHost, strconv.Itoa(opts.AppPort)),
		dialer:  net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
	}
	h1 := &upstream.H1Transport{
		Dial:        func(ctx context.Context) (net.Conn, error) { return l.dialer.DialContext(ctx, "tcp", l.appAddr) },
		MaxIdle:     64,
		IdleTimeout: 30 * time.Second,
		Fallback: &http.Transport{
			Proxy:               nil,
			DialContext:         l.dialer.DialContext,
			DisableCompression:  true,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
			TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		},
	}
	// h2c with prior knowledge to the app: HTTP/2 over plain TCP only.
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	h2 := &http.Transport{
		Protocols:           &h2c,
		DialContext:         l.dialer.DialContext,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	l.h1 = &upstream.Forwarder{Transport: h1, Rewrite: l.rewriteRequest, ErrorHandler: l.proxyError}
	l.h2 = &upstream.Forwarder{Transport: h2, Rewrite: l.rewriteRequest, ErrorHandler: l.proxyError}
	l.h2srv = &http2.Server{}
	l.probe = &h2cProbe{
		dial:    func(ctx context.Context) (net.Conn, error) { return l.dialer.DialContext(ctx, "tcp", l.appAddr) },
		timeout: time.Second,
	}
	return l, nil
}

// peerInfo is what one mTLS connection's requests share.
type peerInfo struct {
	id string // peer SPIFFE ID
	// service ("<name>.<namespace>") and namespace of the peer, from id
	// (metrics, logs).
	service, namespace string
	xfcc               string
	// plaintext is a connection accepted without TLS (mode PERMISSIVE):
	// id and xfcc are empty.
	plaintext bool
	// tunnel is a weft-tcp stream parsed as HTTP: its headers are the
	// app's, not the peer proxy's (routelabel.go).
	tunnel bool
}

type peerKey struct{}

// Serve accepts peer connections on ln until ctx ends, then closes ln and
// every connection and returns once all its goroutines have ended.
//
// Every HTTP/1.1 request head is checked by h1parse and served by the
// h1fast lane; only HTTP/2 (by ALPN) and CONNECT or Upgrade requests reach
// the net/http server, after which no HTTP/1 request follows on the
// connection.
func (l *Listener) Serve(ctx context.Context, ln net.Listener) error {
	conns := h1fast.NewConnListener(ln.Addr())
	srv := &http.Server{
		Handler:           h1fast.OneRequest(l),
		Protocols:         new(http.Protocols),
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){identity.ALPNTCP: l.serveTCP},
		HTTP2:             h2guard.HTTP2Config(),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext:       l.connContext,
		ReadHeaderTimeout: l.opts.HeaderTimeout,
		MaxHeaderBytes:    l.opts.Limits.MaxHeaderBytes,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(true)
	if err := l.configureH2(srv); err != nil {
		return err
	}
	l.drain.srv.Store(srv) // for Shutdown, see drain.go

	// HTTP/1.1 peers take the fast lane; HTTP/2 and anything unusual go
	// to the full net/http server.
	fast := &h1fast.Server{
		Handler:       l,
		Handoff:       func(c net.Conn) bool { return conns.Push(ctx, c) },
		ConnContext:   l.connContext,
		IdleTimeout:   5 * time.Minute,
		HeaderTimeout: l.opts.HeaderTimeout,
		Limits:        l.opts.Limits,
		Reject: func(c net.Conn, e *h1parse.Error) {
			l.opts.Metrics.HTTPRejected("inbound", e.Reason)
			l.log.Debug("request refused", "remote", c.RemoteAddr().String(), "status", e.Status, "reason", e.Reason, "error", e.Msg)
		},
	}
	plain := l.newPlainLane(ctx, ln.Addr(), fast.Reject)
	ln = connlimit.New(ln, l.opts.MaxConns, func(c net.Conn) {
		l.opts.Metrics.HTTPRejected("inbound", "connection_limit")
		l.log.Debug("connection refused: listener at its connection cap", "remote", c.RemoteAddr().String(), "max", l.opts.MaxConns)
		c.Close()
	})
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(conns) })
	wg.Go(plain.run)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		fast.Close()
		plain.close()
		srv.Close()
		l.h1.Transport.(*upstream.H1Transport).CloseIdleConnections()
		l.h2.Transport.(*http.Transport).CloseIdleConnections()
	})
	defer stop()

	tlsCfg := l.opts.Identity.ServerTLS(identity.ALPNHTTP2, identity.ALPNHTTP1, identity.ALPNTCP)
	var err error
	for {
		var c net.Conn
		c, err = ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				err = nil
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			err = fmt.Errorf("inbound: accepting: %w", err)
			break
		}
		if l.permissive() {
			wg.Go(func() { l.detect(ctx, c, tlsCfg, conns, fast, plain) })
			continue
		}
		wg.Go(func() { l.handshake(ctx, tls.Server(c, tlsCfg), conns, fast) })
	}
	ln.Close()
	plain.close()
	srv.Close()
	wg.Wait()
	return err
}

// detect serves a connection accepted in mTLS mode PERMISSIVE: as mutual
// TLS if its first byte starts a TLS handshake, as plaintext HTTP
// otherwise. A client that sends nothing within the handshake timeout is
// closed.
func (l *Listener) detect(ctx context.Context, c net.Conn, tlsCfg *tls.Config, conns *h1fast.ConnListener, fast *h1fast.Server, plain *plainLane) {
	sc, isTLS, err := sniff(c, time.Now().Add(l.opts.HandshakeTimeout))
	if err != nil {
		if errors.Is(err, errFirstByteTimeout) {
			l.opts.Metrics.HTTPRejected("inbound", "first_byte_timeout")
		}
		l.log.Debug("connection closed before its protocol was known", "remote", c.RemoteAddr().String(), "error", err)
		c.Close()
		return
	}
	if isTLS {
		l.handshake(ctx, tls.Server(sc, tlsCfg), conns, fast)
		return
	}
	plain.fast.ServeConn(ctx, sc)
}

// handshake completes the peer's TLS handshake before any byte reaches the
// HTTP server, so plaintext clients and foreign identities are dropped
// without a response.
func (l *Listener) handshake(ctx context.Context, c *tls.Conn, conns *h1fast.ConnListener, fast *h1fast.Server) {
	hctx, cancel := context.WithTimeout(ctx, l.opts.HandshakeTimeout)
	err := c.HandshakeContext(hctx)
	cancel()
	if err != nil {
		l.log.Debug("peer handshake failed", "remote", c.RemoteAddr().String(), "error", err)
		c.Close()
		return
	}
	// Without ALPN a TLS connection speaks HTTP/1.1: it takes the fast
	// lane and its checks too, never net/http's parser directly. A
	// weft-tcp stream to an HTTP app is HTTP/1.x from an app that
	// tunnelled it: it is parsed, and identity headers set, like any.
	if p := c.ConnectionState().NegotiatedProtocol; p == identity.ALPNHTTP1 || p == "" || p == identity.ALPNTCP && l.opts.AppProtocol.isHTTP() {
		fast.ServeConn(ctx, c)
		return
	}
	if !conns.Push(ctx, c) {
		c.Close()
	}
}

func (l *Listener) connContext(ctx context.Context, c net.Conn) context.Context {
	tc, ok := c.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return ctx
	}
	cs := tc.ConnectionState()
	peer, err := identity.PeerID(&cs)
	if err != nil { // cannot happen after a verified mTLS handshake
		return ctx
	}
	id := peer.String()
	svc, ns := peerService(id)
	return context.WithValue(ctx, peerKey{}, &peerInfo{
		id:      id,
		service: svc, namespace: ns,
		xfcc:   "By=" + l.opts.Identity.ID().String() + ";URI=" + id,
		tunnel: cs.NegotiatedProtocol == identity.ALPNTCP,
	})
}

// ServeHTTP forwards one request from a peer to the app.
func (l *Listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	l.enter(w, start)
	defer l.leave()
	peer, _ := r.Context().Value(peerKey{}).(*peerInfo)
	if peer == nil {
		upstream.WriteError(w, r, http.StatusForbidden, "weft: request without a verified peer identity")
		return
	}
	sw := upstream.NewStatusWriter(w)
	defer sw.Release()
	var ex exchange
	hw := l.observe(&ex, &r, sw, peer, start) // observe.go: metrics, access log, tap, trace
	switch {
	case !l.authenticate(hw, &r):
	case !l.authorize(hw, r, peer):
	case l.opts.AppPort == 0:
		upstream.WriteError(hw, r, http.StatusServiceUnavailable, "weft: this workload has no --app-port")
	case l.appH2(r):
		r, cancel := upstream.WithGRPCDeadline(r)
		l.h2.ServeHTTP(hw, r)
		cancel()
	case upstream.IsGRPC(r):
		// gRPC needs HTTP/2 to the app; say so instead of sending it as
		// HTTP/1.1. (404 maps to UNIMPLEMENTED.)
		upstream.WriteError(hw, r, http.StatusNotFound, "weft: "+l.dest+" serves HTTP/1.1 only (app protocol "+string(l.opts.AppProtocol)+"); gRPC needs an h2c app (--app-protocol h2c or grpc)")
	default:
		if r.ProtoMajor == 1 {
			// Let bidirectional HTTP/1.1 streams flow.
			http.NewResponseController(w).EnableFullDuplex()
		}
		l.h1.ServeHTTP(hw, r)
	}
	l.finish(&ex)
}

// appH2 reports whether r goes to the app over h2c: always for an h2c or
// gRPC app, never for an HTTP/1.1 one, and for HTTP/2 requests to an http
// or tcp app when the app answers the h2c preface.
func (l *Listener) appH2(r *http.Request) bool {
	switch l.opts.AppProtocol {
	case AppH2C, AppGRPC:
		return true
	case AppHTTP1:
		return false
	}
	return r.ProtoMajor == 2 && l.probe.speaksH2C(r.Context())
}

// rewriteRequest points a request at the app and sets the caller's
// identity, replacing any identity header the caller sent; a plaintext
// request has no identity to set.
func (l *Listener) rewriteRequest(out *http.Request) {
	u := *out.URL
	u.Scheme, u.Host = "http", l.appAddr
	out.URL = &u
	peer := out.Context().Value(peerKey{}).(*peerInfo)
	stripIdentityHeaders(out.Header)
	if !peer.plaintext {
		out.Header["X-Forwarded-Client-Cert"] = []string{peer.xfcc}
	}
}

func (l *Listener) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	// The app may have been restarted speaking something else.
	l.probe.forget()
	switch {
	case upstream.IsConnectError(err):
		upstream.WriteError(w, r, http.StatusServiceUnavailable, "weft: local app unreachable: "+err.Error())
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(r.Context().Err(), context.DeadlineExceeded):
		upstream.WriteError(w, r, http.StatusGatewayTimeout, "weft: local app timed out: "+err.Error())
	default:
		upstream.WriteError(w, r, http.StatusBadGateway, "weft: local app: "+err.Error())
	}
}

// serveTCP forwards a weft-tcp stream to the app port.
func (l *Listener) serveTCP(_ *http.Server, c *tls.Conn, h http.Handler) {
	ctx := context.Background()
	if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
		ctx = bc.BaseContext()
	}
	defer c.Close()
	if l.opts.AppPort == 0 {
		l.log.Debug("dropping tcp stream: no app port", "remote", c.RemoteAddr().String())
		return
	}
	if l.opts.AppProtocol.isHTTP() {
		// handshake serves these as HTTP; an HTTP port never gets an
		// unparsed stream.
		l.log.Debug("dropping tcp stream to an HTTP app", "remote", c.RemoteAddr().String())
		return
	}
	if !l.authorizeTCP(c) {
		return
	}
	app, err := l.dialer.DialContext(ctx, "tcp", l.appAddr)
	if err != nil {
		l.log.Debug("local app unreachable for tcp stream", "error", err)
		return
	}
	tl := telemetry.TCPLabels{Listener: "inbound", DestinationService: l.dest}
	l.opts.Metrics.TCPOpened(tl)
	up, down := upstream.Pipe(ctx, c, app)
	l.opts.Metrics.TCPConnection(tl, up, down)
}
