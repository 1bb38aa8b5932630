// Package outbound is the proxy's outbound listener: an explicit HTTP proxy
// on loopback that the local app reaches through HTTP_PROXY / HTTPS_PROXY.
//
// It accepts HTTP/1.1 in absolute form (GET http://orders/x) or origin form
// with a Host header, HTTP/2 with prior knowledge (h2c), and CONNECT. The
// authority names the destination; mesh services are routed (route match,
// weighted backend, endpoint pick) and sent to a peer proxy over mTLS, and
// anything else is passed through unchanged. A CONNECT tunnel to a mesh
// service is sniffed: HTTP/2 or HTTP/1.x inside is served as mesh HTTP with
// the destination fixed to that service, anything else (e.g. TLS from the
// app) is forwarded as an opaque stream (ALPN weft-tcp).
package outbound

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"weft.dev/weft/internal/proxy/accesslog"
	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/connlimit"
	"weft.dev/weft/internal/proxy/h1fast"
	"weft.dev/weft/internal/proxy/h1parse"
	"weft.dev/weft/internal/proxy/h2guard"
	"weft.dev/weft/internal/proxy/identity"
	"weft.dev/weft/internal/proxy/mirror"
	"weft.dev/weft/internal/proxy/retry"
	"weft.dev/weft/internal/proxy/tap"
	"weft.dev/weft/internal/proxy/telemetry"
	"weft.dev/weft/internal/proxy/trace"
	"weft.dev/weft/internal/proxy/upstream"
)

// Options configure the outbound listener.
type Options struct {
	Logger *slog.Logger
	// Provider gives the current mesh config and endpoints (required).
	Provider config.Provider
	// Identity is this proxy's SVID source (required).
	Identity *identity.Source
	// Metrics records requests and TCP streams; nil records nothing.
	Metrics *telemetry.Metrics
	// AccessLog writes the access log lines of the services whose mode
	// asks for them; nil writes none. Tap streams requests to /tap
	// subscribers; nil taps nothing (see observe.go).
	AccessLog *accesslog.Logger
	Tap       *tap.Hub
	// Tracer gives requests a span of this hop; nil traces nothing.
	Tracer *trace.Tracer
	// ServiceName and Namespace name this workload's service; names without
	// a namespace resolve in Namespace.
	ServiceName string
	Namespace   string
	// Pool is the upstream connection pool; nil makes one from Identity.
	// Serve prunes it as the config changes and closes it on return.
	Pool *upstream.Pool
	// SniffTimeout is how long a CONNECT tunnel to a mesh service waits for
	// the app's first bytes before treating it as opaque TCP (default 300ms;
	// server-speaks-first protocols pay it once per connection).
	SniffTimeout time.Duration
	// EndpointsTimeout bounds waiting for a service's endpoints on first use
	// (default 10s).
	EndpointsTimeout time.Duration
	// DialTimeout bounds connecting to a passthrough destination (default 10s).
	DialTimeout time.Duration
	// Limits bound HTTP/1.x request heads (default 60 KiB, 100 fields;
	// over them: 431) and, for HTTP/2, the header list.
	Limits h1parse.Limits
	// HeaderTimeout bounds receiving a request head from its first byte
	// (default 10s; then 408).
	HeaderTimeout time.Duration
	// EgressGateway makes this proxy an egress gateway (weft run
	// --egress): its inbound listener passes mesh callers' requests to
	// this listener in origin form, which calls the host they name
	// (egress.go).
	EgressGateway bool
	// MaxConns caps the app connections the listener holds open (default
	// DefaultMaxConns); past it a new connection is answered 503 and
	// closed at once.
	MaxConns int
}

// DefaultMaxConns is the outbound listener's default connection cap. The
// outbound serves one local app on loopback: 1,024 is more than a
// connection-pooling client opens (net/http and most pools keep tens to a
// few hundred) while bounding what a runaway or hostile app can make the
// sidecar hold (about 20 KiB per idle connection, 64 KiB while a large
// head is read).
const DefaultMaxConns = 1024

