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
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"
	"weft.dev/weft/internal/proxy/h1fast"
	"weft.dev/weft/internal/proxy/h2guard"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/identity"
	"weft.dev/weft/internal/proxy/telemetry"
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
}

// Listener is the outbound listener.
type Listener struct {
	opts   Options
	log    *slog.Logger
	source string // "<name>.<namespace>"
	pool   *upstream.Pool
	dialer net.Dialer

	h1          *upstream.Forwarder    // HTTP/1.1 to peer proxies
	h2          *upstream.Forwarder    // HTTP/2 and gRPC to peer proxies
	passthrough *httputil.ReverseProxy // to non-mesh destinations
	passTr      *http.Transport
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
	l := &Listener{
		opts:   opts,
		log:    opts.Logger.With("component", "outbound"),
		source: opts.ServiceName + "." + opts.Namespace,
		pool:   opts.Pool,
		dialer: net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second},
	}
	if l.pool == nil {
		l.pool = upstream.New(upstream.Options{Logger: opts.Logger, Identity: opts.Identity})
	}
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
	return l, nil
}

// Serve accepts app connections on ln until ctx ends, then closes ln, the
// connections and tunnels it serves, and returns once its goroutines ended.
func (l *Listener) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &serving{l: l, ctx: ctx, tunnels: h1fast.NewConnListener(ln.Addr())}
	newServer := func(connCtx func(context.Context, net.Conn) context.Context) *http.Server {
		srv := &http.Server{
			Handler:           s,
			Protocols:         new(http.Protocols),
			BaseContext:       func(net.Listener) context.Context { return ctx },
			ConnContext:       connCtx,
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       5 * time.Minute,
			ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
			HTTP2:             h2guard.HTTP2Config(),
		}
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
		return srv
	}
	// Plain HTTP/1.1 requests take the fast lane; CONNECT, h2c and
	// anything unusual go to the full net/http server.
	handedOff := h1fast.NewConnListener(ln.Addr())
	main := newServer(nil)
	tunnel := newServer(tunnelContext)
	fast := &h1fast.Server{
		Handler:     s,
		Handoff:     func(c net.Conn) bool { return handedOff.Push(ctx, l.guardConn("outbound", c)) },
		IdleTimeout: 5 * time.Minute,
	}

	var wg sync.WaitGroup
	wg.Go(func() { tunnel.Serve(s.tunnels) })
	wg.Go(func() { main.Serve(handedOff) })
	wg.Go(func() { l.pool.Run(ctx, l.opts.Provider, time.Second) })
	errc := make(chan error, 1)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
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
	fast.Close()
	main.Close()
	tunnel.Close()
	s.group.close() // waits for hijacked streams; they end with ctx
	wg.Wait()
	l.passTr.CloseIdleConnections()
	return err
}
