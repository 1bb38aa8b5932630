package telemetry

import "github.com/prometheus/client_golang/prometheus"

func newHTTPRejected() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_proxy_http_rejected_total",
		Help: "HTTP/1.x requests and connections a listener refused before forwarding anything, by listener (outbound or inbound) and reason (e.g. space_before_colon, te_and_cl, header_too_large, header_timeout, connection_limit).",
	}, []string{"listener", "reason"})
}

// HTTPRejected counts one request or connection refused by a listener.
// Reasons come from a fixed set (h1parse's and the listeners'), so the
// label's cardinality is bounded.
func (m *Metrics) HTTPRejected(listener, reason string) {
	if m == nil {
		return
	}
	m.httpRejected.WithLabelValues(listener, reason).Inc()
}
