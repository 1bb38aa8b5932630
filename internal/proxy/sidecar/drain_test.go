package sidecar

import (
	"context"
	"testing"
	"time"
)

// TestDrainerCheck is the drain state machine: quiet is counted from the
// later of the deregistration and the last arrival, a request in flight
// holds the drain, and the timeout ends it regardless.
func TestDrainerCheck(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	tests := []struct {
		name     string
		inflight int64
		last     time.Time // zero: no request ever
		now      time.Time
		gone     bool
		done     bool
		quiet    bool
	}{
		{name: "no request yet, within quiet", now: ms(999)},
		{name: "no request, quiet elapsed", now: ms(1000), done: true, quiet: true},
		{name: "old arrival counts from deregistration", last: ms(-5000), now: ms(500)},
		{name: "old arrival, quiet elapsed", last: ms(-5000), now: ms(1000), done: true, quiet: true},
		{name: "recent arrival restarts quiet", last: ms(800), now: ms(1500)},
		{name: "recent arrival, quiet elapsed", last: ms(800), now: ms(1800), done: true, quiet: true},
		{name: "in flight holds the drain", inflight: 1, last: ms(100), now: ms(3000)},
		{name: "timeout ends it with requests in flight", inflight: 2, last: ms(100), now: ms(5000), done: true},
		{name: "timeout ends steady traffic", last: ms(4990), now: ms(5000), done: true},
		{name: "the app exiting ends it", inflight: 1, last: ms(100), now: ms(200), gone: true, done: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := drainer{Timeout: 5 * time.Second, Quiet: time.Second, Activity: func() (int64, time.Time) { return tt.inflight, tt.last }, Gone: func() bool { return tt.gone }}
			done, out := d.check(t0, tt.now)
			if done != tt.done || out.Quiet != tt.quiet || out.InFlight != tt.inflight || out.AppGone != tt.gone {
				t.Errorf("check = %v, %+v; want done=%v quiet=%v in flight %d", done, out, tt.done, tt.quiet, tt.inflight)
			}
		})
	}
}

// TestDrainerWait ends early once quiet, and at the timeout under steady
// traffic.
func TestDrainerWait(t *testing.T) {
	start := time.Now()
	out := drainer{Timeout: 5 * time.Second, Quiet: 50 * time.Millisecond, Activity: func() (int64, time.Time) { return 0, time.Time{} }}.wait(context.Background(), start)
	if d := time.Since(start); !out.Quiet || d < 50*time.Millisecond || d > 2*time.Second {
		t.Errorf("idle inbound: outcome %+v after %v, want quiet after about 50ms", out, d)
	}
	start = time.Now()
	out = drainer{Timeout: 200 * time.Millisecond, Quiet: 50 * time.Millisecond, Activity: func() (int64, time.Time) { return 0, time.Now() }}.wait(context.Background(), start)
	if d := time.Since(start); out.Quiet || d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("steady traffic: outcome %+v after %v, want the 200ms timeout", out, d)
	}
}
