package telemetry

import "github.com/prometheus/client_golang/prometheus"

// corsMetrics are the CORS filter's counters.
type corsMetrics struct {
	preflights *prometheus.CounterVec
}

func (c *corsMetrics) register(reg prometheus.Registerer) error {
	c.preflights = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_cors_preflights_total",
		Help: "CORS preflight requests answered by the proxy for an HTTPRoute CORS filter (never forwarded), by destination service and route (namespace/route/rule).",
	}, []string{"destination_service", "route"})
	return reg.Register(c.preflights)
}

// CORSPreflight counts one preflight request answered by the proxy.
func (m *Metrics) CORSPreflight(destination, route string) {
	if m == nil {
		return
	}
	m.cors.preflights.WithLabelValues(destination, route).Inc()
}

// registerAll runs register functions in order until one fails.
func registerAll(reg prometheus.Registerer, fs ...func(prometheus.Registerer) error) error {
	for _, f := range fs {
		if err := f(reg); err != nil {
			return err
		}
	}
	return nil
}
