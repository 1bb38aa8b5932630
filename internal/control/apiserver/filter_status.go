package apiserver

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// withFilterStatus adds to the ResolvedRefs condition of every route of
// objs (whose statuses setStatus computed) the filter references that do
// not resolve: an ExtensionRef to a FaultInjection that does not exist (the
// requests of that rule are answered 500, as the Gateway API requires for
// a custom filter that cannot be resolved), a RequestMirror to a Service
// that is not in the mesh (nothing is mirrored) and an ExternalAuth to one
// (the requests it checks are refused), on rules and on backendRefs.
func (h *handler) withFilterStatus(objs []api.Object, services map[string]*mesh.Service) error {
	cfg, err := h.st.Set()
	if err != nil {
		return fmt.Errorf("reading stored configuration: %w", err)
	}
	faults := map[api.Key]bool{}
	for _, f := range cfg.FaultInjections {
		faults[api.KeyOf(f)] = true
	}
	for _, o := range objs {
		var missing []string
		check := func(p string, ns string, ext *gatewayv1.LocalObjectReference, m *gatewayv1.HTTPRequestMirrorFilter) {
			if ext != nil && !faults[api.Key{Kind: api.KindFaultInjection, Namespace: ns, Name: string(ext.Name)}] {
				missing = append(missing, fmt.Sprintf("%s.extensionRef: no FaultInjection %q in namespace %q: the requests of the rule are answered 500", p, ext.Name, ns))
			}
			if m != nil {
				bns := ns
				if m.BackendRef.Namespace != nil {
					bns = string(*m.BackendRef.Namespace)
				}
				if services[weftv1.ResourceName(string(m.BackendRef.Name), bns)] == nil {
					missing = append(missing, fmt.Sprintf("%s.requestMirror.backendRef: no Service %q in namespace %q: nothing is mirrored", p, m.BackendRef.Name, bns))
				}
			}
		}
		checkAuth := func(p string, ns string, a *gatewayv1.HTTPExternalAuthFilter) {
			if a == nil {
				return
			}
			bns := ns
			if a.BackendRef.Namespace != nil {
				bns = string(*a.BackendRef.Namespace)
			}
			if services[weftv1.ResourceName(string(a.BackendRef.Name), bns)] == nil {
				missing = append(missing, fmt.Sprintf("%s.externalAuth.backendRef: no Service %q in namespace %q: the requests it checks are refused with 503", p, a.BackendRef.Name, bns))
			}
		}
		httpFilters := func(p, ns string, fs []gatewayv1.HTTPRouteFilter) {
			for j, f := range fs {
				check(fmt.Sprintf("%s.filters[%d]", p, j), ns, f.ExtensionRef, f.RequestMirror)
				checkAuth(fmt.Sprintf("%s.filters[%d]", p, j), ns, f.ExternalAuth)
			}
		}
		grpcFilters := func(p, ns string, fs []gatewayv1.GRPCRouteFilter) {
			for j, f := range fs {
				check(fmt.Sprintf("%s.filters[%d]", p, j), ns, f.ExtensionRef, f.RequestMirror)
			}
		}
		var parents []gatewayv1.RouteParentStatus
		switch o := o.(type) {
		case *gatewayv1.HTTPRoute:
			for i, rule := range o.Spec.Rules {
				httpFilters(fmt.Sprintf("spec.rules[%d]", i), o.Namespace, rule.Filters)
				for k, b := range rule.BackendRefs {
					httpFilters(fmt.Sprintf("spec.rules[%d].backendRefs[%d]", i, k), o.Namespace, b.Filters)
				}
			}
			parents = o.Status.Parents
		case *gatewayv1.GRPCRoute:
			for i, rule := range o.Spec.Rules {
				grpcFilters(fmt.Sprintf("spec.rules[%d]", i), o.Namespace, rule.Filters)
				for k, b := range rule.BackendRefs {
					grpcFilters(fmt.Sprintf("spec.rules[%d].backendRefs[%d]", i, k), o.Namespace, b.Filters)
				}
			}
			parents = o.Status.Parents
		}
		if len(missing) > 0 {
			unresolved(parents, strings.Join(missing, "; "))
		}
	}
	return nil
}

// unresolved sets the ResolvedRefs condition of each parent status to
// False, reason BackendNotFound (a reference to a resource that does not
// exist), adding msg to its message.
func unresolved(parents []gatewayv1.RouteParentStatus, msg string) {
	for i := range parents {
		for j := range parents[i].Conditions {
			c := &parents[i].Conditions[j]
			if c.Type != string(gatewayv1.RouteConditionResolvedRefs) {
				continue
			}
			if c.Status == metav1.ConditionTrue {
				c.Status, c.Reason, c.Message = metav1.ConditionFalse, string(gatewayv1.RouteReasonBackendNotFound), msg
				continue
			}
			c.Message += "; " + msg
		}
	}
}
