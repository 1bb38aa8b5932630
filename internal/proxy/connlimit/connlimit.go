// Package connlimit caps the connections a proxy listener holds open: past
// the cap a new connection is refused at once (and counted by the caller)
// instead of being queued or served, so a flood of connections costs the
// proxy a bounded amount of memory and goroutines.
package connlimit

import (
	"net"
	"sync"
	"sync/atomic"
)

// Listener is a net.Listener that holds at most a fixed number of accepted
// connections open.
type Listener struct {
	net.Listener
	max    int64
	refuse func(net.Conn)
	open   atomic.Int64
}

// New caps ln at max open connections (max <= 0: no cap). A connection
// accepted over the cap is given to refuse, which must close it promptly,
// and Accept goes on to the next one.
func New(ln net.Listener, max int, refuse func(net.Conn)) *Listener {
	if refuse == nil {
		refuse = func(c net.Conn) { c.Close() }
	}
	return &Listener{Listener: ln, max: int64(max), refuse: refuse}
}

// Accept returns the next connection within the cap.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if n := l.open.Add(1); l.max > 0 && n > l.max {
			l.open.Add(-1)
			l.refuse(c)
			continue
		}
		return &conn{Conn: c, l: l}, nil
	}
}

// Open is the number of accepted connections not yet closed.
func (l *Listener) Open() int { return int(l.open.Load()) }

// conn gives its slot back when first closed.
type conn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// CloseWrite half-closes the connection when the underlying one can.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
