package outlier

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		status  int
		err     error
		connect bool
		want    Result
	}{
		{200, nil, false, Success}, {404, nil, false, Success}, {500, nil, false, ServerError},
		{502, nil, false, GatewayError}, {503, nil, false, GatewayError}, {504, nil, false, GatewayError},
		{0, errors.New("reset"), false, GatewayError}, {0, errors.New("refused"), true, ConnectFailure},
		{0, fmt.Errorf("x: %w", context.Canceled), false, Ignored},
	} {
		if got := Classify(tc.status, tc.err, tc.connect); got != tc.want {
			t.Errorf("Classify(%d, %v, %v) = %d, want %d", tc.status, tc.err, tc.connect, got, tc.want)
		}
	}
}

func TestThresholds(t *testing.T) {
	base := Policy{BaseEjection: time.Second, MaxEjection: 10 * time.Second, MaxEjectionPercent: 100, Interval: time.Second}
	with := func(f func(*Policy)) *Policy { p := base; f(&p); return &p }
	for _, tc := range []struct {
		name    string
		p       *Policy
		results []Result
		ejected bool
	}{
		{"5xx run", with(func(p *Policy) { p.Consecutive5xx = 3 }), []Result{ServerError, GatewayError, ServerError}, true},
		{"5xx broken by success", with(func(p *Policy) { p.Consecutive5xx = 3 }), []Result{ServerError, ServerError, Success, ServerError}, false},
		{"gateway errors", with(func(p *Policy) { p.ConsecutiveGatewayErrors = 2 }), []Result{GatewayError, ConnectFailure}, true},
		{"gateway run broken by a 500", with(func(p *Policy) { p.ConsecutiveGatewayErrors = 2 }), []Result{GatewayError, ServerError, GatewayError}, false},
		{"connect failures", with(func(p *Policy) { p.ConsecutiveConnectFailures = 2 }), []Result{ConnectFailure, ConnectFailure}, true},
		{"connect run broken by a 503", with(func(p *Policy) { p.ConsecutiveConnectFailures = 2 }), []Result{ConnectFailure, GatewayError, ConnectFailure}, false},
		{"ignored does not break a run", with(func(p *Policy) { p.ConsecutiveGatewayErrors = 2 }), []Result{GatewayError, Ignored, GatewayError}, true},
		{"off", &base, []Result{ConnectFailure, ConnectFailure, ConnectFailure}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g Group
			var e Endpoint
			now := time.Unix(1000, 0)
			for _, r := range tc.results {
				g.Observe(tc.p, &e, r, 4, now)
			}
			if got, _ := g.IsEjected(&e, now.UnixNano()); got != tc.ejected {
				t.Errorf("ejected = %v, want %v", got, tc.ejected)
			}
		})
	}
}

// TestEjectionTime: the n-th ejection lasts n base times, at most the
// maximum; the endpoint returns when it is up; the count decays by one
// per interval spent un-ejected.
func TestEjectionTime(t *testing.T) {
	p := &Policy{ConsecutiveGatewayErrors: 1, BaseEjection: time.Second, MaxEjection: 3 * time.Second, MaxEjectionPercent: 100, Interval: 10 * time.Second}
	var g Group
	var e Endpoint
	now := time.Unix(1000, 0)
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second} {
		if !g.Observe(p, &e, GatewayError, 2, now) {
			t.Fatalf("ejection %d did not happen", i+1)
		}
		if ej, _ := g.IsEjected(&e, now.Add(want-time.Millisecond).UnixNano()); !ej {
			t.Fatalf("ejection %d ended before %v", i+1, want)
		}
		now = now.Add(want)
		if ej, returned := g.IsEjected(&e, now.UnixNano()); ej || !returned {
			t.Fatalf("ejection %d: ejected %v returned %v at %v, want back", i+1, ej, returned, want)
		}
		if g.Ejected() != 0 {
			t.Fatalf("%d counted ejected after return", g.Ejected())
		}
	}
	// 25 s un-ejected: the count (4) decays by 2; the next ejection is the
	// third (capped at 3 s anyway), then after 40 s more it is the first.
	now = now.Add(25 * time.Second)
	g.Observe(p, &e, GatewayError, 2, now)
	if e.count.Load() != 3 {
		t.Fatalf("count %d after decay, want 3", e.count.Load())
	}
	now = now.Add(3*time.Second + time.Nanosecond)
	g.IsEjected(&e, now.UnixNano())
	now = now.Add(40 * time.Second)
	g.Observe(p, &e, GatewayError, 2, now)
	if e.count.Load() != 1 {
		t.Fatalf("count %d after long decay, want 1", e.count.Load())
	}
}

func TestMaxShare(t *testing.T) {
	p := &Policy{ConsecutiveGatewayErrors: 1, BaseEjection: time.Second, MaxEjection: time.Second, MaxEjectionPercent: 50, Interval: time.Second}
	var g Group
	eps := make([]Endpoint, 5)
	now := time.Unix(1000, 0)
	for i := range eps {
		g.Observe(p, &eps[i], GatewayError, len(eps), now)
	}
	if g.Ejected() != 2 {
		t.Fatalf("%d of 5 ejected at 50%%, want 2", g.Ejected())
	}
	g.Forget(&eps[0])
	g.Forget(&eps[4]) // not ejected: no change
	if g.Ejected() != 1 {
		t.Fatalf("%d ejected after one left, want 1", g.Ejected())
	}
}
