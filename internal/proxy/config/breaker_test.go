package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"weft.dev/weft/internal/proxy/adaptive"
	"weft.dev/weft/internal/proxy/breaker"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestBuildBreaker checks the compilation of connection limits and
// adaptive concurrency, and that a service without them has none.
func TestBuildBreaker(t *testing.T) {
	tests := []struct {
		name    string
		in      *weftv1.Service
		wantB   *breaker.Limits
		wantA   *adaptive.Config
		wantErr bool
	}{
		{name: "none", in: &weftv1.Service{Name: "a", Namespace: "b"}},
		{name: "limits", in: &weftv1.Service{Name: "a", Namespace: "b", ConnectionLimits: &weftv1.ConnectionLimits{MaxConnections: 2, MaxPendingRequests: 3, MaxConcurrentRequests: 4}},
			wantB: &breaker.Limits{MaxConnections: 2, MaxPendingRequests: 3, MaxConcurrentRequests: 4}},
		{name: "adaptive", in: &weftv1.Service{Name: "a", Namespace: "b", AdaptiveConcurrency: &weftv1.AdaptiveConcurrency{UpdateIntervalMs: 50, MinRttIntervalMs: 2000, MinLimit: 2, InitialLimit: 5, MaxLimit: 9, LatencyBufferPercent: 40}},
			wantA: &adaptive.Config{UpdateInterval: 50 * time.Millisecond, MinRTTInterval: 2 * time.Second, MinLimit: 2, InitialLimit: 5, MaxLimit: 9, LatencyBuffer: 0.4}},
		{name: "bad adaptive", in: &weftv1.Service{Name: "a", Namespace: "b", AdaptiveConcurrency: &weftv1.AdaptiveConcurrency{}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Build("1", []*weftv1.Service{tt.in}, nil)
			if tt.wantErr {
				if err == nil {
					t.Fatal("built, want a NACK")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			svc := cfg.Services["a.b"]
			if diff := cmp.Diff(tt.wantB, svc.Breaker); diff != "" {
				t.Errorf("Breaker (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantA, svc.Adaptive); diff != "" {
				t.Errorf("Adaptive (-want +got):\n%s", diff)
			}
		})
	}
}
