package xdsgen

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestAdaptiveConcurrencyDefaults checks how each field of an
// adaptiveConcurrency is translated: defaults filled in, the initial limit
// kept within the bounds, and the result accepted by the proxy.
func TestAdaptiveConcurrencyDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   *api.AdaptiveConcurrency
		want *weftv1.AdaptiveConcurrency
	}{
		{"nil", nil, nil},
		{"defaults", &api.AdaptiveConcurrency{}, &weftv1.AdaptiveConcurrency{UpdateIntervalMs: 100, MinRttIntervalMs: 30000, MinLimit: 3, MaxLimit: 1000, InitialLimit: 20, LatencyBufferPercent: 25}},
		{"every field", &api.AdaptiveConcurrency{UpdateInterval: "250ms", MinRTTInterval: "1m", MinLimit: 2, MaxLimit: 80, InitialLimit: 8, LatencyBufferPercent: 10},
			&weftv1.AdaptiveConcurrency{UpdateIntervalMs: 250, MinRttIntervalMs: 60000, MinLimit: 2, MaxLimit: 80, InitialLimit: 8, LatencyBufferPercent: 10}},
		{"initial default above max", &api.AdaptiveConcurrency{MaxLimit: 10}, &weftv1.AdaptiveConcurrency{UpdateIntervalMs: 100, MinRttIntervalMs: 30000, MinLimit: 3, MaxLimit: 10, InitialLimit: 10, LatencyBufferPercent: 25}},
		{"initial default below min", &api.AdaptiveConcurrency{MinLimit: 50}, &weftv1.AdaptiveConcurrency{UpdateIntervalMs: 100, MinRttIntervalMs: 30000, MinLimit: 50, MaxLimit: 1000, InitialLimit: 50, LatencyBufferPercent: 25}},
		{"max default below min", &api.AdaptiveConcurrency{MinLimit: 5000}, &weftv1.AdaptiveConcurrency{UpdateIntervalMs: 100, MinRttIntervalMs: 30000, MinLimit: 5000, MaxLimit: 5000, InitialLimit: 5000, LatencyBufferPercent: 25}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AdaptiveConcurrency(tt.in)
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if err := weftv1.ValidateService(&weftv1.Service{Name: "a", Namespace: "b", AdaptiveConcurrency: got}); err != nil {
				t.Errorf("the proxy would refuse it: %v", err)
			}
		})
	}
}

// TestConnectionLimits checks the translation of connectionPool.
func TestConnectionLimits(t *testing.T) {
	tests := []struct {
		name string
		in   *api.ConnectionPool
		want *weftv1.ConnectionLimits
	}{
		{"nil", nil, nil},
		{"no breaker limit", &api.ConnectionPool{}, nil},
		{"every field", &api.ConnectionPool{MaxConnections: 3, MaxPendingRequests: 4, MaxConcurrentRequests: 5}, &weftv1.ConnectionLimits{MaxConnections: 3, MaxPendingRequests: 4, MaxConcurrentRequests: 5}},
		{"connections only", &api.ConnectionPool{MaxConnections: 7}, &weftv1.ConnectionLimits{MaxConnections: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ConnectionLimits(tt.in), protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestBreakerUpdate checks that adding, changing and removing a policy's
// limits reaches the target's Service resource through Update, the last
// policy for a service winning.
func TestBreakerUpdate(t *testing.T) {
	dp := func(name string, max int32) *api.DestinationPolicy {
		p := destinationPolicy("default", name, "backend", "")
		p.Spec.ConnectionPool = &api.ConnectionPool{MaxConcurrentRequests: max}
		return p
	}
	backend := &mesh.Service{Name: "backend", Namespace: "default"}
	r := NewRouting(newSet(t))
	steps := []struct {
		name string
		objs []api.Object
		want uint32 // max_concurrent_requests; 0 means no limits
	}{
		{"add", []api.Object{dp("a", 10)}, 10},
		{"change", []api.Object{dp("a", 20)}, 20},
		{"second policy wins", []api.Object{dp("a", 20), dp("b", 30)}, 30},
		{"remove", nil, 0},
	}
	for _, s := range steps {
		next, keys, all := r.Update(newSet(t, s.objs...))
		if !all && !slices.Contains(keys, "backend.default") {
			t.Errorf("%s: keys %v do not name backend.default", s.name, keys)
		}
		got := next.Service(backend).GetConnectionLimits().GetMaxConcurrentRequests()
		if got != s.want {
			t.Errorf("%s: max_concurrent_requests %d, want %d", s.name, got, s.want)
		}
		if fresh := NewRouting(newSet(t, s.objs...)).Service(backend); !cmp.Equal(fresh, next.Service(backend), protocmp.Transform()) {
			t.Errorf("%s: Update and NewRouting differ", s.name)
		}
		r = next
	}
}
