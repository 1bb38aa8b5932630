package telemetry

import "github.com/prometheus/client_golang/prometheus"

func newAuthzDecisions() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_proxy_authz_decisions_total",
		Help: "Authorization decisions of the inbound listener, by deciding policy (<namespace>/<name>, or \"\" for a default decision), action (ALLOW, DENY, AUDIT) and decision (allow, deny, audit).",
	}, []string{"policy", "action", "decision"})
}

// AuthzDecision counts one authorization decision. Policy names come from
// the configuration (a bounded set), action and decision from fixed sets.
func (m *Metrics) AuthzDecision(policy, action, decision string) {
	if m == nil {
		return
	}
	m.authzDecisions.WithLabelValues(policy, action, decision).Inc()
}
