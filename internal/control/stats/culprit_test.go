package stats

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// traffic builds a window from (side, source, destination) → (requests,
// failures).
type traffic struct {
	side     Side
	src, dst string
	req, bad float64
}

func window(ts ...traffic) Window {
	w := Window{Series: map[Key]Counts{}, Seconds: 60}
	for _, t := range ts {
		c := Counts{Requests: t.req, Failures: t.bad}
		c.Buckets[3] = t.req
		w.Series[Key{Side: t.side, Source: t.src, Destination: t.dst}] = c
	}
	return w
}

func TestAnalyze(t *testing.T) {
	tests := []struct {
		name     string
		w        Window
		servedBy map[string]string
		want     []Verdict
	}{{
		name: "chain: backend fails, frontend passes it on",
		w: window(
			traffic{Outbound, "loadgen", "frontend", 100, 48},
			traffic{Inbound, "", "frontend", 100, 48},
			traffic{Outbound, "frontend", "backend", 100, 48},
			traffic{Inbound, "", "backend", 100, 48},
		),
		want: []Verdict{{Culprit: "backend", FailureRate: 0.48, Callers: []string{"frontend", "loadgen"},
			Text: "backend is failing 48% of requests; frontend's and loadgen's errors come from backend"}},
	}, {
		name: "fan-out: one of two backends fails",
		w: window(
			traffic{Inbound, "", "frontend", 200, 30},
			traffic{Outbound, "frontend", "a", 200, 0},
			traffic{Inbound, "", "a", 200, 0},
			traffic{Outbound, "frontend", "b", 200, 30},
			traffic{Inbound, "", "b", 200, 30},
		),
		want: []Verdict{{Culprit: "b", FailureRate: 0.15, Callers: []string{"frontend"},
			Text: "b is failing 15% of requests; frontend's errors come from b"}},
	}, {
		name: "two broken services in a chain",
		w: window(
			traffic{Inbound, "", "frontend", 100, 60},
			traffic{Outbound, "frontend", "middle", 100, 20},
			traffic{Inbound, "", "middle", 100, 20},
			traffic{Outbound, "middle", "backend", 100, 10},
			traffic{Inbound, "", "backend", 100, 10},
		),
		want: []Verdict{
			{Culprit: "frontend", FailureRate: 0.4, Callers: []string{}, Text: "frontend is failing 40% of requests"},
			{Culprit: "backend", FailureRate: 0.1, Callers: []string{"frontend", "middle"},
				Text: "backend is failing 10% of requests; frontend's and middle's errors come from backend"},
			{Culprit: "middle", FailureRate: 0.1, Callers: []string{"frontend"},
				Text: "middle is failing 10% of requests; frontend's errors come from middle"},
		},
	}, {
		name: "a service with no proxy of its own is judged by its callers",
		w: window(
			traffic{Inbound, "", "frontend", 100, 100},
			traffic{Outbound, "frontend", "backend", 100, 100},
		),
		want: []Verdict{{Culprit: "backend", FailureRate: 1, Callers: []string{"frontend"},
			Text: "backend is failing 100% of requests; frontend's errors come from backend"}},
	}, {
		name: "subsets served by one service's workloads (the demo's backend-v1 and -v2)",
		w: window(
			traffic{Inbound, "", "frontend", 100, 50},
			traffic{Outbound, "frontend", "backend-v1", 80, 40},
			traffic{Outbound, "frontend", "backend-v2", 20, 10},
			traffic{Inbound, "", "backend", 100, 50},
		),
		servedBy: map[string]string{"backend-v1": "backend", "backend-v2": "backend"},
		want: []Verdict{{Culprit: "backend", FailureRate: 0.5, Callers: []string{"frontend"},
			Text: "backend is failing 50% of requests; frontend's errors come from backend"}},
	}, {
		name: "failures below the noise floor name no one",
		w: window(
			traffic{Inbound, "", "backend", 1000, 5},
		),
		want: []Verdict{},
	}, {
		name: "no traffic",
		w:    window(),
		want: []Verdict{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := Build(tt.w, time.Minute, "embedded", tt.servedBy)
			if diff := cmp.Diff(tt.want, g.Verdicts); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
			for _, n := range g.Nodes {
				want := false
				for _, v := range tt.want {
					want = want || v.Culprit == n.Service
				}
				if n.Culprit != want {
					t.Errorf("node %s: culprit = %v, want %v", n.Service, n.Culprit, want)
				}
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		name    string
		buckets map[int]float64
		q, want float64
	}{
		{"empty", nil, 0.5, 0},
		{"all in the first bucket", map[int]float64{0: 10}, 0.5, 0.0025},
		{"interpolated in 50..75ms", map[int]float64{4: 100}, 0.99, 0.05 + 0.025*0.99},
		{"p50 below a slow tail", map[int]float64{0: 90, 9: 10}, 0.5, 0.005 * 50 / 90},
		{"+Inf reports the largest finite bound", map[int]float64{NumBuckets - 1: 3}, 0.99, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Counts
			for i, n := range tt.buckets {
				c.Buckets[i] = n
			}
			if got := c.Quantile(tt.q); !close(got, tt.want) {
				t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func close(a, b float64) bool { d := a - b; return d < 1e-9 && d > -1e-9 }
