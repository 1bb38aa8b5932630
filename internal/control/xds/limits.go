package xds

import (
	"crypto/sha256"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Limits bound what clients of the xDS port may hold and ask. A zero field
// takes its default; a negative one lifts that bound (except RequestBurst,
// which is at least 1). Exceeding a bound refuses the stream with
// codes.ResourceExhausted and a message naming the limit; a connection
// beyond MaxConnections is closed at once.
type Limits struct {
	// MaxStreams bounds the open xDS streams in total (default 10,000).
	MaxStreams int
	// MaxStreamsPerIdentity bounds the open streams of one SPIFFE ID
	// (default 1,000). The replicas of a service share its ID, so this
	// bounds one service account rather than one proxy.
	MaxStreamsPerIdentity int
	// MaxStreamsPerCertificate bounds the open streams of one client
	// certificate, that is of one proxy process, which uses one (default
	// 8: reconnects and certificate rotation briefly overlap).
	MaxStreamsPerCertificate int
	// MaxMessageSize bounds a message received on the xDS port in bytes
	// (default 1 MiB; gRPC's own default is 4 MiB). A proxy's largest
	// request, its subscription list after a reconnect, is about 100
	// bytes per subscribed service.
	MaxMessageSize int
	// RequestRate is the sustained number of requests per second one
	// stream may send (default 100) and RequestBurst how many it may send
	// at once (default 1,000): a proxy ACKs every response and subscribes
	// to one service's endpoints per request when it starts calling it.
	RequestRate  float64
	RequestBurst int
	// MaxConnections bounds the open connections to the xDS port, CA
	// calls included (default 20,000: each proxy holds one for xDS and
	// one for the CA, which closes after MaxConnectionIdle).
	MaxConnections int
	// HandshakeTimeout bounds a connection's TLS handshake (default 10s).
	HandshakeTimeout time.Duration
	// MaxConnectionIdle closes a connection without streams, such as a
	// proxy's CA connection between renewals, after this long (default
	// 5m); the client reconnects when it next calls.
	MaxConnectionIdle time.Duration
}

// DefaultLimits are the limits a zero Limits stands for.
func DefaultLimits() Limits { return Limits{}.withDefaults() }

// withDefaults fills the zero fields of l with the defaults.
func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxStreams, 10_000)
	def(&l.MaxStreamsPerIdentity, 1_000)
	def(&l.MaxStreamsPerCertificate, 8)
	def(&l.MaxMessageSize, 1<<20)
	def(&l.RequestBurst, 1_000)
	def(&l.MaxConnections, 20_000)
	if l.RequestRate == 0 {
		l.RequestRate = 100
	}
	if l.HandshakeTimeout == 0 {
		l.HandshakeTimeout = 10 * time.Second
	}
	if l.MaxConnectionIdle == 0 {
		l.MaxConnectionIdle = 5 * time.Minute
	}
	// Lifted bounds, as gRPC spells them.
	if l.MaxMessageSize < 0 {
		l.MaxMessageSize = math.MaxInt32
	}
	if l.HandshakeTimeout < 0 {
		l.HandshakeTimeout = math.MaxInt64
	}
	if l.MaxConnectionIdle < 0 {
		l.MaxConnectionIdle = 0 // never
	}
	l.RequestBurst = max(l.RequestBurst, 1)
	return l
}

// bucket is a token bucket: rate tokens a second, at most burst. It is not
// safe for concurrent use.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate float64, burst int, now time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// take takes a token at now, if there is one.
func (b *bucket) take(now time.Time) bool {
	if b.rate < 0 {
		return true
	}
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// admission counts the open streams in total, per identity and per
// certificate.
type admission struct {
	limits Limits

	mu     sync.Mutex
	total  int
	byID   map[spiffeid.ID]int
	byCert map[[sha256.Size]byte]int
}

func newAdmission(l Limits) *admission {
	return &admission{limits: l, byID: map[spiffeid.ID]int{}, byCert: map[[sha256.Size]byte]int{}}
}

// acquire admits one more stream of c, or names the bound it would exceed
// (a refusal reason) and says why. A nil error comes with release, to be
// called once when the stream ends.
func (a *admission) acquire(c *caller) (release func(), reason string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.limits
	switch {
	case l.MaxStreams > 0 && a.total >= l.MaxStreams:
		return nil, reasonStreams, fmt.Errorf("the control plane serves at most %d xDS streams (limit MaxStreams)", l.MaxStreams)
	case l.MaxStreamsPerIdentity > 0 && a.byID[c.id] >= l.MaxStreamsPerIdentity:
		return nil, reasonIdentityStreams, fmt.Errorf("%s has %d open xDS streams, the most one identity may have (limit MaxStreamsPerIdentity)", c.id, l.MaxStreamsPerIdentity)
	case l.MaxStreamsPerCertificate > 0 && a.byCert[c.cert] >= l.MaxStreamsPerCertificate:
		return nil, reasonCertStreams, fmt.Errorf("this certificate of %s has %d open xDS streams, the most one certificate may have (limit MaxStreamsPerCertificate)", c.id, l.MaxStreamsPerCertificate)
	}
	a.total++
	a.byID[c.id]++
	a.byCert[c.cert]++
	var once sync.Once
	return func() { once.Do(func() { a.release(c) }) }, "", nil
}

func (a *admission) release(c *caller) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
	if a.byID[c.id]--; a.byID[c.id] == 0 {
		delete(a.byID, c.id)
	}
	if a.byCert[c.cert]--; a.byCert[c.cert] == 0 {
		delete(a.byCert, c.cert)
	}
}
