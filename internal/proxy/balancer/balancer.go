// Package balancer picks the endpoint of a destination service for a
// request: power of two choices over peak-EWMA latency (the default, as
// Linkerd and Finagle do it), round robin, least request, random, and
// consistent hashing on a ring or a Maglev table. Every algorithm skips
// endpoints that outlier detection ejected.
//
// A Destination is the long-lived state of one destination service: its
// round-robin counter, one Endpoint per endpoint address (latency
// estimate, requests in flight, outlier detector), which survive config
// pushes, and a view of the current endpoint slice with its hash tables,
// rebuilt when the slice changes. Picking takes no lock and, for every
// algorithm but the first pick after a change, allocates nothing.
package balancer

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/outlier"
)

// Peak-EWMA parameters (Linkerd's: a 10 s decay, new endpoints start as if
// their latency were 30 ms, so they are tried but not flooded).
const (
	DecayTime  = 10 * time.Second
	DefaultRTT = 30 * time.Millisecond
)

// Observer learns about ejections, for metrics; it may be nil.
type Observer interface {
	// OutlierEjected counts one ejection from destination service.
	OutlierEjected(service string)
	// OutlierEjectedNow reports how many endpoints of service are ejected.
	OutlierEjectedNow(service string, n int)
}

// Request is what one pick needs besides the endpoints.
type Request struct {
	Algorithm config.LoadBalancer
	// Spec is the service's hash and outlier configuration; nil for none.
	Spec *config.Balancer
	// Hash is the request's consistent-hash key, when HasHash.
	Hash    uint64
	HasHash bool
	// Sticky is a session-persistence token (see Token), when HasSticky:
	// the endpoint it names is picked if it is usable.
	Sticky    uint64
	HasSticky bool
}

// Destination is the balancer state of one destination service.
type Destination struct {
	key string
	obs Observer
	rr  atomic.Uint32

	mu     sync.Mutex                           // serialises writers of states
	states atomic.Pointer[map[string]*Endpoint] // by address, copy-on-write
	view   atomic.Pointer[view]
	spec   atomic.Pointer[config.Balancer] // see SetSpec

	// Outlier counts the destination's ejected endpoints.
	Outlier outlier.Group
}

// NewDestination returns the state of destination service key.
func NewDestination(key string, obs Observer) *Destination {
	d := &Destination{key: key, obs: obs}
	// Start at a random offset so proxies that start together do not all
	// hit the first endpoint first.
	d.rr.Store(rand.Uint32())
	empty := map[string]*Endpoint{}
	d.states.Store(&empty)
	return d
}

// SetSpec records s as the destination's current hash and outlier
// configuration (the config's, as of the latest pick that knew it).
func (d *Destination) SetSpec(s *config.Balancer) {
	if d.spec.Load() != s {
		d.spec.Store(s)
	}
}

// Spec is the configuration SetSpec last recorded (nil for none).
func (d *Destination) Spec() *config.Balancer { return d.spec.Load() }

// Endpoint is the state of one endpoint of a destination.
type Endpoint struct {
	inflight atomic.Int64
	// rtt is the peak-EWMA latency estimate in nanoseconds (float64
	// bits) as of stamp (Unix nanoseconds).
	rtt   atomic.Uint64
	stamp atomic.Int64
	// token names the endpoint in session-persistence tokens.
	token uint64
	// Outlier is the endpoint's outlier detector.
	Outlier outlier.Endpoint
}

// Done ends a request counted in flight by Pick.
func (e *Endpoint) Done() { e.inflight.Add(-1) }

// InFlight is the endpoint's requests in flight.
func (e *Endpoint) InFlight() int64 { return e.inflight.Load() }

// cost is the endpoint's peak-EWMA load at now: the latency estimate,
// decayed towards zero since it was last updated, times the requests in
// flight plus one.
func (e *Endpoint) cost(now int64) float64 {
	rtt := math.Float64frombits(e.rtt.Load())
	if td := now - e.stamp.Load(); td > 0 {
		rtt *= math.Exp(-float64(td) / float64(DecayTime))
	}
	return rtt * float64(e.inflight.Load()+1)
}

// observe feeds one latency into the estimate: a latency above it replaces
// it (the peak), a lower one is averaged in with a weight that grows with
// the time since the last update. A failure only ever raises the estimate,
// so an endpoint that fails fast does not look fast.
func (e *Endpoint) observe(latency time.Duration, failed bool, now int64) {
	rtt := float64(latency)
	cur := math.Float64frombits(e.rtt.Load())
	next := rtt
	if rtt < cur {
		if failed {
			return
		}
		w := 1.0
		if td := now - e.stamp.Load(); td > 0 {
			w = math.Exp(-float64(td) / float64(DecayTime))
		}
		next = cur*w + rtt*(1-w)
	}
	e.rtt.Store(math.Float64bits(next))
	e.stamp.Store(now)
}

// view is the destination's current endpoint slice with its states in the
// same order and, built on first use, its hash tables.
type view struct {
	eps          []config.Endpoint // keeps the identity of the slice
	states       []*Endpoint
	ring, maglev atomic.Pointer[table]
}

func (d *Destination) viewOf(eps []config.Endpoint, now int64) *view {
	if v := d.view.Load(); v != nil && len(v.eps) == len(eps) && &v.eps[0] == &eps[0] {
		return v
	}
	v := &view{eps: eps, states: make([]*Endpoint, len(eps))}
	for i := range eps {
		v.states[i] = d.state(eps[i].Address, now)
	}
	d.view.Store(v)
	return v
}

