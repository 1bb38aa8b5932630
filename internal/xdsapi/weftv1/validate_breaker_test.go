package weftv1

import (
	"strings"
	"testing"
)

// TestValidateBreaker checks the connection limits and adaptive concurrency
// of a Service: every bound is enforced and names its field.
func TestValidateBreaker(t *testing.T) {
	good := func() *AdaptiveConcurrency {
		return &AdaptiveConcurrency{UpdateIntervalMs: 100, MinRttIntervalMs: 30000, MinLimit: 3, InitialLimit: 20, MaxLimit: 1000, LatencyBufferPercent: 25}
	}
	with := func(f func(*AdaptiveConcurrency)) *AdaptiveConcurrency { a := good(); f(a); return a }
	tests := []struct {
		name string
		cl   *ConnectionLimits
		ac   *AdaptiveConcurrency
		want string // "" means valid
	}{
		{"none", nil, nil, ""},
		{"limits", &ConnectionLimits{MaxConnections: 2, MaxPendingRequests: 3, MaxConcurrentRequests: 10}, nil, ""},
		{"adaptive", nil, good(), ""},
		{"too many connections", &ConnectionLimits{MaxConnections: 1000001}, nil, "connection_limits.max_connections: 1000001 is over"},
		{"pending alone", &ConnectionLimits{MaxPendingRequests: 1}, nil, "connection_limits.max_pending_requests: set without"},
		{"update zero", nil, with(func(a *AdaptiveConcurrency) { a.UpdateIntervalMs = 0 }), "adaptive_concurrency.update_interval_ms: 0 out of range"},
		{"min rtt short", nil, with(func(a *AdaptiveConcurrency) { a.MinRttIntervalMs = 999 }), "adaptive_concurrency.min_rtt_interval_ms: 999 out of range"},
		{"min rtt not longer", nil, with(func(a *AdaptiveConcurrency) { a.UpdateIntervalMs, a.MinRttIntervalMs = 5000, 5000 }), "not longer than update_interval_ms"},
		{"min limit zero", nil, with(func(a *AdaptiveConcurrency) { a.MinLimit = 0 }), "adaptive_concurrency: limits must hold"},
		{"initial above max", nil, with(func(a *AdaptiveConcurrency) { a.InitialLimit = 2000 }), "adaptive_concurrency: limits must hold"},
		{"max too high", nil, with(func(a *AdaptiveConcurrency) { a.MaxLimit, a.InitialLimit = 100001, 100001 }), "adaptive_concurrency: limits must hold"},
		{"buffer zero", nil, with(func(a *AdaptiveConcurrency) { a.LatencyBufferPercent = 0 }), "adaptive_concurrency.latency_buffer_percent: 0 out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateService(&Service{Name: "web", Namespace: "default", ConnectionLimits: tt.cl, AdaptiveConcurrency: tt.ac})
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
}
