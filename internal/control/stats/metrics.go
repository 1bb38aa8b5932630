package stats

import "github.com/prometheus/client_golang/prometheus"

// Collectors are the aggregation's own metrics, for the control plane's
// /metrics: what is kept, and what was dropped or failed.
func (c *Collector) Collectors() []prometheus.Collector {
	gauge := func(name, help string, v func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, v)
	}
	counter := func(name, help string, v func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, v)
	}
	return []prometheus.Collector{
		gauge("weft_stats_proxies", "Proxies whose metrics the control plane scrapes.", func() float64 {
			n, _, _ := c.Health()
			return float64(n)
		}),
		gauge("weft_stats_series", "Series of golden metrics kept in memory (at most the store's cap).", func() float64 {
			n, _ := c.opts.Store.Len()
			return float64(n)
		}),
		counter("weft_stats_series_evicted_total", "Series dropped from memory to stay under the store's cap.", func() float64 {
			_, e := c.opts.Store.Len()
			return float64(e)
		}),
		counter("weft_stats_series_dropped_total", "Series a proxy exposed beyond the per-proxy cap, not kept.", func() float64 {
			_, d, _ := c.Health()
			return float64(d)
		}),
		counter("weft_stats_scrape_failures_total", "Scrapes of a proxy's /metrics that failed (unreachable, not 200, unparsable).", func() float64 {
			_, _, f := c.Health()
			return float64(f)
		}),
	}
}
