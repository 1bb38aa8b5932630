// Package adaptive is the opt-in adaptive-concurrency stage of the outbound
// request path (DestinationPolicy spec.adaptiveConcurrency): a gradient
// concurrency limiter in the manner of Envoy's adaptive concurrency filter
// and Netflix's concurrency-limits, run by each client proxy for each
// destination that asks for it.
//
// The limiter keeps the requests in flight to a destination under a limit
// that follows the destination's latency:
//
//   - Baseline: every MinRTTInterval (and first when the limiter starts) the
//     limit is pinned at MinLimit until minRTTSamples requests admitted
//     under it have completed; their mean latency is the min-RTT baseline —
//     the destination's latency with almost no queue.
//   - Every UpdateInterval the mean latency of the requests that completed
//     since the last update is the sample, and
//     gradient = baseline × (1 + LatencyBuffer) / sample, clamped to
//     [0.5, 1.5]; the new limit is limit × gradient + √limit, within
//     [MinLimit, MaxLimit]. The square-root headroom lets the limit probe
//     upwards while latency holds; when work queues up at the destination,
//     latency grows, the gradient falls below 1 and the limit with it. The
//     limit does not grow while less than half of it is in use.
//
// A request over the limit is shed at once (the caller answers 503 with
// x-weft-reason: adaptive-concurrency) rather than joining a growing queue.
// Admission and completion are atomic operations; the update, once per
// interval, runs under a mutex taken by one completing request (TryLock:
// no request waits for it).
package adaptive

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// minRTTSamples is how many requests measure the baseline.
const minRTTSamples = 10

// Config is the compiled tuning of one destination's limiter; immutable.
type Config struct {
	UpdateInterval time.Duration
	MinRTTInterval time.Duration
	MinLimit       int64
	MaxLimit       int64
	InitialLimit   int64
	// LatencyBuffer is the tolerated latency increase over the baseline, as
	// a fraction (0.25 for 25%).
	LatencyBuffer float64
}

// Limiter is the adaptive concurrency state of one destination, shared by
// every request from this proxy to it and kept across config pushes.
type Limiter struct {
	now func() time.Time

	cfg       atomic.Pointer[Config]
	limit     atomic.Int64
	inflight  atomic.Int64
	peak      atomic.Int64 // most in flight since the last update
	sum       atomic.Int64 // latency (ns) of the samples since the last update
	count     atomic.Int64
	epoch     atomic.Uint64 // samples of requests admitted in another epoch are dropped
	windowEnd atomic.Int64  // unix ns of the next update

	mu          sync.Mutex // guards the fields below; taken once per update
	measuring   bool
	saved       int64 // the limit to restore after measuring
	measureSum  int64
	measureN    int64
	baseline    int64 // ns; 0 before the first measurement
	nextMeasure int64 // unix ns
}

// New returns a Limiter under cfg that reads the time from now (nil:
// time.Now). It starts by measuring the baseline.
func New(cfg *Config, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{now: now}
	l.cfg.Store(cfg)
	l.limit.Store(cfg.MinLimit)
	l.measuring, l.saved = true, cfg.InitialLimit
	l.windowEnd.Store(now().UnixNano() + int64(cfg.UpdateInterval))
	return l
}

// Token is an admitted request; pass it to Release when the request ends.
type Token struct {
	start int64
	epoch uint64
}

// Acquire admits a request under cfg (which the limiter adopts if it is new)
// or reports false when the limit is reached: the request is to be shed.
func (l *Limiter) Acquire(cfg *Config) (Token, bool) {
	if l.cfg.Load() != cfg {
		l.adopt(cfg)
	}
	now := l.now().UnixNano()
	if now >= l.windowEnd.Load() {
		l.update(now)
	}
	n := l.inflight.Add(1)
	if n > l.limit.Load() {
		l.inflight.Add(-1)
		return Token{}, false
	}
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
	return Token{start: now, epoch: l.epoch.Load()}, true
}

// Release ends an admitted request and samples its latency.
func (l *Limiter) Release(t Token) {
	l.inflight.Add(-1)
	now := l.now().UnixNano()
	if t.epoch == l.epoch.Load() {
		l.sum.Add(now - t.start)
		l.count.Add(1)
	}
	if now >= l.windowEnd.Load() {
		l.update(now)
	}
}

// Limit is the current concurrency limit.
func (l *Limiter) Limit() int64 { return l.limit.Load() }

// InFlight is the number of admitted requests in flight.
func (l *Limiter) InFlight() int64 { return l.inflight.Load() }

// adopt switches to new tuning, keeping the learnt state within its bounds.
func (l *Limiter) adopt(cfg *Config) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg.Store(cfg)
	l.saved = clamp(l.saved, cfg.MinLimit, cfg.MaxLimit)
	if l.measuring {
		l.limit.Store(cfg.MinLimit)
		return
	}
	l.limit.Store(clamp(l.limit.Load(), cfg.MinLimit, cfg.MaxLimit))
}

// update recomputes the limit at the end of an update interval.
func (l *Limiter) update(now int64) {
	if !l.mu.TryLock() {
		return // another request is updating
	}
	defer l.mu.Unlock()
	if now < l.windowEnd.Load() {
		return
	}
	cfg := l.cfg.Load()
	l.windowEnd.Store(now + int64(cfg.UpdateInterval))
	n, sum := l.count.Swap(0), l.sum.Swap(0)
	peak := l.peak.Swap(l.inflight.Load())
	limit := l.limit.Load()

	if l.measuring {
		l.measureSum += sum
		l.measureN += n
		if l.measureN < minRTTSamples {
			return
		}
		l.baseline = l.measureSum / l.measureN
		l.measuring = false
		l.nextMeasure = now + int64(cfg.MinRTTInterval)
		l.epoch.Add(1)
		l.limit.Store(clamp(l.saved, cfg.MinLimit, cfg.MaxLimit))
		return
	}
	if now >= l.nextMeasure {
		// Pin the limit to measure the baseline again; requests admitted
		// before do not count towards it.
		l.measuring, l.saved, l.measureSum, l.measureN = true, limit, 0, 0
		l.epoch.Add(1)
		l.limit.Store(cfg.MinLimit)
		return
	}
	if n == 0 {
		return
	}
	sample := float64(sum) / float64(n)
	gradient := math.Max(0.5, math.Min(1.5, float64(l.baseline)*(1+cfg.LatencyBuffer)/sample))
	if gradient >= 1 && peak < limit/2 {
		return // not using the limit: nothing learnt about a higher one
	}
	next := int64(float64(limit)*gradient + math.Sqrt(float64(limit)))
	l.limit.Store(clamp(next, cfg.MinLimit, cfg.MaxLimit))
}

// Baseline is the last measured min-RTT baseline (0 before the first).
func (l *Limiter) Baseline() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Duration(l.baseline)
}

func clamp(v, lo, hi int64) int64 { return min(max(v, lo), hi) }
