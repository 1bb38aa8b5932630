package h1fast

import (
	"context"
	"net"
	"net/http"
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

// OneRequest wraps the handler of a net/http server that takes connections
// from Handoff. Handoff gives it only CONNECT, Upgrade and the HTTP/2
// preface, after which a connection carries no further HTTP/1 request; when
// such a request is answered without switching protocols (a refused
// CONNECT, an Upgrade the app declined) the response closes the connection,
// so no later request on it reaches net/http's parser unchecked.
func OneRequest(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 1 {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(&closeWriter{ResponseWriter: w}, r)
	})
}

// closeWriter adds Connection: close to a final response that does not
// switch protocols.
type closeWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *closeWriter) WriteHeader(code int) {
	if !w.wrote && code != http.StatusSwitchingProtocols && code >= 200 {
		w.wrote = true
		w.Header().Set("Connection", "close")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *closeWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach Hijack and Flush.
func (w *closeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
