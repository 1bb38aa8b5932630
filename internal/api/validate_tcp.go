package api

import (
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// onServices reports whether a route attaches to Services (GAMMA) rather
// than to Gateways: its first parentRef names a Service.
func onServices(refs []gatewayv1.ParentReference) bool {
	return len(refs) > 0 && refs[0].Kind != nil && string(*refs[0].Kind) == KindService
}

// validateTCPRoute checks a TCPRoute attached to Services (one attached to
// Gateways is checked by validateStreamRoute): every parent a Service, exactly one rule (a TCP connection
// carries nothing to match on), and Service backendRefs with weights.
func validateTCPRoute(e *errs, r *gatewayv1.TCPRoute) {
	p := fieldPath("spec")
	validateParentRefs(e, p.child("parentRefs"), r.Spec.ParentRefs)
	for i, ref := range r.Spec.ParentRefs {
		if ref.Kind == nil || *ref.Kind != "Service" {
			e.add(p.child("parentRefs").index(i).child("kind"), "must be Service like the first parentRef: a TCPRoute attaches to Services (GAMMA) or to Gateways, not both")
		}
	}
	rp := p.child("rules")
	switch n := len(r.Spec.Rules); {
	case n == 0:
		e.add(rp, "exactly one rule is required")
	case n > 1:
		e.add(rp, "exactly one rule is allowed (a TCP connection has nothing to match on), got %d", n)
	}
	for i, rule := range r.Spec.Rules {
		bp := rp.index(i).child("backendRefs")
		if len(rule.BackendRefs) == 0 {
			e.add(bp, "at least one backendRef is required")
		}
		if len(rule.BackendRefs) > maxBackendsPerRule {
			e.add(bp, "at most %d backendRefs are allowed, got %d", maxBackendsPerRule, len(rule.BackendRefs))
		}
		for j, b := range rule.BackendRefs {
			validateBackendRef(e, bp.index(j), b)
		}
	}
}
