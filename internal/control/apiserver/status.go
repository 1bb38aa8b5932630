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

// ControllerName is the Gateway API controller name weft reports route
// statuses under.
const ControllerName gatewayv1.GatewayController = "weft.dev/mesh"

// Condition reasons weft's own policies use (as Gateway API policies do).
const (
	ReasonAccepted       = "Accepted"
	ReasonTargetNotFound = "TargetNotFound"
)

// statusMesh is the mesh statuses are computed against: the stored
// configuration over the current workloads, so a status always describes
// the object as stored and the services as they are now.
func (h *handler) statusMesh() (*api.Set, map[string]*mesh.Service, error) {
	cfg, err := h.st.Set()
	if err != nil {
		return nil, nil, fmt.Errorf("reading stored configuration: %w", err)
	}
	var workloads []*mesh.Workload
	if snap := h.snapshot(); snap != nil {
		workloads = snap.Workloads
	}
	return cfg, mesh.Build(cfg, workloads).Services, nil
}

// withStatus fills in the computed status of every route and policy of
// objs (which are the caller's to modify).
func (h *handler) withStatus(objs []api.Object) error {
	need := false
	for _, o := range objs {
		switch o.(type) {
		case *gatewayv1.HTTPRoute, *gatewayv1.GRPCRoute, *api.DestinationPolicy, *gatewayv1.Gateway, *gatewayv1.TLSRoute, *gatewayv1.TCPRoute,
			*api.AuthorizationPolicy, *api.RequestAuthentication, *api.MeshConfig, *api.ExternalService, *api.FaultInjection:
			need = true
		}
	}
	if !need {
		return nil
	}
	cfg, services, err := h.statusMesh()
	if err != nil {
		return err
	}
	for _, o := range objs {
		setStatus(o, services)
		setConfigStatus(o, cfg, services, h.opts.TrustDomain) // status_config.go
	}
	if err := h.withGatewayStatus(objs); err != nil { // gateway_status.go
		return err
	}
	return h.withFilterStatus(objs, services) // filter_status.go
}

// setStatus computes the status of o from services, the mesh's services
// by key.
func setStatus(o api.Object, services map[string]*mesh.Service) {
	switch o := o.(type) {
	case *gatewayv1.HTTPRoute:
		rules := make([]ruleBackends, len(o.Spec.Rules))
		for i, rule := range o.Spec.Rules {
			for _, f := range rule.Filters {
				rules[i].redirect = rules[i].redirect || f.Type == gatewayv1.HTTPRouteFilterRequestRedirect
			}
			for _, b := range rule.BackendRefs {
				rules[i].add(b.BackendObjectReference, b.Weight)
			}
		}
		o.Status.Parents = routeParents(o.Namespace, o.Generation, o.Spec.ParentRefs, rules, services)
	case *gatewayv1.GRPCRoute:
		rules := make([]ruleBackends, len(o.Spec.Rules))
		for i, rule := range o.Spec.Rules {
			for _, b := range rule.BackendRefs {
				rules[i].add(b.BackendObjectReference, b.Weight)
			}
		}
		o.Status.Parents = routeParents(o.Namespace, o.Generation, o.Spec.ParentRefs, rules, services)
	case *gatewayv1.TCPRoute:
		if len(o.Spec.ParentRefs) > 0 && api.IsGatewayParent(o.Spec.ParentRefs[0]) {
			break // attached to Gateways: withGatewayStatus
		}
		setTCPRouteStatus(o, services) // status_tcp.go
	case *api.DestinationPolicy:
		o.Status = targetStatus(o.Namespace, o.Generation, o.Spec.TargetRef.Name, services)
	case *api.RequestAuthentication:
		o.Status = targetStatus(o.Namespace, o.Generation, o.Spec.TargetRef.Name, services)
	case *api.AuthorizationPolicy:
		if o.Spec.TargetRef.Name != "" {
			o.Status = targetStatus(o.Namespace, o.Generation, o.Spec.TargetRef.Name, services)
			break
		}
		scope := "every workload of namespace " + o.Namespace
		if o.Namespace == api.RootNamespace {
			scope = "every workload of the mesh (root namespace " + api.RootNamespace + ")"
		}
		if o.Spec.Selector != nil {
			scope += " that its selector matches"
		}
		o.Status = &api.PolicyStatus{Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: ReasonAccepted,
			ObservedGeneration: o.Generation, Message: "applies to " + scope}}}
	}
}

