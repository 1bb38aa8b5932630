//go:build linux

package main

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	vals := make([]int64, 0, 100000)
	for range 100000 {
		v := int64(rand.ExpFloat64() * 200e3) // ~200µs mean
		vals = append(vals, v)
		h.Record(time.Duration(v))
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := float64(vals[int(q*float64(len(vals)))-1])
		got := float64(h.Quantile(q))
		if rel := (got - want) / want; rel > 0.01 || rel < -0.01 {
			t.Errorf("q%.3f: got %v want %v (rel err %.4f)", q, time.Duration(got), time.Duration(want), rel)
		}
	}
	if h.Quantile(1) != time.Duration(vals[len(vals)-1]) {
		t.Errorf("max: got %v want %v", h.Quantile(1), vals[len(vals)-1])
	}
	var m Histogram
	m.Merge(&h)
	m.Merge(&h)
	if m.Count() != 2*h.Count() || m.Quantile(0.5) != h.Quantile(0.5) {
		t.Errorf("merge: count %d median %v vs %v", m.Count(), m.Quantile(0.5), h.Quantile(0.5))
	}
}

func TestBucketContinuity(t *testing.T) {
	prev := -1
	for v := uint64(0); v < 1<<20; v++ {
		b := bucketOf(v)
		if b != prev && b != prev+1 {
			t.Fatalf("bucket jump at %d: %d -> %d", v, prev, b)
		}
		prev = b
	}
	if bucketOf(1<<63) >= nBuckets {
		t.Fatalf("bucket of 2^63 out of range")
	}
}
