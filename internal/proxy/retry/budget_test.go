package retry

import (
	"sync"
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name      string
		p         BudgetParams
		requests  int
		tries     int
		wantAllow int
	}{
		{"floor only", BudgetParams{Percent: 0, MinPerSecond: 10, Window: 10 * time.Second}, 0, 500, 100},
		{"default", DefaultBudget, 1000, 1000, 200 + 100},
		{"percent only", BudgetParams{Percent: 50, Window: time.Second}, 100, 100, 50},
		{"nothing", BudgetParams{Window: time.Second}, 100, 10, 0},
		{"concurrency cap", BudgetParams{Percent: 100, Window: time.Second, MaxConcurrent: 3}, 100, 10, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Budget
			for range tt.requests {
				b.Request(t0, &tt.p)
			}
			allowed := 0
			for range tt.tries {
				if b.TryRetry(t0, &tt.p) {
					allowed++
				}
			}
			if allowed != tt.wantAllow {
				t.Errorf("allowed %d retries, want %d", allowed, tt.wantAllow)
			}
			if b.InFlight() != int64(allowed) {
				t.Errorf("in flight %d, want %d", b.InFlight(), allowed)
			}
		})
	}
}

// TestBudgetWindowSlides: retries spent in one window are available again
// once it has passed.
func TestBudgetWindowSlides(t *testing.T) {
	p := BudgetParams{MinPerSecond: 10, Window: 10 * time.Second}
	var b Budget
	t0 := time.Unix(1000, 0)
	take := func(at time.Time) int {
		n := 0
		for b.TryRetry(at, &p) {
			b.Release()
			n++
		}
		return n
	}
	if n := take(t0); n != 100 {
		t.Fatalf("first window allowed %d, want 100", n)
	}
	if n := take(t0.Add(5 * time.Second)); n != 0 {
		t.Fatalf("half a window later allowed %d, want 0", n)
	}
	if n := take(t0.Add(10 * time.Second)); n != 100 {
		t.Fatalf("a window later allowed %d, want 100", n)
	}
}

// TestBudgetWindowChange: a push that changes the window keeps the budget
// working at the new scale.
func TestBudgetWindowChange(t *testing.T) {
	short := BudgetParams{MinPerSecond: 10, Window: time.Second}
	long := BudgetParams{MinPerSecond: 10, Window: 10 * time.Second}
	var b Budget
	now := time.Unix(1000, 0)
	for range 50 {
		b.Request(now, &short)
	}
	for _, p := range []*BudgetParams{&long, &short, &long} {
		now = now.Add(time.Minute)
		n := 0
		for b.TryRetry(now, p) {
			b.Release()
			n++
		}
		if want := int(p.MinPerSecond) * int(p.Window/time.Second); n != want {
			t.Errorf("window %v: allowed %d retries, want %d", p.Window, n, want)
		}
	}
}

func TestBudgetConcurrent(t *testing.T) {
	p := BudgetParams{Percent: 20, Window: 10 * time.Second}
	var b Budget
	now := time.Unix(1000, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				b.Request(now, &p)
				if b.TryRetry(now, &p) {
					b.Release()
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if allowed > 8000*20/100 {
		t.Errorf("allowed %d retries of 8000 requests, want at most 20%%", allowed)
	}
	if allowed < 8000*20/100-8 {
		t.Errorf("allowed only %d retries of 8000 requests", allowed)
	}
}

func TestBudgets(t *testing.T) {
	var bs Budgets
	if bs.For("a.default") != bs.For("a.default") || bs.For("a.default") == bs.For("b.default") {
		t.Error("For does not keep one budget per destination")
	}
}

func BenchmarkBudget(b *testing.B) {
	var bg Budget
	p := DefaultBudget
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		bg.Request(now, &p)
		if bg.TryRetry(now, &p) {
			bg.Release()
		}
	}
}

func BenchmarkBudgetRequest(b *testing.B) {
	var bg Budget
	p := DefaultBudget
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		bg.Request(now, &p)
	}
}