// Listener is the outbound listener.
type Listener struct {
	opts   Options
	log    *slog.Logger
	source string // "<name>.<namespace>"
	selfID string // this workload's SPIFFE ID
	pool   *upstream.Pool
	dialer net.Dialer

	h1          *upstream.Forwarder    // HTTP/1.1 to peer proxies
	h2          *upstream.Forwarder    // HTTP/2 and gRPC to peer proxies
	passthrough *httputil.ReverseProxy // to non-mesh destinations
	passTr      *http.Transport
	egressProxy *httputil.ReverseProxy // to declared external hosts (egress.go)
	admission   admission              // breaker.go
	budgets     retry.Budgets          // per destination, for the proxy's life (retry.go)
	mirrors     *mirror.Limiter        // mirror.go
}

// New validates opts and returns a Listener.
func New(opts Options) (*Listener, error) {
	if opts.Provider == nil {
		return nil, errors.New("outbound: Provider is required")
	}
	if opts.Identity == nil {
		return nil, errors.New("outbound: Identity is required")
	}
	if opts.ServiceName == "" || opts.Namespace == "" {
		return nil, errors.New("outbound: ServiceName and Namespace are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SniffTimeout <= 0 {
		opts.SniffTimeout = 300 * time.Millisecond
	}
	if opts.EndpointsTimeout <= 0 {
		opts.EndpointsTimeout = 10 * time.Second
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.HeaderTimeout <= 0 {
		opts.HeaderTimeout = 10 * time.Second
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	opts.Limits = opts.Limits.WithDefaults()
	l := &Listener{
		opts:   opts,
		log:    opts.Logger.With("component", "outbound"),
		source: opts.ServiceName + "." + opts.Namespace,
		selfID: opts.Identity.ID().String(),
		pool:   opts.Pool,
		dialer: net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second},
	}
	if l.pool == nil {
		l.pool = upstream.New(upstream.Options{Logger: opts.Logger, Identity: opts.Identity, Balancer: opts.Metrics})
	}
	l.mirrors = mirror.NewLimiter(0) // mirror.go
	errLog := slog.NewLogLogger(l.log.Handler(), slog.LevelDebug)
	l.h1 = &upstream.Forwarder{Rewrite: rewriteMeshRequest, Transport: leaseTransport{}, ErrorHandler: l.meshError}
	l.h2 = &upstream.Forwarder{Rewrite: rewriteMeshRequest, Transport: leaseTransport{h2: true}, ErrorHandler: l.meshError}
	l.passTr = &http.Transport{
		Proxy:               nil,
		DialContext:         l.dialer.DialContext,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	l.passthrough = &httputil.ReverseProxy{Rewrite: rewritePassthrough, Transport: l.passTr, BufferPool: upstream.BufferPool, ErrorLog: errLog, ErrorHandler: passthroughError}
	l.egressProxy = l.newEgressProxy()
	return l, nil
}

// Serve accepts app connections on ln until ctx ends, then closes ln, the
// connections and tunnels it serves, and returns once its goroutines ended.
//
// Every HTTP/1.x request head, on a connection or inside a CONNECT tunnel,
// is checked by h1parse and served by the h1fast lane; only CONNECT,
// Upgrade and HTTP/2 (h2c prior knowledge, or inside a tunnel) reach the
// net/http servers, after which no HTTP/1 request follows on the
// connection.
func (l *Listener) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &serving{l: l, ctx: ctx, tunnels: h1fast.NewConnListener(ln.Addr())}
	newServer := func(connCtx func(context.Context, net.Conn) context.Context) *http.Server {
		srv := &http.Server{
			Handler:           h1fast.OneRequest(s),
			Protocols:         new(http.Protocols),
			BaseContext:       func(net.Listener) context.Context { return ctx },
			ConnContext:       connCtx,
			ReadHeaderTimeout: l.opts.HeaderTimeout,
			MaxHeaderBytes:    l.opts.Limits.MaxHeaderBytes,
			IdleTimeout:       5 * time.Minute,
			ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
			HTTP2:             h2guard.HTTP2Config(),
		}
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
		return srv
	}
	reject := func(c net.Conn, e *h1parse.Error) {
		l.opts.Metrics.HTTPRejected("outbound", e.Reason)
		l.log.Debug("request refused", "remote", c.RemoteAddr().String(), "status", e.Status, "reason", e.Reason, "error", e.Msg)
	}
	handedOff := h1fast.NewConnListener(ln.Addr())
	tunnelH2 := h1fast.NewConnListener(ln.Addr())
	main := newServer(nil)
	tunnel := newServer(func(ctx context.Context, c net.Conn) context.Context {
		if u, ok := c.(interface{ NetConn() net.Conn }); ok {
			c = u.NetConn() // handed off by fastTunnel
		}
		return tunnelContext(ctx, c)
	})
	fast := &h1fast.Server{
		Handler:       s,
		Handoff:       func(c net.Conn) bool { return handedOff.Push(ctx, l.guardConn("outbound", c)) },
		AllowH2C:      true,
		IdleTimeout:   5 * time.Minute,
		HeaderTimeout: l.opts.HeaderTimeout,
		Limits:        l.opts.Limits,
		Reject:        reject,
	}
	// HTTP/1.x inside a CONNECT tunnel takes the same checks and lane,
	// its destination fixed by tunnelContext.
	fastTunnel := &h1fast.Server{
		Handler: s,
		Handoff: func(c net.Conn) bool {
			return tunnelH2.Push(ctx, &guardedTunnel{Conn: l.guardConn("outbound-tunnel", c), service: tunnelServiceOf(c)})
		},
		AllowH2C:      true,
		ConnContext:   tunnelContext,
		IdleTimeout:   5 * time.Minute,
		HeaderTimeout: l.opts.HeaderTimeout,
		Limits:        l.opts.Limits,
		Reject:        reject,
	}
	capped := connlimit.New(ln, l.opts.MaxConns, func(c net.Conn) {
		l.opts.Metrics.HTTPRejected("outbound", "connection_limit")
		l.log.Debug("connection refused: listener at its connection cap", "remote", c.RemoteAddr().String(), "max", l.opts.MaxConns)
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		io.WriteString(c, connLimitResponse)
		c.Close()
	})

	var wg sync.WaitGroup
	wg.Go(func() { tunnel.Serve(tunnelH2) })
	wg.Go(func() { main.Serve(handedOff) })
	wg.Go(func() { l.pool.Run(ctx, l.opts.Provider, time.Second) })
	wg.Go(func() {
		for {
			c, err := s.tunnels.Accept()
			if err != nil {
				return
			}
			if isH2Tunnel(c) {
				c = &guardedTunnel{Conn: l.guardConn("outbound-tunnel", c), service: c.(*tunnelConn).service}
				if !tunnelH2.Push(ctx, c) {
					c.Close()
				}
				continue
			}
			wg.Go(func() { fastTunnel.ServeConn(ctx, c) })
		}
	})
	errc := make(chan error, 1)
	wg.Go(func() {
		for {
			c, err := capped.Accept()
			if err != nil {
				if ctx.Err() != nil {
					errc <- nil
					return
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				errc <- err
				return
			}
			wg.Go(func() { fast.ServeConn(ctx, c) })
		}
	})

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("outbound: serving: %w", err)
	}
	cancel()
	ln.Close()
	s.tunnels.Close()
	fast.Close()
	fastTunnel.Close()
	main.Close()
	tunnel.Close()
	s.group.close() // waits for hijacked streams; they end with ctx
	wg.Wait()
	l.passTr.CloseIdleConnections()
	return err
}

// connLimitResponse answers a connection over the listener's cap.
const connLimitResponse = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 48\r\n\r\n" +
	"weft: outbound listener at its connection limit\n"

// isH2Tunnel reports whether a sniffed CONNECT tunnel starts with the
// HTTP/2 preface (sniff left it buffered).
func isH2Tunnel(c net.Conn) bool {
	tc, ok := c.(*tunnelConn)
	if !ok {
		return false
	}
	b, _ := tc.r.Peek(tc.r.Buffered())
	return bytes.HasPrefix(b, h2Preface)
}
