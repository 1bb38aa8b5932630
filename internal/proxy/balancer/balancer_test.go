package balancer

import (
	"fmt"
	"math"
	"testing"
	"time"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/outlier"
)

func endpoints(n int) []config.Endpoint {
	eps := make([]config.Endpoint, n)
	for i := range eps {
		eps[i].Address = fmt.Sprintf("10.0.%d.%d:15006", i/250, i%250+1)
	}
	return eps
}

var algorithms = []struct {
	name string
	lb   config.LoadBalancer
}{
	{"p2c-ewma", config.P2CEWMA}, {"round-robin", config.RoundRobin}, {"random", config.Random},
	{"least-request", config.LeastRequest}, {"ring-hash", config.RingHash}, {"maglev", config.Maglev},
}

// policy ejects after 3 gateway errors for 1s, at most half the endpoints.
func policy() *config.Balancer {
	return &config.Balancer{Hash: &config.HashKey{Header: "X-User"}, Outlier: outlier.Policy{
		ConsecutiveGatewayErrors: 3, BaseEjection: time.Second, MaxEjection: 10 * time.Second, MaxEjectionPercent: 50, Interval: time.Second,
	}}
}

func TestSpread(t *testing.T) {
	eps := endpoints(4)
	for _, alg := range algorithms {
		t.Run(alg.name, func(t *testing.T) {
			d := NewDestination("orders.default", nil)
			counts := make([]int, len(eps))
			const n = 4000
			for range n {
				i, e := d.Pick(Request{Algorithm: alg.lb}, eps) // hashing without key: random
				counts[i]++
				e.Done()
			}
			for i, c := range counts {
				if alg.lb == config.RoundRobin && c != n/4 {
					t.Errorf("endpoint %d picked %d times, want exactly %d", i, c, n/4)
				}
				if c < n/4-n/10 || c > n/4+n/10 {
					t.Errorf("endpoint %d picked %d times, want about %d", i, c, n/4)
				}
				if e := d.view.Load().states[i]; e.InFlight() != 0 {
					t.Errorf("endpoint %d in flight %d after Done", i, e.InFlight())
				}
			}
		})
	}
}

// TestP2CEWMAAvoidsSlowEndpoint: one of three endpoints 50 ms slower gets
// under 10% of the requests once its latency is observed.
func TestP2CEWMAAvoidsSlowEndpoint(t *testing.T) {
	eps := endpoints(3)
	d := NewDestination("orders.default", nil)
	counts := make([]int, 3)
	const n = 2000
	for range n {
		i, e := d.Pick(Request{Algorithm: config.P2CEWMA}, eps)
		counts[i]++
		lat := time.Millisecond
		if i == 0 {
			lat = 51 * time.Millisecond
		}
		d.Observe(e, nil, 200, nil, false, lat)
		e.Done()
	}
	if counts[0] >= n/10 {
		t.Fatalf("slow endpoint got %d of %d requests (%v), want < 10%%", counts[0], n, counts)
	}
}

func TestP2CEWMAPrefersIdle(t *testing.T) {
	eps := endpoints(2)
	d := NewDestination("orders.default", nil)
	// Hold 10 requests on endpoint 0 (picked by its session token).
	for range 10 {
		if i, _ := d.Pick(Request{Algorithm: config.P2CEWMA, Sticky: Token(eps[0].Address), HasSticky: true}, eps); i != 0 {
			t.Fatalf("sticky pick got %d", i)
		}
	}
	for range 100 {
		i, e := d.Pick(Request{Algorithm: config.P2CEWMA}, eps)
		if i != 1 {
			t.Fatalf("picked busy endpoint %d", i)
		}
		e.Done()
	}
}

