// Package stats aggregates the golden metrics of the mesh — requests,
// failures and latency per edge (source service → destination service,
// route) — for `weft stat`, `weft top`, the dashboard's data API and the
// culprit analysis. By default the control plane scrapes every registered
// proxy's /metrics (Collector) into fixed-size in-memory ring buffers
// (Store); with --prometheus it asks an external Prometheus instead
// (Prometheus). Both answer the same question — what happened in the last
// window — as a Window, from which Graph builds the service graph.
package stats

import "math"

// Bounds are the upper bounds (seconds) of the latency buckets kept, the
// proxies' request duration buckets plus +Inf. A scraped histogram with
// other bounds is folded onto these (each bound takes the count of the
// largest scraped bound not above it), which never overstates a quantile
// by more than one bucket.
var Bounds = [...]float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, math.Inf(1)}

// NumBuckets is the number of latency buckets kept per series.
const NumBuckets = len(Bounds)

// Side says which proxy recorded a series: the caller's outbound listener
// or the callee's inbound listener.
type Side string

// The sides of a series.
const (
	Outbound Side = "outbound"
	Inbound  Side = "inbound"
)

// Key identifies one aggregated series. Service names are the proxies'
// label values, "<name>.<namespace>".
type Key struct {
	Side        Side
	Source      string // "" when the recording proxy does not know it
	Destination string
	Route       string // "" when none matched or the side has no route label
}

// Counts are requests, failed requests and per-bucket (not cumulative)
// latency counts: cumulative totals as scraped, or the increase over an
// interval or window.
type Counts struct {
	Requests float64
	Failures float64
	Buckets  [NumBuckets]float64
	// TCP counts opaque TCP connections (weft_tcp_connections_total),
	// which carry no requests.
	TCP float64
}

// add adds o to c.
func (c *Counts) add(o Counts) {
	c.Requests += o.Requests
	c.Failures += o.Failures
	c.TCP += o.TCP
	for i := range c.Buckets {
		c.Buckets[i] += o.Buckets[i]
	}
}

// sub returns the increase from prev to c, and false if any value went
// down: the counters were reset (the proxy restarted) and c alone is the
// increase since.
func (c Counts) sub(prev Counts) (Counts, bool) {
	d := Counts{Requests: c.Requests - prev.Requests, Failures: c.Failures - prev.Failures, TCP: c.TCP - prev.TCP}
	ok := d.Requests >= 0 && d.Failures >= 0 && d.TCP >= 0
	for i := range c.Buckets {
		d.Buckets[i] = c.Buckets[i] - prev.Buckets[i]
		ok = ok && d.Buckets[i] >= 0
	}
	if !ok {
		return c, false
	}
	return d, true
}

// Quantile estimates the q-quantile (0..1) of the latency in seconds as
// Prometheus's histogram_quantile does: linear interpolation inside the
// bucket that holds it; in the +Inf bucket, the largest finite bound. It
// returns 0 with no requests.
func (c Counts) Quantile(q float64) float64 {
	var total float64
	for _, n := range c.Buckets {
		total += n
	}
	if total <= 0 {
		return 0
	}
	rank := q * total
	var below float64
	for i, n := range c.Buckets {
		if below+n >= rank && n > 0 {
			if math.IsInf(Bounds[i], 1) {
				return Bounds[i-1]
			}
			lo := 0.0
			if i > 0 {
				lo = Bounds[i-1]
			}
			return lo + (Bounds[i]-lo)*(rank-below)/n
		}
		below += n
	}
	return Bounds[NumBuckets-2]
}

// Window is what happened in a time window: the increase of every series,
// and how many seconds of data the window actually covers (less than asked
// right after the control plane starts).
type Window struct {
	Series  map[Key]Counts
	Seconds float64
}
