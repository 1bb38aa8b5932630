package telemetry

import "github.com/prometheus/client_golang/prometheus"

func newJWTDecisions() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_proxy_jwt_decisions_total",
		Help: "Inbound requests checked by a RequestAuthentication, by policy (namespace/name; empty when no rule's issuer matched or no token was sent) and result (ok, no_token, or why the token was refused with 401: malformed, too_large, bad_algorithm, unknown_issuer, unknown_kid, bad_signature, expired, not_yet_valid, bad_audience, jwks_unavailable, invalid).",
	}, []string{"policy", "result"})
}

// JWTDecision counts one request checked by a RequestAuthentication.
func (m *Metrics) JWTDecision(policy, result string) {
	if m == nil {
		return
	}
	m.jwtDecisions.WithLabelValues(policy, result).Inc()
}
