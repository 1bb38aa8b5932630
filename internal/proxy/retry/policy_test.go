package retry

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	route := Policy{Attempts: 2, On: OnConnectFailure | OnReset | OnPerTryTimeout}
	route.AddCode(503)
	grpc := Policy{Attempts: 1, On: OnGatewayError}
	grpc.AddGRPC(14) // unavailable
	resp := func(status int) Outcome { return Outcome{Status: status, GRPC: -1} }
	fail := func(f Failure) Outcome { return Outcome{Failure: f, GRPC: -1} }
	tests := []struct {
		name       string
		p          Policy
		o          Outcome
		retried    int
		idempotent bool
		want       Reason
	}{
		{"default GET 503", Default, resp(503), 0, true, ReasonStatus},
		{"default GET 500", Default, resp(500), 1, true, ReasonStatus},
		{"default GET 404", Default, resp(404), 0, true, NoRetry},
		{"default GET 200", Default, resp(200), 0, true, NoRetry},
		{"default attempts used", Default, resp(503), 2, true, NoRetry},
		{"default POST 503", Default, resp(503), 0, false, NoRetry},
		{"default POST connect failure", Default, fail(ConnectFailure), 0, false, ReasonConnectFailure},
		{"default POST reset", Default, fail(Reset), 0, false, ReasonReset},
		{"default GET per-try timeout", Default, fail(PerTryTimeout), 0, true, ReasonPerTryTimeout},
		{"default POST per-try timeout", Default, fail(PerTryTimeout), 0, false, NoRetry},
		{"other failure", Default, fail(OtherFailure), 0, true, NoRetry},
		{"off GET 503", DefaultOff, resp(503), 0, true, NoRetry},
		{"off connect failure", DefaultOff, fail(ConnectFailure), 0, false, ReasonConnectFailure},
		{"route 503 listed", route, resp(503), 0, false, ReasonStatus},
		{"route 500 not listed", route, resp(500), 0, false, NoRetry},
		{"route per-try timeout", route, fail(PerTryTimeout), 1, false, ReasonPerTryTimeout},
		{"grpc unavailable", grpc, Outcome{Status: 200, GRPC: 14}, 0, false, ReasonGRPC},
		{"grpc internal not listed", grpc, Outcome{Status: 200, GRPC: 13}, 0, false, NoRetry},
		{"grpc ok", grpc, Outcome{Status: 200, GRPC: 0}, 0, false, NoRetry},
		{"gateway-error 502", grpc, resp(502), 0, false, ReasonStatus},
		{"gateway-error 500", grpc, resp(500), 0, false, NoRetry},
		{"retriable-4xx", Policy{Attempts: 1, On: OnRetriable4xx}, resp(409), 0, false, ReasonStatus},
		{"zero policy", Policy{}, fail(ConnectFailure), 0, true, NoRetry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Decide(tt.o, tt.retried, tt.idempotent); got != tt.want {
				t.Errorf("Decide = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAddCodeBounds(t *testing.T) {
	var p Policy
	for _, c := range []int{399, 400, 599, 600, -1} {
		p.AddCode(c)
	}
	p.Attempts = 1
	for code, want := range map[int]bool{400: true, 599: true, 401: false, 598: false} {
		if got := p.Decide(Outcome{Status: code, GRPC: -1}, 0, true) != NoRetry; got != want {
			t.Errorf("code %d retried %v, want %v", code, got, want)
		}
	}
}

func TestWait(t *testing.T) {
	p := Policy{Backoff: 10 * time.Millisecond}
	for n, base := range map[int]time.Duration{1: 10, 2: 20, 3: 40, 4: 80, 5: 100, 9: 100} {
		base *= time.Millisecond
		for range 50 {
			if d := p.Wait(n); d < base || d > base*3/2 {
				t.Fatalf("Wait(%d) = %v, want in [%v, %v]", n, d, base, base*3/2)
			}
		}
	}
	if d := (&Policy{}).Wait(1); d != 0 {
		t.Errorf("no backoff waits %v", d)
	}
}

func TestParseGRPCStatus(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "9": 9, "14": 14, "16": 16, "17": -1, "": -1, "x": -1, "1a": -1, "140": -1, "-1": -1} {
		if got := ParseGRPCStatus(in); got != want {
			t.Errorf("ParseGRPCStatus(%q) = %d, want %d", in, got, want)
		}
	}
}

func BenchmarkDecide(b *testing.B) {
	p := Default
	o := Outcome{Status: 503, GRPC: -1}
	b.ReportAllocs()
	for b.Loop() {
		if p.Decide(o, 0, true) == NoRetry {
			b.Fatal("not retried")
		}
	}
}
