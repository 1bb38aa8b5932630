package apiserver

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// setTCPRouteStatus computes a TCPRoute's status as for the HTTP routes
// (Accepted: the parent Service exists; ResolvedRefs: every backendRef is
// a mesh service), and Accepted=False with reason NoMatchingParent for a
// parent whose port or sectionName is not a port of the Service.
func setTCPRouteStatus(o *gatewayv1.TCPRoute, services map[string]*mesh.Service) {
	rules := make([]ruleBackends, len(o.Spec.Rules))
	for i, rule := range o.Spec.Rules {
		for _, b := range rule.BackendRefs {
			rules[i].add(b.BackendObjectReference, b.Weight)
		}
	}
	o.Status.Parents = routeParents(o.Namespace, o.Generation, o.Spec.ParentRefs, rules, services)
	for i := range o.Status.Parents {
		ps := &o.Status.Parents[i]
		ref := ps.ParentRef
		pns := o.Namespace
		if ref.Namespace != nil {
			pns = string(*ref.Namespace)
		}
		svc := services[weftv1.ResourceName(string(ref.Name), pns)]
		if svc == nil || len(svc.Ports) == 0 {
			continue
		}
		if msg := missingPort(svc, ref); msg != "" {
			c := &ps.Conditions[0]
			c.Status, c.Reason, c.Message = metav1.ConditionFalse, string(gatewayv1.RouteReasonNoMatchingParent), msg
		}
	}
}

// missingPort says why ref's port or sectionName is not a port of svc; ""
// when it is, or when ref names none.
func missingPort(svc *mesh.Service, ref gatewayv1.ParentReference) string {
	for _, p := range svc.Ports {
		switch {
		case ref.Port != nil && int32(p.Port) == int32(*ref.Port):
			return ""
		case ref.Port == nil && ref.SectionName != nil && p.Name == string(*ref.SectionName):
			return ""
		}
	}
	switch {
	case ref.Port != nil:
		return fmt.Sprintf("Service %s/%s has no port %d", svc.Namespace, svc.Name, *ref.Port)
	case ref.SectionName != nil && *ref.SectionName != "":
		return fmt.Sprintf("Service %s/%s has no port named %q", svc.Namespace, svc.Name, *ref.SectionName)
	}
	return ""
}