func TestEWMA(t *testing.T) {
	const ms = float64(time.Millisecond)
	for _, tc := range []struct {
		name      string
		latency   time.Duration
		failed    bool
		after     time.Duration
		lo, hi    float64 // estimate bounds, in ms
		costAfter time.Duration
	}{
		{"peak replaces", 100 * time.Millisecond, false, time.Millisecond, 100, 100, 0},
		{"lower averages in slowly", time.Millisecond, false, time.Second, 27, 28, 0},
		{"lower averages in fully after long", time.Millisecond, false, time.Minute, 1, 1.1, 0},
		{"failure never lowers", time.Millisecond, true, time.Millisecond, 29.99, 30, 0},
		{"cost decays towards zero", 30 * time.Millisecond, false, time.Millisecond, 11, 11.1, DecayTime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Endpoint{}
			e.rtt.Store(mathBits(float64(DefaultRTT)))
			e.stamp.Store(0)
			now := int64(tc.after)
			e.observe(tc.latency, tc.failed, now)
			got := e.cost(now+int64(tc.costAfter)) / ms
			if got < tc.lo || got > tc.hi {
				t.Errorf("cost %.3f ms, want %.1f..%.1f", got, tc.lo, tc.hi)
			}
		})
	}
}

// TestEjectedSkipped: every algorithm skips an ejected endpoint until its
// ejection time is up.
func TestEjectedSkipped(t *testing.T) {
	eps := endpoints(4)
	spec := policy()
	for _, alg := range algorithms {
		t.Run(alg.name, func(t *testing.T) {
			d := NewDestination("orders.default", nil)
			var bad *Endpoint
			for bad == nil {
				i, e := d.Pick(Request{Algorithm: alg.lb, Spec: spec}, eps)
				if i == 2 {
					bad = e
				}
				e.Done()
			}
			for range 3 {
				d.Observe(bad, spec, 503, nil, false, time.Millisecond)
			}
			if !d.Ejected(eps[2].Address) {
				t.Fatal("not ejected after 3 gateway errors")
			}
			for k := range 1000 {
				req := Request{Algorithm: alg.lb, Spec: spec, Hash: HashString(fmt.Sprint("user-", k)), HasHash: true}
				req.Sticky, req.HasSticky = Token(eps[2].Address), k%2 == 0
				i, e := d.Pick(req, eps)
				e.Done()
				if i == 2 {
					t.Fatalf("request %d went to the ejected endpoint", k)
				}
			}
			// Its time up, it is picked again.
			bad.Outlier = outlier.Endpoint{}
			d.Outlier = outlier.Group{}
			seen := false
			for k := 0; k < 1000 && !seen; k++ {
				i, e := d.Pick(Request{Algorithm: alg.lb, Spec: spec, Hash: HashString(fmt.Sprint("user-", k)), HasHash: true}, eps)
				e.Done()
				seen = i == 2
			}
			if !seen {
				t.Error("endpoint not picked again after its ejection")
			}
		})
	}
}

// TestMaxEjectedShare: with every endpoint failing, at most half are
// ejected.
func TestMaxEjectedShare(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			eps := endpoints(n)
			spec := policy()
			d := NewDestination("orders.default", nil)
			for range 200 {
				_, e := d.Pick(Request{Algorithm: config.P2CEWMA, Spec: spec}, eps)
				d.Observe(e, spec, 502, nil, false, time.Millisecond)
				e.Done()
			}
			if got, want := d.Outlier.Ejected(), n/2; got != want {
				t.Errorf("%d of %d endpoints ejected, want %d", got, n, want)
			}
		})
	}
}

