// Package mirror is the request-mirroring stage of the proxy's request
// path (the Gateway API RequestMirror filter): a route's mirrors, compiled
// once from xDS into immutable Targets, pick per request — with one cheap
// random draw — whether a copy of the request goes to each mirror service.
// The copy is fire-and-forget: it never delays or fails the real request,
// its response is discarded, and copies in flight are bounded per mirror
// service by a Limiter that outlives config pushes. The outbound listener
// sends the copies through the mesh (outbound/mirror.go).
package mirror

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// Defaults.
const (
	// DefaultMaxInFlight bounds the mirror copies in flight per mirror
	// service; over it a copy is dropped.
	DefaultMaxInFlight = 64
	// MaxBody is the largest request body mirrored. A request with a body
	// is mirrored once the real request has read all of it, and only if
	// it was at most this long.
	MaxBody = 64 << 10
)

// Target is one compiled RequestMirror filter.
type Target struct {
	// Service is the mirror service key "<name>.<namespace>".
	Service string
	// Share of requests mirrored, in parts per million.
	Share uint32
}

// Compile compiles the mirrors of a route (validated by
// weftv1.ValidateService); nil for none.
func Compile(ms []*weftv1.RequestMirror) []Target {
	if len(ms) == 0 {
		return nil
	}
	out := make([]Target, len(ms))
	for i, m := range ms {
		out[i] = Target{Service: weftv1.ResourceName(m.GetService(), m.GetNamespace()), Share: m.GetPerMillion()}
	}
	return out
}

// Picked reports whether this request is mirrored to t; draw returns
// uniformly distributed numbers in [0, n).
func (t Target) Picked(draw func(uint32) uint32) bool {
	return t.Share >= weftv1.PerMillion || t.Share > 0 && draw(weftv1.PerMillion) < t.Share
}

// Limiter bounds the mirror copies in flight per mirror service. It is
// long-lived (one per outbound listener), safe for concurrent use, and
// takes no lock once a service's counter exists.
type Limiter struct {
	max      int64
	inflight sync.Map // service key -> *atomic.Int64
}

// NewLimiter returns a Limiter of max copies in flight per service
// (DefaultMaxInFlight when max <= 0).
func NewLimiter(max int) *Limiter {
	if max <= 0 {
		max = DefaultMaxInFlight
	}
	return &Limiter{max: int64(max)}
}

// Acquire takes a slot for a copy to service; it returns nil when the
// service is at its bound. Release the slot with Slot.Release.
func (l *Limiter) Acquire(service string) *Slot {
	c, ok := l.inflight.Load(service)
	if !ok {
		c, _ = l.inflight.LoadOrStore(service, new(atomic.Int64))
	}
	n := c.(*atomic.Int64)
	if n.Add(1) > l.max {
		n.Add(-1)
		return nil
	}
	return (*Slot)(n)
}

// InFlight is the number of copies in flight to service.
func (l *Limiter) InFlight(service string) int64 {
	if c, ok := l.inflight.Load(service); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// Slot is one copy in flight.
type Slot atomic.Int64

// Release frees the slot.
func (s *Slot) Release() { (*atomic.Int64)(s).Add(-1) }

// ShadowHost is the Host of a mirror copy: the original host with
// "-shadow" appended to its name (before any port), as Envoy and Istio
// mark mirrored requests so that the mirror can tell them apart.
func ShadowHost(host string) string {
	if h, p, err := net.SplitHostPort(host); err == nil && !strings.Contains(p, ":") {
		return net.JoinHostPort(h+"-shadow", p)
	}
	return host + "-shadow"
}

// Copy returns the mirror copy of r: same method, path, query and headers
// (cloned, without hop-by-hop headers), Host with ShadowHost, body the
// bytes given (nil for none). The
// URL's scheme and host and the context are left for the sender.
func Copy(r *http.Request, body []byte) *http.Request {
	u := *r.URL
	out := &http.Request{
		Method:     r.Method,
		URL:        &u,
		Proto:      r.Proto,
		ProtoMajor: r.ProtoMajor,
		ProtoMinor: r.ProtoMinor,
		Header:     r.Header.Clone(),
		Host:       ShadowHost(r.Host),
	}
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	SetBody(out, body)
	return out
}

// hopHeaders are the hop-by-hop headers a copy does not carry (RFC 9110
// 7.6.1); "Te: trailers", which gRPC needs, is kept.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Transfer-Encoding", "Upgrade"}

// Mirrorable reports whether r may be copied at all: a protocol upgrade
// (WebSocket and the like) is not, as it is not one request.
func Mirrorable(r *http.Request) bool {
	return r.Header.Get("Upgrade") == ""
}

// SetBody makes body (nil for none) the body of copy req.
func SetBody(req *http.Request, body []byte) {
	if len(body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
		return
	}
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
}

// Tee wraps a request body: it passes every read through and keeps a copy
// of the first MaxBody bytes, so that the body can be mirrored once the
// real request has read it, without ever holding the real request back.
// Its done func is called once, on the reading goroutine: with the whole
// body and ok when the body ended within MaxBody, with ok false when it
// grew past MaxBody or was closed before its end.
type Tee struct {
	rc   io.ReadCloser
	done func(body []byte, ok bool)
	mu   sync.Mutex // the real request's body may be read by a transport goroutine
	buf  []byte
	// fired is set once done was called.
	fired bool
}

// NewTee wraps rc.
func NewTee(rc io.ReadCloser, done func(body []byte, ok bool)) *Tee {
	return &Tee{rc: rc, done: done}
}

// Read implements io.Reader.
func (t *Tee) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	t.mu.Lock()
	if t.fired {
		t.mu.Unlock()
		return n, err
	}
	var body []byte
	fire, ok := false, false
	switch {
	case len(t.buf)+n > MaxBody:
		t.buf, fire = nil, true
	case n > 0:
		t.buf = append(t.buf, p[:n]...)
	}
	if !fire && err == io.EOF {
		body, fire, ok = t.buf, true, true
	}
	t.fired = fire
	t.mu.Unlock()
	if fire {
		t.done(body, ok)
	}
	return n, err
}

// Close implements io.Closer.
func (t *Tee) Close() error {
	t.mu.Lock()
	fire := !t.fired
	t.fired = true
	t.mu.Unlock()
	if fire {
		t.done(nil, false)
	}
	return t.rc.Close()
}
