package adaptive

import (
	"testing"
	"time"
)

// clock is a fake clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

var testConfig = &Config{UpdateInterval: 100 * time.Millisecond, MinRTTInterval: 30 * time.Second, MinLimit: 3, MaxLimit: 200, InitialLimit: 20, LatencyBuffer: 0.25}

// drive runs one update interval: offered requests try to start at once,
// those admitted complete after latency, then the clock moves to the end
// of the interval (or of the latency, if longer). The next Acquire runs the
// update. It returns how many were admitted.
func drive(c *clock, l *Limiter, offered int, latency time.Duration) int {
	var toks []Token
	for range offered {
		if t, ok := l.Acquire(testConfig); ok {
			toks = append(toks, t)
		}
	}
	c.advance(latency)
	for _, t := range toks {
		l.Release(t)
	}
	c.advance(max(0, testConfig.UpdateInterval-latency))
	return len(toks)
}

// TestGradient drives a destination whose latency grows with the load it
// gets (a queue in front of 10 workers of 10 ms), checks that the limit
// settles near what the workers absorb, falls when the destination slows
// down, and recovers when it is fast again.
func TestGradient(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := New(testConfig, c.now)
	if got := l.Limit(); got != testConfig.MinLimit {
		t.Fatalf("initial limit %d, want MinLimit %d while measuring", got, testConfig.MinLimit)
	}
	service := 10 * time.Millisecond
	queued := func(inflight int) time.Duration { // 10 workers
		return service * time.Duration(max(1, (inflight+9)/10))
	}
	// Measure the baseline: the pinned limit admits 3, latency 10 ms.
	for i := 0; i < 5 && l.Baseline() == 0; i++ {
		drive(c, l, 100, queued(3))
	}
	if b := l.Baseline(); b != service {
		t.Fatalf("baseline %v, want %v", b, service)
	}
	if got := l.Limit(); got != testConfig.InitialLimit {
		t.Fatalf("limit after measuring %d, want InitialLimit %d", got, testConfig.InitialLimit)
	}

	// phase drives n intervals of 100 offered requests at once and returns
	// the mean limit over its last half, and the admitted share.
	phase := func(n int, slowdown time.Duration) (float64, float64) {
		var limits, admitted int
		for i := range n {
			lim := int(l.Limit())
			a := drive(c, l, 100, slowdown*queued(lim))
			if i >= n/2 {
				limits += lim
				admitted += a
			}
		}
		return float64(limits) / float64(n-n/2), float64(admitted) / float64(100*(n-n/2))
	}
	// Heavy offered load: latency grows with what is admitted, so the
	// limit must stay near the 10 the workers serve without queueing, far
	// from MaxLimit, and shed the rest.
	steady, share := phase(60, 1)
	if steady < 6 || steady > 30 {
		t.Errorf("steady mean limit %.1f, want near the 10 workers", steady)
	}
	if share > 0.5 {
		t.Errorf("admitted %.0f%% of the offered load: too little shed", 100*share)
	}
	// The destination slows down 5x at any load: the limit falls.
	slow, _ := phase(20, 5)
	if slow > steady/2 {
		t.Errorf("mean limit %.1f after the slowdown, want under half of %.1f", slow, steady)
	}
	// Fast again: the limit recovers.
	rec, _ := phase(60, 1)
	if rec < 0.75*steady {
		t.Errorf("mean limit %.1f after recovery, want back near %.1f", rec, steady)
	}
	t.Logf("mean limit: steady %.1f, slowed down %.1f, recovered %.1f; admitted share at steady %.2f", steady, slow, rec, share)
	if n := l.InFlight(); n != 0 {
		t.Errorf("in flight %d after every release", n)
	}
}

// TestGrowsWhileFast checks that without any queueing (latency constant)
// the limit grows to MaxLimit while the offered load uses it, and does not
// grow while the load uses less than half of it.
func TestGrowsWhileFast(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := New(testConfig, c.now)
	for l.Baseline() == 0 {
		drive(c, l, 50, 10*time.Millisecond)
	}
	drive(c, l, 5, 10*time.Millisecond)
	before := l.Limit()
	for range 5 {
		drive(c, l, 5, 10*time.Millisecond) // 5 of 20 or more: app-limited
	}
	if got := l.Limit(); got != before {
		t.Errorf("limit %d with a light load, want it kept at %d", got, before)
	}
	for range 100 {
		drive(c, l, 1000, 10*time.Millisecond)
	}
	if got := l.Limit(); got != testConfig.MaxLimit {
		t.Errorf("limit %d, want MaxLimit %d", got, testConfig.MaxLimit)
	}
}

// TestRemeasure checks that the baseline is measured again every
// MinRTTInterval, with the limit pinned at MinLimit meanwhile and restored
// after, so that a destination that became slower for good gets its
// limit back.
func TestRemeasure(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := New(testConfig, c.now)
	for l.Baseline() == 0 {
		drive(c, l, 50, 10*time.Millisecond)
	}
	// Latency doubles for good (not load-related): the limit falls...
	for range 20 {
		drive(c, l, 50, 30*time.Millisecond)
	}
	low := l.Limit()
	if low > 8 {
		t.Fatalf("limit %d after latency tripled, want it low", low)
	}
	// ...until the next baseline measurement learns the new latency.
	c.advance(testConfig.MinRTTInterval)
	drive(c, l, 50, 30*time.Millisecond) // starts the measurement
	if got := l.Limit(); got != testConfig.MinLimit {
		t.Fatalf("limit %d while measuring, want %d", got, testConfig.MinLimit)
	}
	for i := 0; i < 10 && l.Limit() == testConfig.MinLimit; i++ {
		drive(c, l, 50, 30*time.Millisecond)
	}
	if b := l.Baseline(); b != 30*time.Millisecond {
		t.Fatalf("new baseline %v, want 30ms", b)
	}
	for range 20 {
		drive(c, l, 50, 30*time.Millisecond)
	}
	if got := l.Limit(); got <= low {
		t.Errorf("limit %d after the new baseline, want above %d", got, low)
	}
}

// TestAdopt checks that new tuning applies to the learnt limit.
func TestAdopt(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := New(testConfig, c.now)
	for l.Baseline() == 0 {
		drive(c, l, 50, 10*time.Millisecond)
	}
	small := *testConfig
	small.MaxLimit, small.InitialLimit = 5, 5
	if _, ok := l.Acquire(&small); !ok {
		t.Fatal("refused under the new config")
	}
	if got := l.Limit(); got != 5 {
		t.Errorf("limit %d after MaxLimit fell to 5", got)
	}
}

// BenchmarkAcquireRelease measures one admitted request.
func BenchmarkAcquireRelease(b *testing.B) {
	l := New(testConfig, nil)
	b.ReportAllocs()
	for b.Loop() {
		t, ok := l.Acquire(testConfig)
		if ok {
			l.Release(t)
		}
	}
}
