package telemetry

import "github.com/prometheus/client_golang/prometheus"

// extAuthMetrics are the ExternalAuth filter's counters.
type extAuthMetrics struct {
	checks *prometheus.CounterVec
}

func (e *extAuthMetrics) register(reg prometheus.Registerer) error {
	e.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_external_auth_checks_total",
		Help: "Requests checked with an external authorization service (HTTPRoute ExternalAuth filter), by destination service, route (namespace/route/rule) and outcome: allowed, denied, unavailable (the auth service could not answer; the request is refused) or body_too_large.",
	}, []string{"destination_service", "route", "outcome"})
	return reg.Register(e.checks)
}

// ExternalAuthCheck counts one external authorization check of a request
// to destination on route with its outcome.
func (m *Metrics) ExternalAuthCheck(destination, route, outcome string) {
	if m == nil {
		return
	}
	m.extAuth.checks.WithLabelValues(destination, route, outcome).Inc()
}
