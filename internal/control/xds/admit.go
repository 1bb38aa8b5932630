package xds

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Refusal reasons, the values of the reason label of
// weft_control_xds_refusals_total.
const (
	reasonUnauthenticated = "unauthenticated"
	reasonStreams         = "max_streams"
	reasonIdentityStreams = "max_streams_per_identity"
	reasonCertStreams     = "max_streams_per_certificate"
	reasonMessageSize     = "max_message_size"
	reasonRequestRate     = "request_rate"
	reasonConnections     = "max_connections"
	reasonNode            = "node"
	reasonScope           = "scope"
	reasonService         = "service"
	reasonAddress         = "address"
	reasonWorkloadID      = "workload_id"
	reasonAddressHeld     = "address_held"
)

// caller is the authenticated client of one xDS stream.
type caller struct {
	id   spiffeid.ID
	leaf *x509.Certificate
	// cert identifies the certificate (a hash of its DER).
	cert [sha256.Size]byte
	// ip is the IP address the stream comes from.
	ip netip.Addr
	// peer is the stream's remote address, for logs.
	peer string
	// joined is the service the stream's workload registered for (nil
	// before it registers), checked again by Revalidate.
	joined atomic.Pointer[string]
}

type callerKey struct{}

// callerFrom returns the caller that admitStream authenticated, or nil.
func callerFrom(ctx context.Context) *caller {
	c, _ := ctx.Value(callerKey{}).(*caller)
	return c
}

// ServerOptions are the gRPC server options the xDS server needs to be
// safe: an interceptor that authenticates and bounds every stream before
// any go-control-plane code runs, the received message size bound, the
// handshake timeout, and keepalives that find vanished proxies (so their
// workloads leave) and close idle connections. Every streaming RPC on
// the server is authenticated; unary RPCs (the CA's Sign, which comes
// before a proxy has a certificate) are not.
func (s *Server) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainStreamInterceptor(s.admitStream),
		grpc.MaxRecvMsgSize(s.limits.MaxMessageSize),
		grpc.ConnectionTimeout(s.limits.HandshakeTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time: 5 * time.Second, Timeout: 3 * time.Second,
			MaxConnectionIdle: s.limits.MaxConnectionIdle,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}
}

// authenticate returns the verified mesh identity of the stream's client:
// a client certificate that verified against the mesh's roots during the
// handshake, carrying a SPIFFE ID in the trust domain other than the
// control plane's own.
func (s *Server) authenticate(ctx context.Context) (*caller, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, errors.New("no peer")
	}
	c := &caller{peer: p.Addr.String()}
	if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
		c.ip = ap.Addr().Unmap().WithZone("")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return c, errors.New("no client certificate: xDS needs the workload certificate issued by the control plane's CA")
	}
	if len(ti.State.VerifiedChains) == 0 {
		return c, errors.New("the client certificate was not verified against the mesh's trust bundle")
	}
	c.leaf = ti.State.PeerCertificates[0]
	id, err := x509svid.IDFromCert(c.leaf)
	if err != nil {
		return c, fmt.Errorf("client certificate: %w", err)
	}
	c.id = id
	if !id.MemberOf(s.opts.TrustDomain) {
		return c, fmt.Errorf("client certificate %s is not in trust domain %q", id, s.opts.TrustDomain.Name())
	}
	if id == s.controlID {
		return c, fmt.Errorf("client certificate %s is the control plane's own identity", id)
	}
	c.cert = sha256.Sum256(c.leaf.Raw)
	return c, nil
}

// admitStream is the stream interceptor: it authenticates the stream,
// admits it within the stream bounds and bounds its request rate, so that
// a refused stream gets an error before anything is sent or watched.
func (s *Server) admitStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	c, err := s.authenticate(ss.Context())
	if err != nil {
		s.refuse(reasonUnauthenticated, c, err)
		return status.Errorf(codes.Unauthenticated, "xds: %v", err)
	}
	release, reason, err := s.admission.acquire(c)
	if err != nil {
		s.refuse(reason, c, err)
		return status.Errorf(codes.ResourceExhausted, "xds: %v", err)
	}
	defer release()
	ctx, cancel := context.WithCancelCause(ss.Context())
	defer cancel(nil)
	ls := &limitedStream{ServerStream: ss, ctx: context.WithValue(ctx, callerKey{}, c), s: s, c: c,
		bucket: newBucket(s.limits.RequestRate, s.limits.RequestBurst, time.Now())}
	herr := s.runRevocable(ctx, cancel, c, ls.end, func() error { return handler(srv, ls) })
	// go-control-plane ends a stream whose Recv failed without an error;
	// the client is told why.
	if err := ls.failure(); err != nil {
		return err
	}
	return herr
}

