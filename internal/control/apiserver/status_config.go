package apiserver

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// Condition reasons of the MeshConfig, ExternalService and FaultInjection
// statuses, besides ReasonAccepted.
const (
	// ReasonEgressGatewayNotFound: the egress gateway an ExternalService
	// (or the MeshConfig's default) names is not a mesh service.
	ReasonEgressGatewayNotFound = "EgressGatewayNotFound"
	// ReasonResolvedRefs: every reference resolves.
	ReasonResolvedRefs = "ResolvedRefs"
	// ReasonNotReferenced: no route rule references the FaultInjection.
	ReasonNotReferenced = "NotReferenced"
)

// conditionResolvedRefs is the condition type that says whether an
// object's references resolve, as in Gateway API route statuses.
const conditionResolvedRefs = "ResolvedRefs"

// setConfigStatus computes the status of a MeshConfig, ExternalService or
// FaultInjection o, against cfg (the stored configuration), services (the
// mesh's services by key) and td (the CA's trust domain, "" if unknown).
// Other kinds are left alone.
func setConfigStatus(o api.Object, cfg *api.Set, services map[string]*mesh.Service, td string) {
	switch o := o.(type) {
	case *api.MeshConfig:
		o.Status = meshConfigStatus(o, services, td)
	case *api.ExternalService:
		o.Status = externalServiceStatus(o, cfg.MeshConfig, services)
	case *api.FaultInjection:
		o.Status = faultStatus(o, cfg)
	}
}

// meshConfigStatus is Accepted, with the settings that matter most in its
// message, and ResolvedRefs when it names a default egress gateway. The
// trust domain named is the CA's (td), which every certificate carries;
// a spec.trustDomain that differs (written around the validating webhook)
// is reported in the message, since it changes nothing.
func meshConfigStatus(mc *api.MeshConfig, services map[string]*mesh.Service, td string) *api.PolicyStatus {
	mode := api.MTLSStrict
	if mc.Spec.MTLS != nil && mc.Spec.MTLS.Mode != "" {
		mode = mc.Spec.MTLS.Mode
	}
	outbound := "ALLOW_ANY"
	if p := mc.Spec.OutboundTrafficPolicy; p != nil && p.Mode != "" {
		outbound = p.Mode
	}
	td = cmp.Or(td, mc.Spec.TrustDomain, mesh.DefaultTrustDomain)
	msg := fmt.Sprintf("applies to every workload of the mesh: trust domain %s, mutual TLS %s, outbound traffic %s", td, mode, outbound)
	if mc.Spec.TrustDomain != "" && mc.Spec.TrustDomain != td {
		msg += fmt.Sprintf("; spec.trustDomain %q is ignored: the CA's trust domain %q is in every certificate and cannot change", mc.Spec.TrustDomain, td)
	}
	st := &api.PolicyStatus{Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: ReasonAccepted,
		ObservedGeneration: mc.Generation, Message: msg}}}
	if p := mc.Spec.OutboundTrafficPolicy; p != nil && p.EgressGateway != nil {
		ns := cmp.Or(p.EgressGateway.Namespace, api.DefaultNS)
		st.Conditions = append(st.Conditions, gatewayCondition(mc.Generation, "spec.outboundTrafficPolicy.egressGateway", ns, p.EgressGateway.Name,
			"of every ExternalService without its own spec.egressGateway", services))
	}
	return st
}

// externalServiceStatus is Accepted, and ResolvedRefs when the calls go
// through an egress gateway (its own or the MeshConfig's default).
func externalServiceStatus(x *api.ExternalService, mc *api.MeshConfig, services map[string]*mesh.Service) *api.PolicyStatus {
	st := &api.PolicyStatus{Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: ReasonAccepted,
		ObservedGeneration: x.Generation, Message: "declares " + strings.Join(x.Spec.Hosts, ", ")}}}
	switch {
	case x.Spec.EgressGateway != "":
		st.Conditions = append(st.Conditions, gatewayCondition(x.Generation, "spec.egressGateway", x.Namespace, x.Spec.EgressGateway, "", services))
	case mc != nil && mc.Spec.OutboundTrafficPolicy != nil && mc.Spec.OutboundTrafficPolicy.EgressGateway != nil:
		g := mc.Spec.OutboundTrafficPolicy.EgressGateway
		st.Conditions = append(st.Conditions, gatewayCondition(x.Generation, "MeshConfig spec.outboundTrafficPolicy.egressGateway",
			cmp.Or(g.Namespace, api.DefaultNS), g.Name, "", services))
	}
	return st
}

