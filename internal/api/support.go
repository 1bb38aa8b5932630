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
		for i, rule := range o.Spec.Rules {
			rp := fieldPath("spec.rules").index(i)
			for j, f := range rule.Filters {
				if !weftFilter(string(f.Type)) {
					e.add(rp.child("filters").index(j).child("type"), "%s %s", f.Type, notYet)
				}
			}
			if rule.Retry != nil {
				e.add(rp.child("retry"), notYet)
			}
			if rule.SessionPersistence != nil {
				e.add(rp.child("sessionPersistence"), notYet)
			}
			if rule.Timeouts != nil && rule.Timeouts.BackendRequest != nil {
				e.add(rp.child("timeouts.backendRequest"), notYet)
			}
			for j, b := range rule.BackendRefs {
				if len(b.Filters) > 0 {
					e.add(rp.child("backendRefs").index(j).child("filters"), notYet)
				}
			}
			for j, m := range rule.Matches {
				mp := rp.child("matches").index(j)
				if m.Path != nil && m.Path.Type != nil && *m.Path.Type == gatewayv1.PathMatchRegularExpression {
					e.add(mp.child("path.type"), "RegularExpression "+notYet)
				}
				for k, h := range m.Headers {
					if h.Type != nil && *h.Type == gatewayv1.HeaderMatchRegularExpression {
						e.add(mp.child("headers").index(k).child("type"), "RegularExpression "+notYet)
					}
				}
				if len(m.QueryParams) > 0 {
					e.add(mp.child("queryParams"), notYet)
				}
			}
		}
	case *gatewayv1.GRPCRoute:
		checkParents(&e, o.Spec.ParentRefs)
		if len(o.Spec.Hostnames) > 0 {
			e.add("spec.hostnames", noHostnames)
		}
		for i, rule := range o.Spec.Rules {
			rp := fieldPath("spec.rules").index(i)
			for j, f := range rule.Filters {
				if !weftFilter(string(f.Type)) {
					e.add(rp.child("filters").index(j).child("type"), "%s %s", f.Type, notYet)
				}
			}
			if rule.SessionPersistence != nil {
				e.add(rp.child("sessionPersistence"), notYet)
			}
			for j, m := range rule.Matches {
				mp := rp.child("matches").index(j)
				if m.Method != nil && m.Method.Type != nil && *m.Method.Type == gatewayv1.GRPCMethodMatchRegularExpression {
					e.add(mp.child("method.type"), "RegularExpression "+notYet)
				}
				if m.Method != nil && m.Method.Service == nil && m.Method.Method != nil {
					e.add(mp.child("method.service"), "a method match without a service "+notYet)
				}
				for k, h := range m.Headers {
					if h.Type != nil && *h.Type == gatewayv1.GRPCHeaderMatchRegularExpression {
						e.add(mp.child("headers").index(k).child("type"), "RegularExpression "+notYet)
					}
				}
			}
		}
	case *DestinationPolicy:
		if o.Spec.ConnectionPool != nil {
			e.add("spec.connectionPool", notYet)
		}
		if o.Spec.OutlierDetection != nil {
			e.add("spec.outlierDetection", notYet)
		}
		if o.Spec.Retry != nil {
			e.add("spec.retry", notYet)
		}
	case *corev1.Service, *MeshConfig, *AuthorizationPolicy, *RequestAuthentication, *FaultInjection:
	}
	if len(e) == 0 {
		return nil
	}
	return &InvalidError{Kind: KindOf(o), Name: o.GetName(), Errors: e}
}

// weftFilter reports whether weft enforces route filters of type typ.
func weftFilter(typ string) bool {
	return typ == string(gatewayv1.HTTPRouteFilterRequestMirror) || typ == string(gatewayv1.HTTPRouteFilterExtensionRef)
}
