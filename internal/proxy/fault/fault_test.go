package fault

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// fixed returns a draw func that returns the given numbers in turn.
func fixed(ns ...uint32) func(uint32) uint32 {
	return func(uint32) uint32 {
		n := ns[0]
		ns = ns[1:]
		return n
	}
}

func TestDecide(t *testing.T) {
	both := Compile(&weftv1.FaultInjection{Name: "default/f",
		Delay: &weftv1.FaultDelay{DelayMs: 200, PerMillion: 100000},
		Abort: &weftv1.FaultAbort{HttpStatus: 503, PerMillion: 200000}})
	scoped := Compile(&weftv1.FaultInjection{Name: "default/s",
		Abort:   &weftv1.FaultAbort{GrpcStatus: 14, PerMillion: weftv1.PerMillion},
		Headers: []*weftv1.HeaderMatch{{Name: "x-chaos", Value: "on"}}})
	tests := []struct {
		name   string
		f      *Fault
		header string // x-chaos value, "" for none
		draws  []uint32
		want   Decision
	}{
		{"nil", nil, "", nil, Decision{}},
		{"neither", both, "", []uint32{100000, 200000}, Decision{}},
		{"delay only", both, "", []uint32{99999, 200000}, Decision{Delay: 200 * time.Millisecond}},
		{"abort only", both, "", []uint32{500000, 199999}, Decision{Abort: true}},
		{"both", both, "", []uint32{0, 0}, Decision{Delay: 200 * time.Millisecond, Abort: true}},
		{"scoped, header", scoped, "on", []uint32{999999}, Decision{Abort: true}},
		{"scoped, other value", scoped, "off", nil, Decision{}},
		{"scoped, no header", scoped, "", nil, Decision{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://backend/", nil)
			if tt.header != "" {
				r.Header.Set("X-Chaos", tt.header)
			}
			var draw func(uint32) uint32
			if tt.draws != nil {
				draw = fixed(tt.draws...)
			} else {
				draw = func(uint32) uint32 { t.Fatal("unexpected draw"); return 0 }
			}
			if got := tt.f.Decide(r, draw); got != tt.want {
				t.Errorf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestDecideShare checks the share of aborts over many real draws.
func TestDecideShare(t *testing.T) {
	f := Compile(&weftv1.FaultInjection{Abort: &weftv1.FaultAbort{HttpStatus: 503, PerMillion: 200000}})
	r := httptest.NewRequest(http.MethodGet, "http://backend/", nil)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 100000
	aborted := 0
	for range n {
		if f.Decide(r, rng.Uint32N).Abort {
			aborted++
		}
	}
	if aborted < n*19/100 || aborted > n*21/100 {
		t.Errorf("%d of %d aborted, want 20%% ± 1%%", aborted, n)
	}
}

func TestAbortHTTPStatus(t *testing.T) {
	for _, tc := range []struct {
		f    Fault
		want int
	}{
		{Fault{HTTPStatus: 429}, 429},
		{Fault{GRPCStatus: 14}, 503},
		{Fault{GRPCStatus: 8}, 429},
		{Fault{GRPCStatus: 16}, 401},
		{Fault{GRPCStatus: 99}, 500},
	} {
		if got := tc.f.AbortHTTPStatus(); got != tc.want {
			t.Errorf("%+v: AbortHTTPStatus = %d, want %d", tc.f, got, tc.want)
		}
	}
}

// BenchmarkDecide is the per-request cost of a configured fault whose
// header match holds.
func BenchmarkDecide(b *testing.B) {
	f := Compile(&weftv1.FaultInjection{
		Delay:   &weftv1.FaultDelay{DelayMs: 1, PerMillion: 100000},
		Abort:   &weftv1.FaultAbort{HttpStatus: 503, PerMillion: 200000},
		Headers: []*weftv1.HeaderMatch{{Name: "x-chaos", Value: "on"}}})
	r := httptest.NewRequest(http.MethodGet, "http://backend/", nil)
	r.Header.Set("X-Chaos", "on")
	b.ReportAllocs()
	for b.Loop() {
		f.Decide(r, rand.Uint32N)
	}
}
