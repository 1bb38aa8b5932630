package telemetry

import "github.com/prometheus/client_golang/prometheus"

func newH2Abuse() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_proxy_h2_abuse_total",
		Help: "HTTP/2 connections closed with GOAWAY(ENHANCE_YOUR_CALM) for flooding, by listener (outbound, outbound-tunnel, inbound) and reason (rapid_reset, ping_flood, settings_flood, empty_data_flood, continuation_flood).",
	}, []string{"listener", "reason"})
}

// H2Abuse counts an HTTP/2 connection closed for abuse.
func (m *Metrics) H2Abuse(listener, reason string) {
	if m == nil {
		return
	}
	m.h2Abuse.WithLabelValues(listener, reason).Inc()
}
