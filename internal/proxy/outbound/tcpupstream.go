package outbound

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"weft.dev/weft/internal/proxy/balancer"
	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/connlimit"
	"weft.dev/weft/internal/proxy/telemetry"
	"weft.dev/weft/internal/proxy/upstream"
)

// Upstream is a declared TCP upstream (`weft run --upstream`): a local
// listener whose every connection is forwarded, unparsed, to one mesh
// service over mTLS (ALPN weft-tcp). It is declared TCP: nothing is
// sniffed, so server-first protocols get the server's first bytes at once.
type Upstream struct {
	// Service is "<name>" or "<name>.<namespace>"; a bare name resolves in
	// the proxy's namespace.
	Service string
	// Port is the service port the connections are for.
	Port int
	// LocalPort is the port on 127.0.0.1 the app connects to (0: a free one).
	LocalPort int
}

// Authority is the "<service>:<port>" the upstream resolves, as an app
// would name it in a CONNECT.
func (u Upstream) Authority() string { return net.JoinHostPort(u.Service, strconv.Itoa(u.Port)) }

// ServeUpstream forwards every connection accepted on ln to upstream u
// until ctx ends, then closes ln and the streams it serves and returns once
// they ended. Each connection picks its destination (a TCPRoute's weighted
// backend, else the service) and endpoint (the service's balancer, outlier
// ejections excluded) when it opens; when none can be reached the
// connection is closed without a byte. Past Options.MaxConns open
// connections, a new one is closed at once.
func (l *Listener) ServeUpstream(ctx context.Context, ln net.Listener, u Upstream) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	context.AfterFunc(ctx, func() { ln.Close() })
	// The same cap as the outbound listener's, per upstream.
	capped := connlimit.New(ln, l.opts.MaxConns, func(c net.Conn) {
		l.log.Debug("tcp upstream: connection refused at the connection cap", "upstream", u.Authority(), "max", l.opts.MaxConns)
		c.Close()
	})
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := capped.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("upstream %s: serving: %w", u.Authority(), err)
		}
		wg.Go(func() { l.forwardUpstream(ctx, c, u) })
	}
}

// forwardUpstream forwards one app connection of upstream u.
func (l *Listener) forwardUpstream(ctx context.Context, app net.Conn, u Upstream) {
	cfg := l.opts.Provider.Load()
	svc := cfg.Resolve(u.Authority(), l.opts.Namespace)
	if svc == nil {
		l.log.Debug("tcp upstream: unknown service", "upstream", u.Authority())
		app.Close()
		return
	}
	up, key, err := l.dialOpaque(ctx, cfg, svc, u.Port)
	if err != nil {
		l.log.Debug("tcp upstream", "upstream", u.Authority(), "service", key, "error", err)
		app.Close()
		return
	}
	tl := telemetry.TCPLabels{Listener: "upstream", DestinationService: key}
	l.opts.Metrics.TCPOpened(tl)
	sent, recv := upstream.Pipe(ctx, app, up)
	l.opts.Metrics.TCPConnection(tl, sent, recv)
}

// dialOpaque opens an opaque stream for a connection to port of svc: it
// picks the destination service (tcpBackend), an endpoint of it, and dials
// it, feeding the outcome of the dial to the balancer and outlier
// detection; a connect failure moves on to another endpoint. It returns
// the stream and the destination's key.
func (l *Listener) dialOpaque(ctx context.Context, cfg *config.Config, svc *config.Service, port int) (net.Conn, string, error) {
	key, err := l.tcpBackend(svc, port)
	if err != nil {
		return nil, svc.Key, err
	}
	eps, err := l.endpoints(ctx, cfg, key)
	if err != nil {
		return nil, key, err
	}
	req := balancer.Request{Algorithm: lbFor(cfg, key)}
	if b := cfg.Services[key]; b != nil {
		req.Spec = b.Balancer // outlier detection
	}
	for attempt := 1; ; attempt++ {
		lease, err := l.pool.PickWith(key, req, eps)
		if err != nil {
			return nil, key, err
		}
		start := time.Now()
		c, err := lease.DialTCP(ctx)
		lease.Observe(0, err, time.Since(start))
		if err == nil {
			return &leasedConn{Conn: c, lease: lease}, key, nil
		}
		lease.Done()
		err = fmt.Errorf("dialing %s at %s: %w", key, lease.Endpoint.Address, err)
		// Nothing was sent: a connect failure is tried on another
		// endpoint, up to maxOpaqueDials in all.
		eps = otherEndpoints(eps, lease.Endpoint.Address)
		if attempt == maxOpaqueDials || len(eps) == 0 || !upstream.IsConnectError(err) || ctx.Err() != nil {
			return nil, key, err
		}
	}
}

// maxOpaqueDials bounds the endpoints one opaque connection tries when
// dialing fails to connect.
const maxOpaqueDials = 3

// tcpBackend is the service key a TCP connection to port of svc goes to:
// a backend of the TCPRoute that governs it, picked by weight, else svc.
func (l *Listener) tcpBackend(svc *config.Service, port int) (string, error) {
	rt := svc.TCPRouteFor(uint32(port), l.opts.Namespace)
	if rt == nil {
		return svc.Key, nil
	}
	if b := rt.PickBackend(rand.Uint32()); b != "" {
		return b, nil
	}
	return "", fmt.Errorf("TCPRoute %s has no backend of positive weight", rt.Name)
}

// leasedConn is an opaque stream that ends its endpoint lease when closed.
type leasedConn struct {
	net.Conn
	lease upstream.Lease
	once  sync.Once
}

func (c *leasedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.lease.Done)
	return err
}

// CloseWrite half-closes the stream when it supports it.
func (c *leasedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// authorityPort is the port of a CONNECT authority, 0 when it has none.
func authorityPort(authority string) int {
	_, port, err := net.SplitHostPort(authority)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return 0
	}
	return int(n)
}
