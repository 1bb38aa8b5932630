package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"weft.dev/weft/internal/proxy/retry"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

func TestBuildServiceRetry(t *testing.T) {
	u := func(v uint32) *uint32 { return &v }
	grpc := retry.Policy{Attempts: 2, Backoff: 10 * time.Millisecond, MaxBufferedBody: retry.DefaultMaxBufferedBody, On: retry.OnGatewayError}
	grpc.AddGRPC(14)
	grpc.AddGRPC(8)
	tests := []struct {
		name       string
		in         *weftv1.Service
		wantPolicy retry.Policy
		wantBudget retry.BudgetParams
	}{
		{"defaults", &weftv1.Service{}, retry.Default, retry.DefaultBudget},
		{"mesh default off", &weftv1.Service{DefaultRetryOff: true}, retry.DefaultOff, retry.DefaultBudget},
		{"max concurrent retries", &weftv1.Service{MaxConcurrentRetries: 3},
			retry.Default, retry.BudgetParams{Percent: 20, MinPerSecond: 10, Window: 10 * time.Second, MaxConcurrent: 3}},
		{"conditions replace the default, for every method",
			&weftv1.Service{Retry: &weftv1.ServiceRetry{RetryOn: []string{"gateway-error", "unavailable", "resource-exhausted"}}},
			grpc, retry.DefaultBudget},
		{"every field",
			&weftv1.Service{Retry: &weftv1.ServiceRetry{Attempts: u(0), PerTryTimeoutMs: 300, BackoffMs: 5, MaxBufferedBodyBytes: u(0),
				Budget: &weftv1.RetryBudget{Percent: u(0), MinRetriesPerSecond: u(1), WindowMs: 2000}}},
			retry.Policy{Attempts: 0, On: retry.Default.On, PerTry: 300 * time.Millisecond, Backoff: 5 * time.Millisecond, IdempotentOnly: true},
			retry.BudgetParams{Percent: 0, MinPerSecond: 1, Window: 2 * time.Second}},
		{"budget fields left out keep the default",
			&weftv1.Service{Retry: &weftv1.ServiceRetry{Budget: &weftv1.RetryBudget{WindowMs: 5000}}},
			retry.Default, retry.BudgetParams{Percent: 20, MinPerSecond: 10, Window: 5 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := buildServiceRetry(tt.in)
			if diff := cmp.Diff(tt.wantPolicy, got.Policy, cmp.AllowUnexported(retry.Policy{})); diff != "" {
				t.Errorf("policy (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantBudget, got.Budget); diff != "" {
				t.Errorf("budget (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildRouteRetry(t *testing.T) {
	var r Route
	buildRouteRetry(&r, &weftv1.Route{BackendRequestTimeoutMs: 250, Retry: &weftv1.RouteRetry{Attempts: 3, Codes: []uint32{503}, BackoffMs: 40}})
	want := retry.Policy{Attempts: 3, On: retry.OnConnectFailure | retry.OnReset | retry.OnPerTryTimeout, Backoff: 40 * time.Millisecond}
	want.AddCode(503)
	if diff := cmp.Diff(&want, r.Retry, cmp.AllowUnexported(retry.Policy{})); diff != "" {
		t.Errorf("policy (-want +got):\n%s", diff)
	}
	if r.BackendTimeout != 250*time.Millisecond {
		t.Errorf("backend timeout %v, want 250ms", r.BackendTimeout)
	}
	var none Route
	if buildRouteRetry(&none, &weftv1.Route{}); none.Retry != nil || none.BackendTimeout != 0 {
		t.Errorf("a route without retry compiled to %+v, %v", none.Retry, none.BackendTimeout)
	}
}
