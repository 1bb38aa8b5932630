package api

import (
	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// notYet is the detail of a field that is valid but not enforced by this
// version of weft.
const notYet = "is valid Gateway API/weft configuration but not enforced by this version of weft; refusing it rather than silently ignoring it"

// noHostnames explains why hostnames are refused on a route.
const noHostnames = "must be empty: a route attached to a Service (GAMMA) applies to requests for that Service whatever their Host, so hostnames would be ignored; weft has no Gateways yet, where hostnames apply"

// checkParents refuses Gateway parents: weft has no gateways yet, so a
// route attached to one would be stored and never take effect.
func checkParents(e *errs, refs []gatewayv1.ParentReference) {
	for i, ref := range refs {
		if ref.Kind == nil || string(*ref.Kind) == "Gateway" {
			e.add(fieldPath("spec.parentRefs").index(i), "a Gateway parent "+notYet+": weft has no gateways yet; attach the route to a Service (group \"\", kind Service)")
		}
	}
}

// CheckSupported reports fields that pass validation but that this version
// of weft does not act on yet. The control plane refuses such objects: a
// route whose regular expression were read as a prefix, or an authorization
// policy that were stored but not enforced, would do silent harm.
func CheckSupported(o Object) error {
	var e errs
	switch o := o.(type) {
	case *gatewayv1.HTTPRoute:
		checkParents(&e, o.Spec.ParentRefs)
		if len(o.Spec.Hostnames) > 0 {
			e.add("spec.hostnames", noHostnames)
		}
	case *gatewayv1.GRPCRoute:
		checkParents(&e, o.Spec.ParentRefs)
		if len(o.Spec.Hostnames) > 0 {
			e.add("spec.hostnames", noHostnames)
		}
	case *DestinationPolicy, *corev1.Service, *MeshConfig, *AuthorizationPolicy, *RequestAuthentication, *FaultInjection, *ExternalService:
	}
	if len(e) == 0 {
		return nil
	}
	return &InvalidError{Kind: KindOf(o), Name: o.GetName(), Errors: e}
}
