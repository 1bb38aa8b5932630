// Package breaker is the circuit-breaking stage of the outbound request
// path: per-destination limits from DestinationPolicy spec.connectionPool,
// enforced by each client proxy on its own calls. A request over a limit
// fails fast (the caller answers 503 with x-weft-reason naming the limit)
// instead of piling onto a service that is already saturated.
//
// Limits are compiled once per config push into an immutable *Limits (held
// by config.Service); the counters live in a long-lived Destination per
// service key, so they survive config pushes, and a Destination adopts new
// Limits atomically the first time a request brings them. Admission under
// the limit is one atomic add; only a request that has to wait for a slot
// (maxPendingRequests) blocks, on a channel.
package breaker

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"
)

// Reasons, the values of x-weft-reason and of the limit label of
// weft_proxy_breaker_rejections_total.
const (
	ReasonMaxConcurrentRequests = "max-concurrent-requests"
	ReasonMaxPendingRequests    = "max-pending-requests"
	ReasonMaxConnections        = "max-connections"
)

// PendingTimeout is the longest a request waits for an admission slot
// before it is refused with ReasonMaxConcurrentRequests (sooner when its
// own context ends).
const PendingTimeout = time.Second

// Limits are the compiled connection limits of one destination; 0 means no
// limit. They are immutable once built.
type Limits struct {
	// MaxConnections bounds the connections opened for the destination.
	MaxConnections int64
	// MaxPendingRequests bounds the requests waiting for an admission
	// slot; 0 means none waits.
	MaxPendingRequests int64
	// MaxConcurrentRequests bounds the requests in flight.
	MaxConcurrentRequests int64
}

// Rejection is the error of a request or connection refused by a limit.
type Rejection struct {
	// Destination is the service key.
	Destination string
	// Reason is one of the Reason constants.
	Reason string
	// Limit is the value of the limit that refused it.
	Limit int64
}

func (r *Rejection) Error() string {
	return "weft: " + r.Destination + ": circuit breaker: " + r.Reason + " limit reached (" + strconv.FormatInt(r.Limit, 10) + ")"
}

// Destination is the admission state of one destination service, shared by
// every request from this proxy to it. It is safe for concurrent use.
type Destination struct {
	key      string
	limits   atomic.Pointer[Limits]
	inflight atomic.Int64
	pending  atomic.Int64
	conns    atomic.Int64
	// wake signals waiting requests that a slot may have freed.
	wake chan struct{}
}

// NewDestination returns the state of the service with key (for messages).
func NewDestination(key string) *Destination {
	return &Destination{key: key, wake: make(chan struct{}, 1)}
}

// use makes l the destination's limits if they are not already.
func (d *Destination) use(l *Limits) {
	if d.limits.Load() != l {
		d.limits.Store(l)
		d.signal() // a higher limit may free waiting requests
	}
}

func (d *Destination) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Ticket is an admitted request; call Done once when it ends. The zero
// Ticket (nothing counted) is valid.
type Ticket struct{ d *Destination }

// Done releases the request's slot.
func (t Ticket) Done() {
	if t.d == nil {
		return
	}
	t.d.inflight.Add(-1)
	if t.d.pending.Load() > 0 {
		t.d.signal()
	}
}

// Admit admits a request under limits l (which the destination adopts), or
// refuses it with a *Rejection: at once when MaxConcurrentRequests are in
// flight and MaxPendingRequests wait already; otherwise after waiting up to
// PendingTimeout (or until ctx ends) for a slot.
func (d *Destination) Admit(ctx context.Context, l *Limits) (Ticket, error) {
	d.use(l)
	max := l.MaxConcurrentRequests
	if max == 0 {
		return Ticket{}, nil
	}
	if d.inflight.Add(1) <= max {
		return Ticket{d}, nil
	}
	d.inflight.Add(-1)
	if l.MaxPendingRequests == 0 {
		return Ticket{}, &Rejection{Destination: d.key, Reason: ReasonMaxConcurrentRequests, Limit: max}
	}
	if d.pending.Add(1) > l.MaxPendingRequests {
		d.pending.Add(-1)
		return Ticket{}, &Rejection{Destination: d.key, Reason: ReasonMaxPendingRequests, Limit: l.MaxPendingRequests}
	}
	defer d.pending.Add(-1)
	timer := time.NewTimer(PendingTimeout)
	defer timer.Stop()
	for {
		select {
		case <-d.wake:
		case <-timer.C:
			return Ticket{}, &Rejection{Destination: d.key, Reason: ReasonMaxConcurrentRequests, Limit: max}
		case <-ctx.Done():
			return Ticket{}, &Rejection{Destination: d.key, Reason: ReasonMaxConcurrentRequests, Limit: max}
		}
		cur := d.limits.Load()
		if max = cur.MaxConcurrentRequests; max == 0 {
			return Ticket{}, nil // the limit was lifted while waiting
		}
		if n := d.inflight.Add(1); n <= max {
			if n < max && d.pending.Load() > 1 {
				d.signal() // pass the wake-up on: more slots are free
			}
			return Ticket{d}, nil
		}
		d.inflight.Add(-1)
	}
}

// InFlight reports the admitted requests in flight (tests, debugging).
func (d *Destination) InFlight() int64 { return d.inflight.Load() }

// Connections reports the connections counted open (tests, debugging).
func (d *Destination) Connections() int64 { return d.conns.Load() }

// OpenConn reserves one connection under the current MaxConnections, or
// refuses with a *Rejection when that many are open. Pair it with
// CloseConn when the connection closes. It implements upstream.ConnGate.
func (d *Destination) OpenConn() error {
	n := d.conns.Add(1)
	if l := d.limits.Load(); l != nil && l.MaxConnections > 0 && n > l.MaxConnections {
		d.conns.Add(-1)
		return &Rejection{Destination: d.key, Reason: ReasonMaxConnections, Limit: l.MaxConnections}
	}
	return nil
}

// CloseConn releases a connection reserved by OpenConn.
func (d *Destination) CloseConn() { d.conns.Add(-1) }
