package retry

import (
	"sync"
	"sync/atomic"
	"time"
)

// Budget defaults: retries may add 20% to the requests of a destination,
// plus 10 retries a second, over a 10 s window.
const (
	DefaultBudgetPercent      = 20
	DefaultBudgetMinPerSecond = 10
	DefaultBudgetWindow       = 10 * time.Second
)

// BudgetParams are the limits of a Budget, compiled from the destination's
// DestinationPolicy (or the defaults) at each config push.
type BudgetParams struct {
	// Percent of the window's requests that may be retried.
	Percent uint32
	// MinPerSecond retries a second are allowed whatever the traffic.
	MinPerSecond uint32
	// Window is the span over which requests and retries are counted.
	Window time.Duration
	// MaxConcurrent caps the retries in flight at once; 0 means no cap.
	MaxConcurrent uint32
}

// DefaultBudget are the limits of a destination without DestinationPolicy
// retry budget.
var DefaultBudget = BudgetParams{Percent: DefaultBudgetPercent, MinPerSecond: DefaultBudgetMinPerSecond, Window: DefaultBudgetWindow}

// buckets is how many slices of the window are counted apart.
const buckets = 10

// Budget counts the requests and retries of one destination over a sliding
// window, in buckets of a tenth of the window. It outlives config pushes (it
// is kept in Budgets by destination key) and is safe for concurrent use
// without locks; under contention it may let a retry or two too many
// through, never a share of the traffic.
type Budget struct {
	b        [buckets]bucket
	inflight atomic.Int64
}

type bucket struct {
	slot              atomic.Int64
	requests, retries atomic.Int64
}

// at returns the bucket of slot, emptying it first if it holds another
// slot: an older one, or, after a push changed the window, one of another
// scale.
func (b *Budget) at(slot int64) *bucket {
	k := &b.b[slot%buckets]
	if s := k.slot.Load(); s != slot && k.slot.CompareAndSwap(s, slot) {
		k.requests.Store(0)
		k.retries.Store(0)
	}
	return k
}

func slotOf(now time.Time, p *BudgetParams) int64 {
	w := p.Window
	if w <= 0 {
		w = DefaultBudgetWindow
	}
	return now.UnixNano() / int64(w/buckets)
}

// Request counts one request (not a retry) at now.
func (b *Budget) Request(now time.Time, p *BudgetParams) {
	b.at(slotOf(now, p)).requests.Add(1)
}

// totals sums the window ending in slot.
func (b *Budget) totals(slot int64) (requests, retries int64) {
	for i := range b.b {
		k := &b.b[i]
		if d := slot - k.slot.Load(); d >= 0 && d < buckets {
			requests += k.requests.Load()
			retries += k.retries.Load()
		}
	}
	return requests, retries
}

// TryRetry takes one retry from the budget at now, or reports false when
// the window's retries already reach Percent of its requests plus
// MinPerSecond for each second of the window, or MaxConcurrent retries are
// in flight. A true answer must be followed by Release when the retry
// attempt ends.
func (b *Budget) TryRetry(now time.Time, p *BudgetParams) bool {
	if p.MaxConcurrent > 0 && b.inflight.Add(1) > int64(p.MaxConcurrent) {
		b.inflight.Add(-1)
		return false
	} else if p.MaxConcurrent == 0 {
		b.inflight.Add(1)
	}
	slot := slotOf(now, p)
	k := b.at(slot)
	k.retries.Add(1)
	requests, retries := b.totals(slot)
	w := p.Window
	if w <= 0 {
		w = DefaultBudgetWindow
	}
	allowed := requests*int64(p.Percent)/100 + int64(p.MinPerSecond)*int64(w/time.Millisecond)/1000
	if retries > allowed {
		k.retries.Add(-1)
		b.inflight.Add(-1)
		return false
	}
	return true
}

// Release ends a retry TryRetry allowed.
func (b *Budget) Release() { b.inflight.Add(-1) }

// InFlight is the number of retries in flight (tests, debugging).
func (b *Budget) InFlight() int64 { return b.inflight.Load() }

// Budgets holds the Budget of each destination by service key, for the
// life of the proxy: counters survive config pushes.
type Budgets struct {
	m sync.Map // string -> *Budget
}

// For returns the Budget of destination key, creating it on first use.
func (bs *Budgets) For(key string) *Budget {
	if b, ok := bs.m.Load(key); ok {
		return b.(*Budget)
	}
	b, _ := bs.m.LoadOrStore(key, new(Budget))
	return b.(*Budget)
}
