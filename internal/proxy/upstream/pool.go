// Package upstream is the proxy's side of a call to a destination service:
// it picks an endpoint by the service's load-balancing algorithm and holds the
// mTLS connection pools to peer proxies (HTTP/1.1, HTTP/2 and opaque TCP).
//
// Connections are pooled per peer endpoint: each endpoint address gets its own
// transports, bound to the SPIFFE ID the control plane published for it, so
// a pooled connection is never reused for a peer with another identity and a
// peer presenting an unexpected ID fails the handshake. Endpoints that leave
// the config have their idle connections closed (Prune, Run).
package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"golang.org/x/net/http2"

	"weft.dev/weft/internal/proxy/balancer"
	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/identity"
)

// Options configure a Pool. Zero values take the documented defaults.
type Options struct {
	Logger *slog.Logger
	// Identity is this proxy's SVID source; it must be set.
	Identity *identity.Source
	// DialTimeout bounds the TCP connect plus TLS handshake to a peer
	// (default 5s).
	DialTimeout time.Duration
	// MaxIdleConnsPerEndpoint is the number of idle HTTP/1.1 connections
	// kept per peer endpoint (default 64).
	MaxIdleConnsPerEndpoint int
	// IdleConnTimeout closes pooled connections idle this long (default 90s).
	IdleConnTimeout time.Duration
	// Balancer learns about outlier ejections (metrics); may be nil.
	Balancer balancer.Observer
}

// Pool holds per-endpoint connection pools and load-balancer state. It is
// safe for concurrent use; the request path takes no lock.
type Pool struct {
	opts Options
	log  *slog.Logger

	mu    sync.Mutex                       // serialises writers of peers
	peers atomic.Pointer[map[string]*peer] // by endpoint address, copy-on-write
	dests sync.Map                         // service key -> *balancer.Destination
}

// New returns an empty Pool.
func New(opts Options) *Pool {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.MaxIdleConnsPerEndpoint <= 0 {
		opts.MaxIdleConnsPerEndpoint = 64
	}
	if opts.IdleConnTimeout <= 0 {
		opts.IdleConnTimeout = 90 * time.Second
	}
	p := &Pool{opts: opts, log: opts.Logger.With("component", "upstream")}
	empty := map[string]*peer{}
	p.peers.Store(&empty)
	return p
}

// peer is one endpoint (a peer proxy's inbound listener) and its pools.
type peer struct {
	addr string
	id   spiffeid.ID
	// plaintext: a pod without a sidecar, reached over plain TCP.
	plaintext bool
	inflight  atomic.Int64
	h1        *H1Transport
	h2        *http2.Transport
	pool      *Pool
	tls       [3]*tls.Config // by ALPN: h1, h2, tcp
}

// peer returns the pools of ep, creating them on first use.
func (p *Pool) peer(ep *config.Endpoint) *peer {
	if pr := (*p.peers.Load())[ep.Address]; pr != nil && pr.id == ep.Identity && pr.plaintext == ep.Plaintext {
		return pr
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := *p.peers.Load()
	old := cur[ep.Address]
	if old != nil && old.id == ep.Identity && old.plaintext == ep.Plaintext {
		return old
	}
	pr := p.newPeer(ep.Address, ep.Identity, ep.Plaintext)
	next := maps.Clone(cur)
	next[ep.Address] = pr
	p.peers.Store(&next)
	if old != nil {
		// The address now belongs to another identity (or a pod that
		// gained or lost its sidecar): never reuse the old connections.
		old.closeIdle()
	}
	return pr
}

func (p *Pool) newPeer(addr string, id spiffeid.ID, plaintext bool) *peer {
	pr := &peer{addr: addr, id: id, plaintext: plaintext, pool: p}
	for i, alpn := range []string{identity.ALPNHTTP1, identity.ALPNHTTP2, identity.ALPNTCP} {
		pr.tls[i] = p.opts.Identity.ClientTLS(id, alpn)
	}
	pr.h1 = &H1Transport{
		Dial:        func(ctx context.Context) (net.Conn, error) { return pr.dial(ctx, 0) },
		MaxIdle:     p.opts.MaxIdleConnsPerEndpoint,
		IdleTimeout: p.opts.IdleConnTimeout,
		Fallback: &http.Transport{
			Proxy: nil,
			DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return pr.dial(ctx, 0)
			},
			DisableCompression:  true,
			MaxIdleConnsPerHost: p.opts.MaxIdleConnsPerEndpoint,
			IdleConnTimeout:     p.opts.IdleConnTimeout,
			// A non-nil empty map keeps this pool on HTTP/1.1.
			TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
		},
	}
	pr.h2 = &http2.Transport{
		DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
			return pr.dial(ctx, 1)
		},
		DisableCompression: true,
		IdleConnTimeout:    p.opts.IdleConnTimeout,
		ReadIdleTimeout:    30 * time.Second,
		PingTimeout:        15 * time.Second,
	}
	return pr
}

