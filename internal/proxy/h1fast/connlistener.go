package h1fast

import (
	"context"
	"net"
	"sync"
)

// ConnListener is a net.Listener fed with already-accepted connections: it
// hands connections the fast lane gives up (and, in the outbound, CONNECT
// tunnels) to a net/http server.
type ConnListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

// NewConnListener returns a ConnListener reporting addr as its address.
func NewConnListener(addr net.Addr) *ConnListener {
	return &ConnListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// Push offers c to the server; false when the listener or ctx closed first.
func (l *ConnListener) Push(ctx context.Context, c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	case <-ctx.Done():
		return false
	}
}

// Accept implements net.Listener.
func (l *ConnListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *ConnListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr implements net.Listener.
func (l *ConnListener) Addr() net.Addr { return l.addr }
