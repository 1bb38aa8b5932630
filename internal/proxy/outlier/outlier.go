// Package outlier ejects failing endpoints from load balancing: after a
// number of consecutive failures an endpoint is skipped by every balancer
// algorithm for a base ejection time multiplied by how often it has been
// ejected (capped), and returns by itself once that time is up. At most a
// share of a destination's endpoints (default 50%) is ejected at once, so a
// destination whose endpoints all fail keeps being tried rather than
// emptied.
//
// The detector is a pair of long-lived objects per destination — a Group
// and one Endpoint per endpoint — that survive config pushes; recording an
// outcome and checking an ejection are a few atomic operations, no lock.
package outlier

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// Policy is the compiled outlier detection of a destination. The zero
// Policy detects nothing.
type Policy struct {
	// Consecutive5xx, ConsecutiveGatewayErrors and
	// ConsecutiveConnectFailures are the failure runs that eject; 0 is off.
	Consecutive5xx             int32
	ConsecutiveGatewayErrors   int32
	ConsecutiveConnectFailures int32
	// BaseEjection times the endpoint's ejection count is how long an
	// ejection lasts, at most MaxEjection.
	BaseEjection time.Duration
	MaxEjection  time.Duration
	// MaxEjectionPercent caps the share of endpoints ejected at once.
	MaxEjectionPercent int32
	// Interval: every Interval an endpoint spends un-ejected takes one off
	// its ejection count.
	Interval time.Duration
}

// Enabled reports whether p ejects anything.
func (p *Policy) Enabled() bool {
	return p != nil && (p.Consecutive5xx > 0 || p.ConsecutiveGatewayErrors > 0 || p.ConsecutiveConnectFailures > 0)
}

// Result is the outcome of one attempt, as the detector counts it.
type Result uint8

// Results, from best to worst.
const (
	Success Result = iota
	// ServerError is a 5xx other than 502, 503 and 504.
	ServerError
	// GatewayError is a 502, 503 or 504 response, or a failure after the
	// connection was established (reset, no response).
	GatewayError
	// ConnectFailure is a failure to connect to the endpoint.
	ConnectFailure
	// Ignored is an outcome that says nothing about the endpoint (the
	// caller gave up: context canceled).
	Ignored
)

// Classify maps an attempt's outcome to a Result; connectFailed reports
// whether err is a failure to connect.
func Classify(status int, err error, connectFailed bool) Result {
	switch {
	case err != nil && connectFailed:
		return ConnectFailure
	case err != nil && (errors.Is(err, context.Canceled)):
		return Ignored
	case err != nil:
		return GatewayError
	case status == 502 || status == 503 || status == 504:
		return GatewayError
	case status >= 500 && status <= 599:
		return ServerError
	}
	return Success
}

// Endpoint is the detector state of one endpoint of one destination.
type Endpoint struct {
	n5xx, nGateway, nConnect atomic.Int32
	// until is when the current ejection ends (Unix nanoseconds), 0 when
	// the endpoint is not ejected.
	until atomic.Int64
	// count is the ejection multiplier; ended is when the last ejection
	// ended (Unix nanoseconds), from which the multiplier decays.
	count atomic.Int32
	ended atomic.Int64
}

// Group is the ejection accounting of one destination.
type Group struct {
	ejected atomic.Int32
}

// Ejected returns the number of endpoints currently counted as ejected.
func (g *Group) Ejected() int { return int(g.ejected.Load()) }

// Any reports whether any endpoint may be ejected: when it is false, a
// balancer skips the per-endpoint checks.
func (g *Group) Any() bool { return g.ejected.Load() > 0 }

// IsEjected reports whether e is ejected at now (Unix nanoseconds). An
// endpoint whose ejection time is up is returned to the set here; returned
// then reports that this call returned it.
func (g *Group) IsEjected(e *Endpoint, now int64) (ejected, returned bool) {
	u := e.until.Load()
	if u == 0 {
		return false, false
	}
	if now < u {
		return true, false
	}
	if e.until.CompareAndSwap(u, 0) {
		e.ended.Store(now)
		g.ejected.Add(-1)
		return false, true
	}
	return false, false
}

// Forget releases e's ejection when its endpoint leaves the destination.
func (g *Group) Forget(e *Endpoint) {
	if u := e.until.Load(); u != 0 && e.until.CompareAndSwap(u, 0) {
		g.ejected.Add(-1)
	}
}

// Observe records one outcome of e, one of n endpoints of the destination,
// at now, and ejects e when a failure run reaches its threshold and the
// share allows. It reports whether this call ejected e.
func (g *Group) Observe(p *Policy, e *Endpoint, r Result, n int, now time.Time) bool {
	switch r {
	case Ignored:
		return false
	case Success:
		// Plain stores of zero when already zero are cheap but still
		// write a shared line; load first.
		for _, c := range [...]*atomic.Int32{&e.n5xx, &e.nGateway, &e.nConnect} {
			if c.Load() != 0 {
				c.Store(0)
			}
		}
		return false
	}
	if !p.Enabled() {
		return false
	}
	trip := false
	if v := e.n5xx.Add(1); p.Consecutive5xx > 0 && v >= p.Consecutive5xx {
		trip = true
	}
	if r >= GatewayError {
		if v := e.nGateway.Add(1); p.ConsecutiveGatewayErrors > 0 && v >= p.ConsecutiveGatewayErrors {
			trip = true
		}
	} else if e.nGateway.Load() != 0 {
		e.nGateway.Store(0)
	}
	if r == ConnectFailure {
		if v := e.nConnect.Add(1); p.ConsecutiveConnectFailures > 0 && v >= p.ConsecutiveConnectFailures {
			trip = true
		}
	} else if e.nConnect.Load() != 0 {
		e.nConnect.Store(0)
	}
	if !trip {
		return false
	}
	return g.eject(p, e, n, now.UnixNano())
}

// eject ejects e if the share allows, and resets its failure runs.
func (g *Group) eject(p *Policy, e *Endpoint, n int, now int64) bool {
	if e.until.Load() != 0 {
		return false // already ejected (a request picked before it was)
	}
	allowed := int32(n * int(p.MaxEjectionPercent) / 100)
	for {
		c := g.ejected.Load()
		if c >= allowed {
			return false
		}
		if g.ejected.CompareAndSwap(c, c+1) {
			break
		}
	}
	count := e.count.Load()
	if ended := e.ended.Load(); ended != 0 && p.Interval > 0 {
		count -= int32(min((now-ended)/int64(p.Interval), int64(count)))
	}
	count++
	d := p.BaseEjection * time.Duration(count)
	if d > p.MaxEjection || d <= 0 {
		d = p.MaxEjection
	}
	if !e.until.CompareAndSwap(0, now+int64(d)) {
		g.ejected.Add(-1)
		return false
	}
	e.count.Store(count)
	e.n5xx.Store(0)
	e.nGateway.Store(0)
	e.nConnect.Store(0)
	return true
}
