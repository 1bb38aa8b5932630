package sidecar

import (
	"context"
	"time"
)

// Drain defaults: peers learn of the deregistration within a few hundred
// milliseconds (the control plane debounces pushes by 100 ms), so a second
// without a new request means they have stopped sending.
const (
	DefaultDrainTimeout = 5 * time.Second
	DefaultDrainQuiet   = time.Second
)

// drainer decides when the inbound listener of a deregistered proxy has
// drained: no request in flight and none arrived for Quiet, counted from
// the later of the deregistration and the last arrival; or Timeout after
// the deregistration, whatever is still in flight.
type drainer struct {
	Timeout, Quiet time.Duration
	// Activity reports the requests in flight and the last arrival.
	Activity func() (inflight int64, last time.Time)
	// Gone, if set, reports that the app has exited (e.g. it got the
	// same SIGTERM from its process group): nothing is left to drain into.
	Gone func() bool
}

// drainOutcome is how a drain ended.
type drainOutcome struct {
	Quiet    bool  // false: the timeout (or the context) ended it
	AppGone  bool  // the app exited during the drain
	InFlight int64 // requests still in flight when it ended
}

// check decides at now for a drain that started at start.
func (d drainer) check(start, now time.Time) (done bool, out drainOutcome) {
	inflight, last := d.Activity()
	out.InFlight = inflight
	if d.Gone != nil && d.Gone() {
		out.AppGone = true
		return true, out
	}
	if now.Sub(start) >= d.Timeout {
		return true, out
	}
	from := start
	if last.After(from) {
		from = last
	}
	if inflight == 0 && now.Sub(from) >= d.Quiet {
		out.Quiet = true
		return true, out
	}
	return false, out
}

// wait polls check until the drain is done or ctx ends.
func (d drainer) wait(ctx context.Context, start time.Time) drainOutcome {
	tick := max(min(d.Quiet/10, 50*time.Millisecond), time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		done, out := d.check(start, time.Now())
		if done {
			return out
		}
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
	}
}