// targetStatus is the status of a policy of namespace ns and generation
// gen whose targetRef names Service target: Accepted, or TargetNotFound
// while the Service is not in the mesh.
func targetStatus(ns string, gen int64, target string, services map[string]*mesh.Service) *api.PolicyStatus {
	c := metav1.Condition{Type: "Accepted", Status: metav1.ConditionTrue, Reason: ReasonAccepted, ObservedGeneration: gen,
		Message: fmt.Sprintf("applies to Service %s/%s", ns, target)}
	if services[weftv1.ResourceName(target, ns)] == nil {
		c.Status, c.Reason = metav1.ConditionFalse, ReasonTargetNotFound
		c.Message = fmt.Sprintf("no Service %q in namespace %q: the policy takes effect when one exists", target, ns)
	}
	return &api.PolicyStatus{Conditions: []metav1.Condition{c}}
}

// ruleBackends is what a route's status says about one of its rules.
type ruleBackends struct {
	refs     []gatewayv1.BackendObjectReference
	weighted bool // some backendRef has a weight above 0
	redirect bool // the rule answers with a RequestRedirect
}

func (r *ruleBackends) add(ref gatewayv1.BackendObjectReference, weight *int32) {
	r.refs = append(r.refs, ref)
	r.weighted = r.weighted || weight == nil || *weight > 0
}

// routeParents computes a route's RouteParentStatus for each of its
// parents (Gateway parents are redone by gatewayParents): Accepted says
// whether the parent Service exists, ResolvedRefs whether every backendRef
// (by rule) resolves to a mesh service; the requests that would go to a
// backend that does not resolve, or that a rule without backendRefs
// matches, are answered 500.
func routeParents(ns string, gen int64, parents []gatewayv1.ParentReference, rules []ruleBackends, services map[string]*mesh.Service) []gatewayv1.RouteParentStatus {
	resolved := metav1.Condition{Type: string(gatewayv1.RouteConditionResolvedRefs), Status: metav1.ConditionTrue,
		Reason: string(gatewayv1.RouteReasonResolvedRefs), ObservedGeneration: gen, Message: "every backendRef resolves to a mesh service"}
	var missing, empty, unweighted []string
	for i, rule := range rules {
		switch {
		case rule.redirect:
		case len(rule.refs) == 0:
			empty = append(empty, fmt.Sprintf("spec.rules[%d]", i))
		case !rule.weighted:
			unweighted = append(unweighted, fmt.Sprintf("spec.rules[%d]", i))
		}
		for j, b := range rule.refs {
			bns := ns
			if b.Namespace != nil {
				bns = string(*b.Namespace)
			}
			if services[weftv1.ResourceName(string(b.Name), bns)] == nil {
				missing = append(missing, fmt.Sprintf("spec.rules[%d].backendRefs[%d]: no Service %q in namespace %q", i, j, b.Name, bns))
			}
		}
	}
	if len(missing) > 0 {
		resolved.Status, resolved.Reason = metav1.ConditionFalse, string(gatewayv1.RouteReasonBackendNotFound)
		resolved.Message = strings.Join(missing, "; ") + "; the requests these backends would receive are answered 500"
	}
	if len(empty) > 0 {
		resolved.Message += "; " + strings.Join(empty, ", ") + " has no backendRefs: the requests it matches are answered 500"
	}
	if len(unweighted) > 0 {
		resolved.Message += "; every backendRef of " + strings.Join(unweighted, ", ") + " has weight 0: the requests it matches are answered 500"
	}
	out := make([]gatewayv1.RouteParentStatus, 0, len(parents))
	for _, p := range parents {
		pns := ns
		if p.Namespace != nil {
			pns = string(*p.Namespace)
		}
		accepted := metav1.Condition{Type: string(gatewayv1.RouteConditionAccepted), Status: metav1.ConditionTrue,
			Reason: string(gatewayv1.RouteReasonAccepted), ObservedGeneration: gen, Message: fmt.Sprintf("attached to Service %s/%s", pns, p.Name)}
		if services[weftv1.ResourceName(string(p.Name), pns)] == nil {
			accepted.Status, accepted.Reason = metav1.ConditionFalse, string(gatewayv1.RouteReasonNoMatchingParent)
			accepted.Message = fmt.Sprintf("no Service %q in namespace %q: the route takes effect when one exists", p.Name, pns)
		}
		out = append(out, gatewayv1.RouteParentStatus{
			ParentRef:      p,
			ControllerName: ControllerName,
			Conditions:     []metav1.Condition{accepted, resolved},
		})
	}
	return out
}
