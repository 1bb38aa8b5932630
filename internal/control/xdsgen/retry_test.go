package xdsgen

import (
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestServiceRetryTranslation translates each DestinationPolicy retry field.
func TestServiceRetryTranslation(t *testing.T) {
	u := func(v uint32) *uint32 { return &v }
	i := func(v int32) *int32 { return &v }
	tests := []struct {
		name string
		in   api.RetryPolicy
		want *weftv1.ServiceRetry
	}{
		{"empty keeps every default", api.RetryPolicy{}, &weftv1.ServiceRetry{}},
		{"attempts zero is kept", api.RetryPolicy{Attempts: i(0)}, &weftv1.ServiceRetry{Attempts: u(0)}},
		{"durations", api.RetryPolicy{PerTryTimeout: "1.5s", Backoff: "25ms"}, &weftv1.ServiceRetry{PerTryTimeoutMs: 1500, BackoffMs: 25}},
		{"conditions", api.RetryPolicy{RetryOn: []string{"5xx", "unavailable"}}, &weftv1.ServiceRetry{RetryOn: []string{"5xx", "unavailable"}}},
		{"no body", api.RetryPolicy{MaxBufferedBodyBytes: i(0)}, &weftv1.ServiceRetry{MaxBufferedBodyBytes: u(0)}},
		{"budget", api.RetryPolicy{Budget: &api.RetryBudget{Percent: i(5), Window: "2s"}}, &weftv1.ServiceRetry{Budget: &weftv1.RetryBudget{Percent: u(5), WindowMs: 2000}}},
		{"budget floor zero", api.RetryPolicy{Budget: &api.RetryBudget{MinRetriesPerSecond: i(0)}}, &weftv1.ServiceRetry{Budget: &weftv1.RetryBudget{MinRetriesPerSecond: u(0)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ServiceRetry(&tt.in)
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if err := weftv1.ValidateService(&weftv1.Service{Name: "a", Namespace: "b", Retry: got}); err != nil {
				t.Errorf("the proxy would refuse it: %v", err)
			}
		})
	}
}

// TestRetryUpdate: a DestinationPolicy change recompiles the retry of its
// target only, as NewRouting would.
func TestRetryUpdate(t *testing.T) {
	withRetry := func(target string, attempts int32, maxRetries int32) *api.DestinationPolicy {
		dp := destinationPolicy("default", target, target, "")
		dp.Spec.Retry = &api.RetryPolicy{Attempts: &attempts}
		if maxRetries > 0 {
			dp.Spec.ConnectionPool = &api.ConnectionPool{MaxConnections: 1, MaxConcurrentRetries: maxRetries}
		}
		return dp
	}
	tests := []struct {
		name       string
		prev, next []api.Object
		wantKeys   []string
	}{
		{"added", nil, []api.Object{withRetry("a", 1, 0)}, []string{"a.default"}},
		{"changed", []api.Object{withRetry("a", 1, 0), withRetry("b", 1, 0)}, []api.Object{withRetry("a", 3, 4), withRetry("b", 1, 0)}, []string{"a.default"}},
		{"removed", []api.Object{withRetry("a", 1, 0)}, nil, []string{"a.default"}},
		{"retry dropped, lb kept", []api.Object{withRetry("a", 1, 0)}, []api.Object{destinationPolicy("default", "a", "a", "RANDOM")}, []string{"a.default"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, keys, all := NewRouting(newSet(t, tt.prev...)).Update(newSet(t, tt.next...))
			if all || !slices.Equal(keys, tt.wantKeys) {
				t.Errorf("Update reported keys %v (all %v), want %v", keys, all, tt.wantKeys)
			}
			want := NewRouting(newSet(t, tt.next...))
			same := func(a, b serviceRetry) bool {
				return a.maxConcurrent == b.maxConcurrent && proto.Equal(a.policy, b.policy)
			}
			if !maps.EqualFunc(want.retries, next.retries, same) {
				t.Errorf("retries after Update %v, want %v", next.retries, want.retries)
			}
		})
	}
}