// state returns the state of the endpoint at addr, creating it.
func (d *Destination) state(addr string, now int64) *Endpoint {
	if e := (*d.states.Load())[addr]; e != nil {
		return e
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	cur := *d.states.Load()
	if e := cur[addr]; e != nil {
		return e
	}
	e := &Endpoint{token: Token(addr)}
	e.rtt.Store(math.Float64bits(float64(DefaultRTT)))
	e.stamp.Store(now)
	next := make(map[string]*Endpoint, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[addr] = e
	d.states.Store(&next)
	return e
}

// Prune forgets the endpoints whose address is not in eps (a departed
// endpoint's ejection no longer counts against the share).
func (d *Destination) Prune(eps []config.Endpoint) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur := *d.states.Load()
	keep := make(map[string]bool, len(eps))
	for i := range eps {
		keep[eps[i].Address] = true
	}
	next := make(map[string]*Endpoint, len(eps))
	for addr, e := range cur {
		if keep[addr] {
			next[addr] = e
		} else {
			d.Outlier.Forget(&e.Outlier)
		}
	}
	d.states.Store(&next)
	if d.obs != nil {
		d.obs.OutlierEjectedNow(d.key, d.Outlier.Ejected())
	}
}

// Pick chooses an endpoint of eps (not empty) for req, counts it in
// flight, and returns its index and state.
func (d *Destination) Pick(req Request, eps []config.Endpoint) (int, *Endpoint) {
	var now int64
	if req.Algorithm == config.P2CEWMA || req.HasSticky || d.Outlier.Any() {
		now = time.Now().UnixNano()
	}
	v := d.viewOf(eps, now)
	i := d.pick(v, req, now)
	e := v.states[i]
	e.inflight.Add(1)
	return i, e
}

func (d *Destination) pick(v *view, req Request, now int64) int {
	n := len(v.eps)
	if req.HasSticky {
		for i, e := range v.states {
			if e.token == req.Sticky && d.usable(e, now) {
				return i
			}
		}
	}
	if n == 1 {
		return 0
	}
	switch req.Algorithm {
	case config.RingHash, config.Maglev:
		h := req.Hash
		if !req.HasHash {
			h = rand.Uint64()
		}
		return d.hashPick(v, req, h, now)
	case config.Random:
		return d.next(v, rand.IntN(n), -1, now)
	case config.LeastRequest, config.P2CEWMA:
		i := rand.IntN(n)
		j := rand.IntN(n - 1)
		if j >= i {
			j++
		}
		i = d.next(v, i, -1, now)
		j = d.next(v, j, i, now)
		if j == i {
			return i
		}
		a, b := v.states[i], v.states[j]
		if req.Algorithm == config.LeastRequest {
			if b.inflight.Load() < a.inflight.Load() {
				return j
			}
			return i
		}
		if b.cost(now) < a.cost(now) {
			return j
		}
		return i
	}
	return d.next(v, int(d.rr.Add(1)%uint32(n)), -1, now)
}

// usable reports whether e is not ejected.
func (d *Destination) usable(e *Endpoint, now int64) bool {
	if !d.Outlier.Any() {
		return true
	}
	ejected, returned := d.Outlier.IsEjected(&e.Outlier, now)
	if returned && d.obs != nil {
		d.obs.OutlierEjectedNow(d.key, d.Outlier.Ejected())
	}
	return !ejected
}

// next returns the first usable index from i on (wrapping), other than
// not; i itself when none is.
func (d *Destination) next(v *view, i, not int, now int64) int {
	if !d.Outlier.Any() && i != not {
		return i
	}
	n := len(v.eps)
	for k := range n {
		j := (i + k) % n
		if j != not && d.usable(v.states[j], now) {
			return j
		}
	}
	return i
}

// Observe records the outcome of an attempt on e: its latency feeds the
// estimate, its status or error the outlier detector, whose ejected share
// is of all the destination's endpoints. connectFailed reports whether err
// is a failure to connect.
func (d *Destination) Observe(e *Endpoint, spec *config.Balancer, status int, err error, connectFailed bool, latency time.Duration) {
	now := time.Now()
	r := outlier.Classify(status, err, connectFailed)
	if r == outlier.Ignored {
		return
	}
	e.observe(latency, r != outlier.Success, now.UnixNano())
	if spec == nil || !spec.Outlier.Enabled() {
		return
	}
	n := len(*d.states.Load())
	if d.Outlier.Observe(&spec.Outlier, &e.Outlier, r, n, now) && d.obs != nil {
		d.obs.OutlierEjected(d.key)
		d.obs.OutlierEjectedNow(d.key, d.Outlier.Ejected())
	}
}

// EjectedAddresses lists the addresses of the endpoints ejected now, in
// no particular order (for the admin config dump).
func (d *Destination) EjectedAddresses() []string {
	if !d.Outlier.Any() {
		return nil
	}
	var out []string
	now := time.Now().UnixNano()
	for addr, e := range *d.states.Load() {
		if !d.usable(e, now) {
			out = append(out, addr)
		}
	}
	return out
}

// Ejected reports whether the endpoint at addr is ejected now (for
// status pages and tests).
func (d *Destination) Ejected(addr string) bool {
	e := (*d.states.Load())[addr]
	if e == nil {
		return false
	}
	return !d.usable(e, time.Now().UnixNano())
}
