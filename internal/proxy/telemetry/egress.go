package telemetry

import "github.com/prometheus/client_golang/prometheus"

func newEgressRefused() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_proxy_egress_refused_total",
		Help: "Requests and CONNECT tunnels to non-mesh hosts the outbound listener refused under outboundTrafficPolicy REGISTRY_ONLY, by host class: \"ip\" or \"name\" for an undeclared host (never the raw host: bounded cardinality), or \"<externalservice>.<namespace>\" for a declared host on an undeclared port; and by kind (http or connect).",
	}, []string{"host_class", "kind"})
}

// EgressRefused counts one refused egress request or tunnel.
func (m *Metrics) EgressRefused(hostClass, kind string) {
	if m == nil {
		return
	}
	m.egressRefused.WithLabelValues(hostClass, kind).Inc()
}
