package api

import (
	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// notYet is the detail of a field that is valid but not enforced by this
// version of weft.
const notYet = "is valid Gateway API/weft configuration but not enforced by this version of weft; refusing it rather than silently ignoring it"

// noHostnames explains why hostnames are refused on a route.
const noHostnames = "must be empty when the route has a Service parent: a route attached to a Service (GAMMA) applies to requests for that Service whatever their Host, so hostnames would be ignored; hostnames apply on Gateway parents only"

// checkParents refuses hostnames on a route with a Service parent (they
// apply on Gateway parents only).
func checkParents(e *errs, refs []gatewayv1.ParentReference, hostnames []gatewayv1.Hostname) {
	if len(hostnames) == 0 {
		return
	}
	for _, ref := range refs {
		if !IsGatewayParent(ref) {
			e.add("spec.hostnames", noHostnames)
			return
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
		checkParents(&e, o.Spec.ParentRefs, o.Spec.Hostnames)
	case *gatewayv1.GRPCRoute:
		checkParents(&e, o.Spec.ParentRefs, o.Spec.Hostnames)
	case *gatewayv1.Gateway:
		checkGateway(&e, o) // validate_gateway.go
	case *gatewayv1.TLSRoute, *gatewayv1.TCPRoute:
	case *DestinationPolicy, *corev1.Service, *MeshConfig, *AuthorizationPolicy, *RequestAuthentication, *FaultInjection, *corev1.Secret, *ExternalService:
	}
	if len(e) == 0 {
		return nil
	}
	return &InvalidError{Kind: KindOf(o), Name: o.GetName(), Errors: e}
}
