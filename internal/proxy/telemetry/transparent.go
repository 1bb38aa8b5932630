package telemetry

import "github.com/prometheus/client_golang/prometheus"

// transparentMetrics count the connections the transparent listener
// captured (internal/proxy/transparent).
type transparentMetrics struct {
	conns *prometheus.CounterVec
}

func (t *transparentMetrics) register(reg prometheus.Registerer) error {
	t.conns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_proxy_transparent_connections_total",
		Help: "App connections captured by the transparent outbound listener, by detected protocol (http1, h2, tls, opaque: nothing recognised, or nothing sent within the detection wait) and how they were served (mesh-http: by the outbound HTTP proxy; passthrough: streamed to the original destination).",
	}, []string{"protocol", "served"})
	return reg.Register(t.conns)
}

// TransparentConnection counts one captured connection; protocol and served
// come from a fixed set.
func (m *Metrics) TransparentConnection(protocol, served string) {
	if m == nil {
		return
	}
	m.transparent.conns.WithLabelValues(protocol, served).Inc()
}
