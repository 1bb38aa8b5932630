package weftv1

import (
	"strings"
	"testing"
)

// TestValidateFaultMirror checks that ValidateService refuses every bad
// fault and mirror, naming the field, and accepts good ones.
func TestValidateFaultMirror(t *testing.T) {
	abort := func(a *FaultAbort) *Route { return &Route{Fault: &FaultInjection{Abort: a}} }
	delay := func(d *FaultDelay) *Route { return &Route{Fault: &FaultInjection{Delay: d}} }
	tests := []struct {
		name  string
		route *Route
		want  string // "" means valid
	}{
		{"none", &Route{}, ""},
		{"http abort", abort(&FaultAbort{HttpStatus: 503, PerMillion: 200000}), ""},
		{"grpc abort", abort(&FaultAbort{GrpcStatus: 14, PerMillion: PerMillion}), ""},
		{"delay", delay(&FaultDelay{DelayMs: 100, PerMillion: 1}), ""},
		{"mirror", &Route{Mirrors: []*RequestMirror{{Service: "m", Namespace: "default", PerMillion: PerMillion}}}, ""},
		{"empty fault", &Route{Fault: &FaultInjection{}}, "routes[0]: fault: set delay, abort or both"},
		{"both statuses", abort(&FaultAbort{HttpStatus: 503, GrpcStatus: 14}), "routes[0]: fault.abort: both http_status and grpc_status are set"},
		{"no status", abort(&FaultAbort{PerMillion: 1}), "routes[0]: fault.abort: one of http_status and grpc_status is required"},
		{"http status", abort(&FaultAbort{HttpStatus: 200}), "routes[0]: fault.abort.http_status: 200 is not an HTTP error status"},
		{"grpc status", abort(&FaultAbort{GrpcStatus: 17}), "routes[0]: fault.abort.grpc_status: 17 is not a gRPC error status"},
		{"abort share", abort(&FaultAbort{HttpStatus: 503, PerMillion: PerMillion + 1}), "routes[0]: fault.abort.per_million: 1000001 exceeds 1000000"},
		{"no delay", delay(&FaultDelay{PerMillion: 1}), "routes[0]: fault.delay.delay_ms: 0 out of range"},
		{"long delay", delay(&FaultDelay{DelayMs: MaxFaultDelayMs + 1}), "routes[0]: fault.delay.delay_ms: 3600001 out of range"},
		{"delay share", delay(&FaultDelay{DelayMs: 1, PerMillion: 2000000}), "routes[0]: fault.delay.per_million: 2000000 exceeds"},
		{"header", &Route{Fault: &FaultInjection{Abort: &FaultAbort{HttpStatus: 500}, Headers: []*HeaderMatch{{}}}}, "routes[0]: fault.headers[0].name: must not be empty"},
		{"mirror service", &Route{Mirrors: []*RequestMirror{{Namespace: "default"}}}, "routes[0]: mirrors[0]: service and namespace are required"},
		{"mirror share", &Route{Mirrors: []*RequestMirror{{Service: "m", Namespace: "d", PerMillion: PerMillion + 1}}}, "routes[0]: mirrors[0].per_million: 1000001 exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.route.Backends = []*Backend{{Service: "b", Namespace: "default", Weight: 1}}
			err := ValidateService(&Service{Name: "web", Namespace: "default", Routes: []*Route{tt.route}})
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
}
