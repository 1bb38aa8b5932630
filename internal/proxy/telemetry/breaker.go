package telemetry

import "github.com/prometheus/client_golang/prometheus"

// breakerMetrics count what the breaker and adaptive stages refuse.
type breakerMetrics struct {
	rejections *prometheus.CounterVec
	shed       *prometheus.CounterVec
}

// registerBreaker creates the breaker stage's counters and registers them.
func (m *Metrics) registerBreaker(reg prometheus.Registerer) error {
	m.breaker.rejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_proxy_breaker_rejections_total",
		Help: "Requests the outbound listener refused with 503 because a DestinationPolicy connectionPool limit was reached, by destination service and limit (max-concurrent-requests, max-pending-requests, max-connections).",
	}, []string{"destination_service", "limit"})
	m.breaker.shed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_proxy_shed_requests_total",
		Help: "Requests the outbound listener shed with 503 because the destination's adaptive concurrency limit was reached, by destination service.",
	}, []string{"destination_service"})
	for _, c := range []prometheus.Collector{m.breaker.rejections, m.breaker.shed} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// BreakerRejection counts one request refused by a connection limit.
// Destinations are configured services and limits a fixed set, so the
// cardinality is bounded.
func (m *Metrics) BreakerRejection(destination, limit string) {
	if m == nil {
		return
	}
	m.breaker.rejections.WithLabelValues(destination, limit).Inc()
}

// ShedRequest counts one request shed by adaptive concurrency.
func (m *Metrics) ShedRequest(destination string) {
	if m == nil {
		return
	}
	m.breaker.shed.WithLabelValues(destination).Inc()
}