// limitedStream bounds the request rate of one admitted stream and
// records why it refused the stream.
type limitedStream struct {
	grpc.ServerStream
	ctx    context.Context
	s      *Server
	c      *caller
	bucket *bucket // used only by RecvMsg's goroutine

	mu  sync.Mutex
	err error

	sendMu sync.Mutex
	ended  bool
}

func (l *limitedStream) Context() context.Context { return l.ctx }

// SendMsg sends m unless the stream was ended early (end), after which the
// gRPC server owns the stream and a late send fails instead.
func (l *limitedStream) SendMsg(m any) error {
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	if l.ended {
		return status.Error(codes.Canceled, "xds: stream ended")
	}
	return l.ServerStream.SendMsg(m)
}

// end stops further sends, before the interceptor returns early.
func (l *limitedStream) end() {
	l.sendMu.Lock()
	l.ended = true
	l.sendMu.Unlock()
}

func (l *limitedStream) RecvMsg(m any) error {
	if err := l.ServerStream.RecvMsg(m); err != nil {
		if status.Code(err) == codes.ResourceExhausted {
			return l.fail(reasonMessageSize, fmt.Errorf("%s (limit MaxMessageSize)", status.Convert(err).Message()))
		}
		return err
	}
	if !l.bucket.take(time.Now()) {
		lim := l.s.limits
		return l.fail(reasonRequestRate, fmt.Errorf("more than %d requests at once or %g a second on one stream (limits RequestBurst, RequestRate)", lim.RequestBurst, lim.RequestRate))
	}
	return nil
}

// fail refuses the stream for reason and returns the error its client gets.
func (l *limitedStream) fail(reason string, err error) error {
	l.s.refuse(reason, l.c, err)
	st := status.Errorf(codes.ResourceExhausted, "xds: %v", err)
	l.mu.Lock()
	if l.err == nil {
		l.err = st
	}
	l.mu.Unlock()
	return st
}

func (l *limitedStream) failure() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// refusals counts and logs refused streams and connections. Under a
// flood, logging is bounded to a burst of 20 lines and 10 a second; the
// next line logged says how many were left out.
type refusals struct {
	counter *prometheus.CounterVec
	logger  *slog.Logger

	mu         sync.Mutex
	logBudget  *bucket
	suppressed int
}

func newRefusals(logger *slog.Logger) *refusals {
	return &refusals{
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_control_xds_refusals_total",
			Help: "xDS streams and connections refused by the control plane, by reason.",
		}, []string{"reason"}),
		logger:    logger,
		logBudget: newBucket(10, 20, time.Now()),
	}
}

// Collector is the Prometheus collector of the server's metrics:
// weft_control_xds_refusals_total{reason}.
func (s *Server) Collector() prometheus.Collector { return s.refusals.counter }

// refuse counts and logs one refusal; c may be nil or partly filled.
func (s *Server) refuse(reason string, c *caller, err error) {
	r := s.refusals
	r.counter.WithLabelValues(reason).Inc()
	r.mu.Lock()
	if !r.logBudget.take(time.Now()) {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	suppressed := r.suppressed
	r.suppressed = 0
	r.mu.Unlock()
	attrs := []any{"reason", reason, "err", err}
	if c != nil {
		attrs = append(attrs, "peer", c.peer)
		if !c.id.IsZero() {
			attrs = append(attrs, "identity", c.id.String())
		}
	}
	if suppressed > 0 {
		attrs = append(attrs, "refusals_not_logged", suppressed)
	}
	r.logger.Warn("refusing xds client", attrs...)
}

// Listener bounds the open connections accepted from ln to
// Limits.MaxConnections: a connection beyond it is closed at once and
// counted.
func (s *Server) Listener(ln net.Listener) net.Listener {
	if s.limits.MaxConnections < 0 {
		return ln
	}
	return &limitListener{Listener: ln, s: s, max: int64(s.limits.MaxConnections)}
}

type limitListener struct {
	net.Listener
	s    *Server
	max  int64
	open atomic.Int64
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.s.refuse(reasonConnections, &caller{peer: conn.RemoteAddr().String()},
				fmt.Errorf("the control plane accepts at most %d connections (limit MaxConnections)", l.max))
			conn.Close()
			continue
		}
		return &countedConn{Conn: conn, l: l}, nil
	}
}

type countedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}
