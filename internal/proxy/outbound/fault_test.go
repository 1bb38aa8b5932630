package outbound

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/fault"
	"weft.dev/weft/internal/proxy/route"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestInjectFault checks what injectFault answers for each kind of fault
// and request, and that a delay ends with the request's context.
func TestInjectFault(t *testing.T) {
	abort := func(a *weftv1.FaultAbort) *fault.Fault {
		a.PerMillion = weftv1.PerMillion
		return fault.Compile(&weftv1.FaultInjection{Name: "default/f", Abort: a})
	}
	delay := func(d time.Duration) *fault.Fault {
		return fault.Compile(&weftv1.FaultInjection{Name: "default/f", Delay: &weftv1.FaultDelay{DelayMs: uint32(d.Milliseconds()), PerMillion: weftv1.PerMillion}})
	}
	canceled := func(*testing.T) context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	routeTimeout := func(t *testing.T) context.Context { return timeout(t, 30*time.Millisecond) }
	tests := []struct {
		name       string
		f          *fault.Fault
		grpc       bool
		ctx        func(*testing.T) context.Context // nil: a 2 s timeout
		answered   bool
		status     int    // 0: nothing written
		grpcStatus string // Grpc-Status header
		minTime    time.Duration
	}{
		{"none", nil, false, nil, false, 0, "", 0},
		{"http abort", abort(&weftv1.FaultAbort{HttpStatus: 503}), false, nil, true, 503, "", 0},
		{"grpc abort to grpc", abort(&weftv1.FaultAbort{GrpcStatus: 8}), true, nil, true, 200, "8", 0},
		{"grpc abort to http", abort(&weftv1.FaultAbort{GrpcStatus: 14}), false, nil, true, 503, "", 0},
		{"http abort to grpc", abort(&weftv1.FaultAbort{HttpStatus: 503}), true, nil, true, 200, "14", 0},
		{"delay passes", delay(30 * time.Millisecond), false, nil, false, 0, "", 30 * time.Millisecond},
		{"delay outlives the route timeout", delay(10 * time.Second), false, routeTimeout, true, 504, "", 30 * time.Millisecond},
		{"client gone during delay", delay(10 * time.Second), false, canceled, true, 0, "", 0},
	}
	l := &Listener{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://backend/", nil)
			if tt.grpc {
				r.ProtoMajor = 2
				r.Header.Set("Content-Type", "application/grpc")
			}
			ctx := timeout(t, 2*time.Second)
			if tt.ctx != nil {
				ctx = tt.ctx(t)
			}
			w := httptest.NewRecorder()
			start := time.Now()
			got := l.injectFault(ctx, w, r, &config.Route{Route: route.Route{Name: "default/r/0"}, Fault: tt.f}, nil, "backend.default")
			took := time.Since(start)
			if got != tt.answered {
				t.Fatalf("answered = %v, want %v", got, tt.answered)
			}
			if took < tt.minTime || took > tt.minTime+time.Second {
				t.Errorf("took %s, want about %s", took, tt.minTime)
			}
			written := w.Body.Len() > 0 || len(w.Header()) > 0
			if tt.status == 0 {
				if written {
					t.Errorf("wrote %d %v %q, want nothing", w.Code, w.Header(), w.Body)
				}
				return
			}
			if w.Code != tt.status || w.Header().Get("Grpc-Status") != tt.grpcStatus {
				t.Errorf("answered %d grpc-status %q, want %d %q", w.Code, w.Header().Get("Grpc-Status"), tt.status, tt.grpcStatus)
			}
			if tt.status != 504 && w.Header().Get("X-Weft-Reason") != fault.Reason {
				t.Errorf("x-weft-reason %q, want %q", w.Header().Get("X-Weft-Reason"), fault.Reason)
			}
			if tt.grpc && w.Body.Len() != 0 {
				t.Errorf("gRPC abort has a body %q, want trailers-only", w.Body)
			}
		})
	}
}

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// BenchmarkUnconfiguredFaultMirror is what the fault and mirror hooks cost
// a routed request whose route has neither.
func BenchmarkUnconfiguredFaultMirror(b *testing.B) {
	l := &Listener{}
	r := httptest.NewRequest(http.MethodGet, "http://backend/", nil)
	w := httptest.NewRecorder()
	rt := &config.Route{Route: route.Route{Name: "default/r/0"}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if l.injectFault(ctx, w, r, rt, nil, "backend.default") {
			b.Fatal("answered")
		}
		if l.mirror(r, nil, rt, nil) != r {
			b.Fatal("request replaced")
		}
	}
}