// gatewayCondition is the ResolvedRefs condition of a reference (at
// field) to the egress gateway service ns/name: True while it is a mesh
// service, else False, EgressGatewayNotFound, saying what that does.
func gatewayCondition(gen int64, field, ns, name, scope string, services map[string]*mesh.Service) metav1.Condition {
	c := metav1.Condition{Type: conditionResolvedRefs, Status: metav1.ConditionTrue, Reason: ReasonResolvedRefs, ObservedGeneration: gen,
		Message: fmt.Sprintf("calls go through egress gateway %s/%s", ns, name)}
	if scope != "" {
		c.Message = fmt.Sprintf("the calls %s go through egress gateway %s/%s", scope, ns, name)
	}
	if services[weftv1.ResourceName(name, ns)] == nil {
		c.Status, c.Reason = metav1.ConditionFalse, ReasonEgressGatewayNotFound
		c.Message = fmt.Sprintf("%s: no Service %q in namespace %q: calls that should go through it are answered 503 until a workload runs `weft run --service %s --egress` there",
			field, name, ns, name)
	}
	return c
}

// faultStatus is Accepted, with the route rules whose ExtensionRef
// filters name the FaultInjection in its message; Accepted is False,
// NotReferenced, while none does, because it injects nothing then.
func faultStatus(f *api.FaultInjection, cfg *api.Set) *api.PolicyStatus {
	uses := func(ext *gatewayv1.LocalObjectReference) bool {
		return ext != nil && string(ext.Name) == f.Name && string(ext.Kind) == api.KindFaultInjection
	}
	var users []string
	for _, r := range cfg.HTTPRoutes {
		if r.Namespace != f.Namespace {
			continue
		}
		for i, rule := range r.Spec.Rules {
			used := slices.ContainsFunc(rule.Filters, func(fl gatewayv1.HTTPRouteFilter) bool { return uses(fl.ExtensionRef) })
			for _, b := range rule.BackendRefs {
				used = used || slices.ContainsFunc(b.Filters, func(fl gatewayv1.HTTPRouteFilter) bool { return uses(fl.ExtensionRef) })
			}
			if used {
				users = append(users, fmt.Sprintf("HTTPRoute %s rule %d", r.Name, i))
			}
		}
	}
	for _, r := range cfg.GRPCRoutes {
		if r.Namespace != f.Namespace {
			continue
		}
		for i, rule := range r.Spec.Rules {
			used := slices.ContainsFunc(rule.Filters, func(fl gatewayv1.GRPCRouteFilter) bool { return uses(fl.ExtensionRef) })
			for _, b := range rule.BackendRefs {
				used = used || slices.ContainsFunc(b.Filters, func(fl gatewayv1.GRPCRouteFilter) bool { return uses(fl.ExtensionRef) })
			}
			if used {
				users = append(users, fmt.Sprintf("GRPCRoute %s rule %d", r.Name, i))
			}
		}
	}
	c := metav1.Condition{Type: "Accepted", Status: metav1.ConditionTrue, Reason: ReasonAccepted, ObservedGeneration: f.Generation,
		Message: "injected by " + strings.Join(users, ", ")}
	if len(users) == 0 {
		c.Status, c.Reason = metav1.ConditionFalse, ReasonNotReferenced
		c.Message = fmt.Sprintf("no HTTPRoute or GRPCRoute rule in namespace %q names it in an extensionRef filter (group weft.dev, kind FaultInjection): it injects nothing until one does", f.Namespace)
	}
	return &api.PolicyStatus{Conditions: []metav1.Condition{c}}
}
