package breaker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func reason(err error) string {
	var r *Rejection
	if errors.As(err, &r) {
		return r.Reason
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

// TestAdmit admits `held` requests and holds them, then checks what the
// next request gets.
func TestAdmit(t *testing.T) {
	tests := []struct {
		name   string
		limits Limits
		held   int
		want   string // reason of the next request; "" admitted
	}{
		{"no limit", Limits{}, 100, ""},
		{"under", Limits{MaxConcurrentRequests: 10}, 9, ""},
		{"at limit", Limits{MaxConcurrentRequests: 10}, 10, ReasonMaxConcurrentRequests},
		{"connections only", Limits{MaxConnections: 1}, 5, ""},
		{"one", Limits{MaxConcurrentRequests: 1}, 1, ReasonMaxConcurrentRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDestination("web.default")
			l := tt.limits
			var held []Ticket
			for i := range tt.held {
				tk, err := d.Admit(context.Background(), &l)
				if err != nil {
					t.Fatalf("request %d refused: %v", i, err)
				}
				held = append(held, tk)
			}
			tk, err := d.Admit(context.Background(), &l)
			if got := reason(err); got != tt.want {
				t.Fatalf("next request: reason %q, want %q", got, tt.want)
			}
			tk.Done()
			for _, h := range held {
				h.Done()
			}
			if n := d.InFlight(); n != 0 {
				t.Errorf("in flight after all Done: %d", n)
			}
			if _, err := d.Admit(context.Background(), &l); err != nil {
				t.Errorf("after the others finished: %v", err)
			}
		})
	}
}

// TestPending checks the wait for a slot: a waiter gets the slot a finished
// request frees, the queue beyond maxPendingRequests is refused at once,
// and a waiter whose context ends is refused.
func TestPending(t *testing.T) {
	d := NewDestination("web.default")
	l := &Limits{MaxConcurrentRequests: 2, MaxPendingRequests: 2}
	a, _ := d.Admit(context.Background(), l)
	b, _ := d.Admit(context.Background(), l)

	results := make(chan error, 2)
	var admitted sync.WaitGroup
	for range 2 {
		admitted.Go(func() {
			tk, err := d.Admit(context.Background(), l)
			results <- err
			if err == nil {
				tk.Done()
			}
		})
	}
	waitFor(t, func() bool { return d.pending.Load() == 2 })
	start := time.Now()
	if _, err := d.Admit(context.Background(), l); reason(err) != ReasonMaxPendingRequests {
		t.Fatalf("third waiter: %v, want %s", err, ReasonMaxPendingRequests)
	}
	if el := time.Since(start); el > 50*time.Millisecond {
		t.Errorf("refusal of a full queue took %v", el)
	}
	a.Done()
	b.Done()
	admitted.Wait()
	for range 2 {
		if err := <-results; err != nil {
			t.Errorf("waiter refused: %v", err)
		}
	}

	// A waiter whose context ends is refused, promptly.
	a, _ = d.Admit(context.Background(), l)
	b, _ = d.Admit(context.Background(), l)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := d.Admit(ctx, l); reason(err) != ReasonMaxConcurrentRequests {
		t.Errorf("waiter past its deadline: %v", err)
	}
	a.Done()
	b.Done()
}

// TestLimitsSwap checks that new limits take effect on the counters already
// held: raising the limit frees a waiter, lifting it admits at once.
func TestLimitsSwap(t *testing.T) {
	d := NewDestination("web.default")
	one := &Limits{MaxConcurrentRequests: 1, MaxPendingRequests: 1}
	held, _ := d.Admit(context.Background(), one)
	got := make(chan error, 1)
	go func() {
		tk, err := d.Admit(context.Background(), one)
		got <- err
		tk.Done()
	}()
	waitFor(t, func() bool { return d.pending.Load() == 1 })
	two := &Limits{MaxConcurrentRequests: 2, MaxPendingRequests: 1}
	tk, err := d.Admit(context.Background(), two) // adopts two, wakes the waiter
	if err != nil && reason(err) != ReasonMaxConcurrentRequests {
		t.Fatal(err)
	}
	if err == nil {
		tk.Done()
	}
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("waiter after the limit rose: %v", err)
		}
	case <-time.After(PendingTimeout / 2):
		t.Fatal("waiter not woken by the higher limit")
	}
	if _, err := d.Admit(context.Background(), &Limits{}); err != nil {
		t.Errorf("lifted limit: %v", err)
	}
	held.Done()
}

// TestConnections checks OpenConn against MaxConnections, which is read
// from the limits in use.
func TestConnections(t *testing.T) {
	d := NewDestination("web.default")
	if _, err := d.Admit(context.Background(), &Limits{MaxConnections: 2}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := d.OpenConn(); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	err := d.OpenConn()
	if reason(err) != ReasonMaxConnections {
		t.Fatalf("third connection: %v", err)
	}
	if want := "weft: web.default: circuit breaker: max-connections limit reached (2)"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	d.CloseConn()
	if err := d.OpenConn(); err != nil {
		t.Errorf("after one closed: %v", err)
	}
	if n := d.Connections(); n != 2 {
		t.Errorf("counted %d connections, want 2", n)
	}
}

// TestConcurrentAdmit hammers one destination: never more than the limit
// in flight at once, and the counters return to zero.
func TestConcurrentAdmit(t *testing.T) {
	d := NewDestination("web.default")
	l := &Limits{MaxConcurrentRequests: 5, MaxPendingRequests: 3}
	var mu sync.Mutex
	cur, peak := 0, 0
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 200 {
				tk, err := d.Admit(context.Background(), l)
				if err != nil {
					continue
				}
				mu.Lock()
				cur++
				peak = max(peak, cur)
				mu.Unlock()
				mu.Lock()
				cur--
				mu.Unlock()
				tk.Done()
			}
		})
	}
	wg.Wait()
	if peak > 5 {
		t.Errorf("peak in flight %d over the limit 5", peak)
	}
	if d.InFlight() != 0 || d.pending.Load() != 0 {
		t.Errorf("counters after: in flight %d, pending %d", d.InFlight(), d.pending.Load())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkAdmit measures admission of a request without a limit (a
// connection limit only) and under a concurrency limit.
func BenchmarkAdmit(b *testing.B) {
	for _, bm := range []struct {
		name string
		l    Limits
	}{
		{"unlimited", Limits{MaxConnections: 10}},
		{"limited", Limits{MaxConcurrentRequests: 1 << 20, MaxPendingRequests: 10}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			d := NewDestination("web.default")
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					tk, err := d.Admit(ctx, &bm.l)
					if err != nil {
						b.Fatal(err)
					}
					tk.Done()
				}
			})
		})
	}
}