// dial opens an mTLS connection to the peer negotiating the ALPN protocol
// of cfg index i, or a plain TCP one to a plaintext peer, under the
// request's ConnGate (conngate.go).
func (pr *peer) dial(ctx context.Context, i int) (net.Conn, error) {
	if pr.plaintext {
		return gatedDialPlain(ctx, func() (net.Conn, error) { return pr.dialPlain(ctx) })
	}
	return gatedDial(ctx, func() (*tls.Conn, error) { return pr.dialTLS(ctx, i) })
}

// dialPlain opens the connection of dial to a pod without a sidecar: the
// same bytes the app would send it without the mesh (HTTP/1.1, h2c or the
// TCP stream), with no identity to check.
func (pr *peer) dialPlain(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, pr.pool.opts.DialTimeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", pr.addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s (plaintext, no sidecar): %w", pr.addr, err)
	}
	return c, nil
}

// dialTLS opens the connection of dial; the peer must present exactly the
// expected identity.
func (pr *peer) dialTLS(ctx context.Context, i int) (*tls.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, pr.pool.opts.DialTimeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{KeepAlive: 30 * time.Second}, Config: pr.tls[i]}
	c, err := d.DialContext(ctx, "tcp", pr.addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s (%s): %w", pr.addr, pr.id, err)
	}
	tc := c.(*tls.Conn)
	if want, got := pr.tls[i].NextProtos[0], tc.ConnectionState().NegotiatedProtocol; got != want {
		tc.Close()
		return nil, fmt.Errorf("connecting to %s (%s): peer negotiated protocol %q, want %q", pr.addr, pr.id, got, want)
	}
	return tc, nil
}

func (pr *peer) closeIdle() {
	pr.h1.CloseIdleConnections()
	pr.h2.CloseIdleConnections()
}

// Lease is one picked endpoint, counted as in flight until Done.
type Lease struct {
	// Endpoint is the picked endpoint (points into the slice given to Pick).
	Endpoint *config.Endpoint
	peer     *peer
	// The balancer state of the pick (balancer.go).
	dest  *balancer.Destination
	state *balancer.Endpoint
	spec  *config.Balancer
}

// Done ends the lease; call it once when the request or connection ends.
func (l Lease) Done() {
	if l.peer != nil {
		l.peer.inflight.Add(-1)
	}
	if l.state != nil {
		l.state.Done()
	}
}

// HTTP1 is the pooled HTTP/1.1-over-mTLS transport to the endpoint. Requests
// must use the "https" scheme with the endpoint address as URL host.
func (l Lease) HTTP1() http.RoundTripper { return l.peer.h1 }

// HTTP2 is the multiplexed HTTP/2-over-mTLS transport to the endpoint.
func (l Lease) HTTP2() http.RoundTripper { return l.peer.h2 }

// DialTCP opens an opaque byte stream (ALPN weft-tcp) to the endpoint.
func (l Lease) DialTCP(ctx context.Context) (net.Conn, error) {
	return l.peer.dial(ctx, 2)
}

// ErrNoEndpoints is returned by Pick for an empty endpoint list.
var ErrNoEndpoints = errors.New("no endpoints")

// Prune closes the idle connections of endpoints that are not in cfg and
// forgets them, along with the balancer state of services cfg no longer has.
func (p *Pool) Prune(cfg *config.Config) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := *p.peers.Load()
	var next map[string]*peer
	for addr, pr := range cur {
		if live(cfg, addr, pr.id, pr.plaintext) {
			continue
		}
		if next == nil {
			next = maps.Clone(cur)
		}
		delete(next, addr)
		pr.closeIdle()
		p.log.Debug("closed pool of departed endpoint", "address", addr, "identity", pr.id.String())
	}
	if next != nil {
		p.peers.Store(&next)
	}
	p.dests.Range(func(k, d any) bool {
		eps, ok := cfg.Endpoints[k.(string)]
		if _, svc := cfg.Services[k.(string)]; !ok && !svc {
			p.dests.Delete(k)
		} else if ok {
			d.(*balancer.Destination).Prune(eps)
		}
		return true
	})
}

// live reports whether cfg still lists the endpoint addr with identity id
// (or, plaintext, the pod without a sidecar at addr).
func live(cfg *config.Config, addr string, id spiffeid.ID, plaintext bool) bool {
	for _, eps := range cfg.Endpoints {
		for i := range eps {
			if eps[i].Address == addr && eps[i].Identity == id && eps[i].Plaintext == plaintext {
				return true
			}
		}
	}
	return false
}

// Run prunes the pool whenever provider's config changes (checked every
// interval, default 1s) until ctx ends, then closes all idle connections.
func (p *Pool) Run(ctx context.Context, provider config.Provider, interval time.Duration) {
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var last *config.Config
	for {
		select {
		case <-ctx.Done():
			p.Close()
			return
		case <-t.C:
			if cfg := provider.Load(); cfg != last {
				last = cfg
				p.Prune(cfg)
			}
		}
	}
}

// Close closes every idle connection of every endpoint. In-flight requests
// finish; the Pool stays usable.
func (p *Pool) Close() {
	for _, pr := range *p.peers.Load() {
		pr.closeIdle()
	}
}
