package upstream

import (
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
)

// ConnGate counts and limits the connections a pool opens for one
// destination service (the breaker stage's maxConnections): a request whose
// context carries a ConnGate (Value(ConnGateKey{})) has every connection
// that is dialed for it reserved with OpenConn, and released with CloseConn
// when that connection closes. A connection is charged to the destination
// it was opened for, whichever requests reuse it later.
type ConnGate interface {
	// OpenConn reserves one connection; an error refuses the dial and is
	// returned to the request as is.
	OpenConn() error
	// CloseConn releases a reservation.
	CloseConn()
}

// ConnGateKey is the context key of a request's ConnGate.
type ConnGateKey struct{}

// gatedDial dials with dial under the ConnGate of ctx, if any.
func gatedDial(ctx context.Context, dial func() (*tls.Conn, error)) (net.Conn, error) {
	return withGate(ctx, dial, func(c *tls.Conn, g ConnGate) net.Conn { return &gatedConn{Conn: c, gateRelease: gateRelease{gate: g}} })
}

// gatedDialPlain is gatedDial for a plain TCP connection (a pod without a
// sidecar).
func gatedDialPlain(ctx context.Context, dial func() (net.Conn, error)) (net.Conn, error) {
	return withGate(ctx, dial, func(c net.Conn, g ConnGate) net.Conn {
		return &gatedPlainConn{Conn: c, gateRelease: gateRelease{gate: g}}
	})
}

func withGate[C net.Conn](ctx context.Context, dial func() (C, error), wrap func(C, ConnGate) net.Conn) (net.Conn, error) {
	g, _ := ctx.Value(ConnGateKey{}).(ConnGate)
	if g == nil {
		c, err := dial()
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	if err := g.OpenConn(); err != nil {
		return nil, err
	}
	c, err := dial()
	if err != nil {
		g.CloseConn()
		return nil, err
	}
	return wrap(c, g), nil
}

// gateRelease releases a connection's reservation once, on the first
// Close.
type gateRelease struct {
	gate   ConnGate
	closed atomic.Bool
}

func (r *gateRelease) release() {
	if r.closed.CompareAndSwap(false, true) {
		r.gate.CloseConn()
	}
}

// gatedConn is a gated mTLS connection. It keeps the methods of *tls.Conn
// (ConnectionState, NetConn) that transports use.
type gatedConn struct {
	*tls.Conn
	gateRelease
}

func (c *gatedConn) Close() error {
	c.release()
	return c.Conn.Close()
}

// gatedPlainConn is a gated plain TCP connection.
type gatedPlainConn struct {
	net.Conn
	gateRelease
}

func (c *gatedPlainConn) Close() error {
	c.release()
	return c.Conn.Close()
}