// TestConsistentHash: a key always reaches one endpoint, and when one of N
// endpoints leaves, only about 1/N of the keys move (those it had).
func TestConsistentHash(t *testing.T) {
	for _, alg := range algorithms[4:] {
		for _, n := range []int{3, 4, 10} {
			t.Run(fmt.Sprint(alg.name, "/", n), func(t *testing.T) {
				eps := endpoints(n)
				d := NewDestination("orders.default", nil)
				const keys = 2000
				before := make([]string, keys)
				for k := range keys {
					h := HashString(fmt.Sprint("user-", k))
					i, e := d.Pick(Request{Algorithm: alg.lb, Hash: h, HasHash: true}, eps)
					e.Done()
					before[k] = eps[i].Address
					for range 3 {
						if j, e := d.Pick(Request{Algorithm: alg.lb, Hash: h, HasHash: true}, eps); j != i {
							t.Fatalf("key %d went to %d then %d", k, i, j)
						} else {
							e.Done()
						}
					}
				}
				// Endpoint 1 leaves (a new slice, as a config push makes).
				fewer := append(append([]config.Endpoint{}, eps[:1]...), eps[2:]...)
				moved, stray := 0, 0
				for k := range keys {
					i, e := d.Pick(Request{Algorithm: alg.lb, Hash: HashString(fmt.Sprint("user-", k)), HasHash: true}, fewer)
					e.Done()
					if fewer[i].Address != before[k] {
						moved++
						if before[k] != eps[1].Address {
							stray++
						}
					}
				}
				// The ring moves only the departed endpoint's keys; Maglev
				// a few more (its table is near-minimally disrupted).
				if stray > 0 && alg.lb == config.RingHash || stray > keys/50 {
					t.Errorf("%d keys moved between endpoints that stayed", stray)
				}
				if limit := keys/n + keys/20; moved > limit {
					t.Errorf("%d of %d keys moved when 1 of %d endpoints left, want at most %d", moved, keys, n, limit)
				}
			})
		}
	}
}

// TestStateSurvivesPush: the latency estimate of an endpoint lives on in
// a new endpoint slice (a config push) and is dropped by Prune when the
// endpoint leaves.
func TestStateSurvivesPush(t *testing.T) {
	eps := endpoints(3)
	d := NewDestination("orders.default", nil)
	_, e := d.Pick(Request{Algorithm: config.RoundRobin}, eps)
	e.Done()
	again := append([]config.Endpoint{}, eps...)
	d.Pick(Request{Algorithm: config.RoundRobin}, again)
	for i := range again {
		if d.view.Load().states[i] != d.state(eps[i].Address, 0) {
			t.Fatalf("endpoint %d got new state after the push", i)
		}
	}
	d.Prune(eps[:1])
	if _, ok := (*d.states.Load())[eps[2].Address]; ok {
		t.Fatal("Prune kept a departed endpoint")
	}
}

func BenchmarkPick(b *testing.B) {
	for _, n := range []int{3, 100} {
		eps := endpoints(n)
		for _, alg := range algorithms {
			b.Run(fmt.Sprint(alg.name, "/", n), func(b *testing.B) {
				d := NewDestination("orders.default", nil)
				req := Request{Algorithm: alg.lb, Hash: HashString("user-1"), HasHash: true}
				d.Pick(req, eps)
				b.ReportAllocs()
				for b.Loop() {
					_, e := d.Pick(req, eps)
					e.Done()
				}
			})
		}
	}
}

func mathBits(f float64) uint64 { return math.Float64bits(f) }

// TestConcurrent picks, observes and prunes from many goroutines (run
// with -race): in-flight counts return to zero and at most the share is
// ejected.
func TestConcurrent(t *testing.T) {
	eps := endpoints(6)
	spec := policy()
	d := NewDestination("orders.default", nil)
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for k := range 2000 {
				alg := algorithms[(g+k)%len(algorithms)].lb
				i, e := d.Pick(Request{Algorithm: alg, Spec: spec, Hash: uint64(k), HasHash: true}, eps)
				status := 200
				if i%3 == 0 {
					status = 503
				}
				d.Observe(e, spec, status, nil, false, time.Duration(i+1)*time.Millisecond)
				e.Done()
				if k%500 == 0 {
					d.Prune(eps)
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
	if got := d.Outlier.Ejected(); got > len(eps)/2 {
		t.Errorf("%d of %d ejected", got, len(eps))
	}
	for i, e := range d.view.Load().states {
		if e.InFlight() != 0 {
			t.Errorf("endpoint %d: %d in flight", i, e.InFlight())
		}
	}
}
