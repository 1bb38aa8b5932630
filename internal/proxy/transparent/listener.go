package transparent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"weft.dev/weft/internal/proxy/h1fast"
)

// Metrics records what the listener detected; nil records nothing.
type Metrics interface {
	// TransparentConnection counts one captured connection by detected
	// protocol and how it was served: "mesh-http" (handed to the outbound
	// HTTP proxy), "mesh-tcp" (TLS whose server name is a mesh service,
	// streamed to it over mTLS) or "passthrough" (streamed to its original
	// destination).
	TransparentConnection(protocol, served string)
}

// Mesh serves captured TLS whose server name is a mesh service (the
// outbound listener implements it).
type Mesh interface {
	// IsMeshService reports whether authority (host:port) names a mesh
	// service.
	IsMeshService(authority string) bool
	// ServeTCP streams c to that service, unparsed, and closes c.
	ServeTCP(ctx context.Context, c net.Conn, authority string)
}

// ListenerOptions configure a Listener.
type ListenerOptions struct {
	// Mesh, if set, takes TLS connections whose ClientHello names a mesh
	// service; without it, or for other names, TLS is passed through.
	Mesh   Mesh
	Logger *slog.Logger
	// DetectTimeout bounds the wait for the client's first bytes (default
	// 300ms); a client that sends nothing by then is served as opaque TCP.
	DetectTimeout time.Duration
	// DialTimeout bounds connecting to a passthrough destination (default
	// 10s).
	DialTimeout time.Duration
	Metrics     Metrics
}

// Listener accepts the connections the outbound rules redirected to ln.
// HTTP/1.x and HTTP/2 connections are returned by Accept, their first bytes
// still to be read, for the outbound HTTP proxy to serve: it routes them by
// Host (mesh services by name, anything else passed through). TLS and
// opaque connections are streamed to their original destination unchanged.
type Listener struct {
	ln     net.Listener
	opts   ListenerOptions
	log    *slog.Logger
	http   *h1fast.ConnListener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	dialer net.Dialer
}

// NewListener starts accepting on ln; Close stops it.
func NewListener(ln net.Listener, opts ListenerOptions) *Listener {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DetectTimeout <= 0 {
		opts.DetectTimeout = 300 * time.Millisecond
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{ln: ln, opts: opts, log: opts.Logger.With("component", "transparent"), http: h1fast.NewConnListener(ln.Addr()),
		ctx: ctx, cancel: cancel, dialer: net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}}
	l.wg.Go(l.acceptLoop)
	return l
}

// Accept returns the next captured HTTP connection.
func (l *Listener) Accept() (net.Conn, error) { return l.http.Accept() }

// Addr is the listening address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops accepting, closes the passthrough streams and waits for them.
func (l *Listener) Close() error {
	l.cancel()
	err := l.ln.Close()
	l.http.Close()
	l.wg.Wait()
	return err
}

func (l *Listener) acceptLoop() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			l.log.Warn("accept failed", "err", err)
			return
		}
		l.wg.Go(func() { l.serve(c) })
	}
}

func (l *Listener) serve(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return
	}
	dst, err := OriginalDst(tc)
	if err != nil {
		l.log.Debug("captured connection refused", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	if local, ok := c.LocalAddr().(*net.TCPAddr); ok && local.AddrPort() == dst {
		// Dialled directly, not redirected: there is nowhere to send it.
		l.log.Debug("connection to the transparent port itself refused", "remote", c.RemoteAddr().String())
		c.Close()
		return
	}
	br := bufio.NewReaderSize(c, 4096)
	proto, err := Detect(c, br, l.opts.DetectTimeout)
	if err != nil {
		c.Close()
		return
	}
	if proto == HTTP1 || proto == HTTP2 {
		l.record(proto, "mesh-http")
		if !l.http.Push(l.ctx, &bufferedConn{Conn: c, r: br}) {
			c.Close()
		}
		return
	}
	var src io.Reader = br
	if proto == TLS {
		record, name, err := readClientHello(c, br, l.opts.DetectTimeout)
		src = io.MultiReader(bytes.NewReader(record), br)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			c.Close()
			return
		}
		authority := net.JoinHostPort(name, strconv.Itoa(int(dst.Port())))
		if name != "" && l.opts.Mesh != nil && l.opts.Mesh.IsMeshService(authority) {
			l.record(proto, "mesh-tcp")
			l.opts.Mesh.ServeTCP(l.ctx, &readerConn{Conn: c, r: src}, authority)
			return
		}
	}
	l.record(proto, "passthrough")
	l.passthrough(c, src, dst)
}

func (l *Listener) record(p Protocol, served string) {
	if l.opts.Metrics != nil {
		l.opts.Metrics.TransparentConnection(string(p), served)
	}
}

// passthrough streams c (read through src, which holds the bytes detection
// read first) to dst.
func (l *Listener) passthrough(c net.Conn, src io.Reader, dst netip.AddrPort) {
	defer c.Close()
	up, err := l.dialer.DialContext(l.ctx, "tcp", dst.String())
	if err != nil {
		l.log.Debug("passthrough dial failed", "destination", dst.String(), "err", err)
		return
	}
	defer up.Close()
	stop := context.AfterFunc(l.ctx, func() { c.Close(); up.Close() })
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(up, src)
		closeWrite(up)
	}()
	io.Copy(c, up)
	closeWrite(c)
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

// bufferedConn reads the bytes detection buffered before the rest of the
// connection.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// readerConn reads from r (bytes already read, then the connection).
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c *readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes the connection.
func (c *readerConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
