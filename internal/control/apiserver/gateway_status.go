package apiserver

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/xdsgen"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// checkGateways validates the routes every Gateway of cfg would serve as
// its proxy will (weftv1.ValidateService on each host's routes), naming
// the route at fault among objs when it can.
func checkGateways(objs []api.Located, cfg *api.Set) error {
	for _, g := range cfg.Gateways {
		for _, l := range xdsgen.Gateway(cfg, g).GetListeners() {
			for _, h := range l.GetHosts() {
				if err := weftv1.ValidateService(h.GetRoutes()); err != nil {
					return attribute(objs, fmt.Sprintf("Gateway %s/%s listener %s host %q", g.Namespace, g.Name, l.GetName(), h.GetHostname()), h.GetRoutes(), err)
				}
			}
		}
	}
	return nil
}

// withGatewayStatus fills in the status of the Gateways of objs and the
// parent status of routes' Gateway parents (routeParents computed the
// Service parents').
func (h *handler) withGatewayStatus(objs []api.Object) error {
	cfg, err := h.st.Set()
	if err != nil {
		return fmt.Errorf("reading stored configuration: %w", err)
	}
	for _, o := range objs {
		switch o := o.(type) {
		case *gatewayv1.Gateway:
			programmed := h.opts.GatewayProgrammed != nil && h.opts.GatewayProgrammed(o.Name, o.Namespace)
			o.Status = gatewayStatus(cfg, o, programmed)
		case *gatewayv1.HTTPRoute:
			gatewayParents(cfg, o.Namespace, o.Generation, api.KindHTTPRoute, o.Spec.ParentRefs, o.Spec.Hostnames, o.Status.Parents)
		case *gatewayv1.GRPCRoute:
			gatewayParents(cfg, o.Namespace, o.Generation, api.KindGRPCRoute, o.Spec.ParentRefs, o.Spec.Hostnames, o.Status.Parents)
		case *gatewayv1.TLSRoute:
			o.Status.Parents = streamParents(cfg, o.Namespace, o.Generation, api.KindTLSRoute, o.Spec.ParentRefs, o.Spec.Hostnames)
		case *gatewayv1.TCPRoute:
			if len(o.Spec.ParentRefs) == 0 || !api.IsGatewayParent(o.Spec.ParentRefs[0]) {
				break // attached to Services: setTCPRouteStatus
			}
			o.Status.Parents = streamParents(cfg, o.Namespace, o.Generation, api.KindTCPRoute, o.Spec.ParentRefs, nil)
		}
	}
	return nil
}

// gatewayStatus is the status of Gateway g: Accepted (it is stored, so
// valid), Programmed (a gateway proxy of its name acknowledged it), and per
// listener Accepted, ResolvedRefs (the certificate Secret is stored),
// Programmed and the number of routes attached.
func gatewayStatus(cfg *api.Set, g *gatewayv1.Gateway, programmed bool) gatewayv1.GatewayStatus {
	gen := g.Generation
	cond := func(t string, ok bool, reason, falseReason, msg string) metav1.Condition {
		c := metav1.Condition{Type: t, Status: metav1.ConditionTrue, Reason: reason, ObservedGeneration: gen, Message: msg}
		if !ok {
			c.Status, c.Reason = metav1.ConditionFalse, falseReason
		}
		return c
	}
	progMsg := "a gateway proxy of this name is connected and serves this configuration"
	if !programmed {
		progMsg = fmt.Sprintf("no gateway proxy has acknowledged this configuration: run weft gateway --name %s --namespace %s", g.Name, g.Namespace)
	}
	st := gatewayv1.GatewayStatus{Conditions: []metav1.Condition{
		cond(string(gatewayv1.GatewayConditionAccepted), true, string(gatewayv1.GatewayReasonAccepted), "", "valid and stored"),
		cond(string(gatewayv1.GatewayConditionProgrammed), programmed, string(gatewayv1.GatewayReasonProgrammed), string(gatewayv1.GatewayReasonPending), progMsg),
	}}
	for _, l := range g.Spec.Listeners {
		resolved := !xdsgen.ListenerSecretMissing(cfg, g, l)
		refMsg := "every reference resolves"
		if !resolved {
			refMsg = fmt.Sprintf("no Secret %q of type kubernetes.io/tls in namespace %q: the listener is not served", l.TLS.CertificateRefs[0].Name, g.Namespace)
		}
		lprog := programmed && resolved
		lprogMsg := progMsg
		if !resolved {
			lprogMsg = refMsg
		}
		st.Listeners = append(st.Listeners, gatewayv1.ListenerStatus{
			Name:           l.Name,
			SupportedKinds: supportedKinds(l.Protocol),
			AttachedRoutes: attachedRoutes(cfg, g, l),
			Conditions: []metav1.Condition{
				cond(string(gatewayv1.ListenerConditionAccepted), true, string(gatewayv1.ListenerReasonAccepted), "", "valid"),
				cond(string(gatewayv1.ListenerConditionResolvedRefs), resolved, string(gatewayv1.ListenerReasonResolvedRefs), string(gatewayv1.ListenerReasonInvalidCertificateRef), refMsg),
				cond(string(gatewayv1.ListenerConditionProgrammed), lprog, string(gatewayv1.ListenerReasonProgrammed), string(gatewayv1.ListenerReasonPending), lprogMsg),
			},
		})
	}
	return st
}

// supportedKinds are the route kinds a listener of protocol p serves.
func supportedKinds(p gatewayv1.ProtocolType) []gatewayv1.RouteGroupKind {
	var out []gatewayv1.RouteGroupKind
	for _, k := range api.ListenerRouteKinds(p) {
		g := gatewayv1.Group(api.GroupGateway)
		out = append(out, gatewayv1.RouteGroupKind{Group: &g, Kind: gatewayv1.Kind(k)})
	}
	return out
}

// attachedRoutes counts the routes attached to listener l of g.
func attachedRoutes(cfg *api.Set, g *gatewayv1.Gateway, l gatewayv1.Listener) int32 {
	var n int32
	count := func(ns, kind string, refs []gatewayv1.ParentReference, hosts []gatewayv1.Hostname) {
		for _, ref := range refs {
			if len(xdsgen.AttachedHosts(g, l, ns, ref, hosts, kind)) > 0 {
				n++
				return
			}
		}
	}
	for _, r := range cfg.HTTPRoutes {
		count(r.Namespace, api.KindHTTPRoute, r.Spec.ParentRefs, r.Spec.Hostnames)
	}
	for _, r := range cfg.GRPCRoutes {
		count(r.Namespace, api.KindGRPCRoute, r.Spec.ParentRefs, r.Spec.Hostnames)
	}
	for _, r := range cfg.TLSRoutes {
		count(r.Namespace, api.KindTLSRoute, r.Spec.ParentRefs, r.Spec.Hostnames)
	}
	for _, r := range cfg.TCPRoutes {
		count(r.Namespace, api.KindTCPRoute, r.Spec.ParentRefs, nil)
	}
	return n
}

// gatewayParents sets the Accepted condition of the Gateway parents in
// parents (one per parentRef, in order, as routeParents made them):
// NoMatchingParent when the Gateway or the listener named by sectionName
// or port does not exist, NotAllowedByListeners when no such listener
// allows the route, NoMatchingListenerHostname when none shares a
// hostname with it.
func gatewayParents(cfg *api.Set, ns string, gen int64, kind string, refs []gatewayv1.ParentReference, hosts []gatewayv1.Hostname, parents []gatewayv1.RouteParentStatus) {
	for i, ref := range refs {
		if !api.IsGatewayParent(ref) || i >= len(parents) {
			continue
		}
		c := metav1.Condition{Type: string(gatewayv1.RouteConditionAccepted), Status: metav1.ConditionFalse, ObservedGeneration: gen}
		c.Reason, c.Message = gatewayParent(cfg, ns, kind, ref, hosts)
		if c.Reason == string(gatewayv1.RouteReasonAccepted) {
			c.Status = metav1.ConditionTrue
		}
		parents[i].Conditions[0] = c
	}
}

// gatewayParent is the Accepted reason and message of one Gateway parent.
func gatewayParent(cfg *api.Set, ns, kind string, ref gatewayv1.ParentReference, hosts []gatewayv1.Hostname) (string, string) {
	gns := ns
	if ref.Namespace != nil {
		gns = string(*ref.Namespace)
	}
	for _, g := range cfg.Gateways {
		if !xdsgen.RefersTo(g, ns, ref) {
			continue
		}
		var selected, allowed, attached []string
		for _, l := range g.Spec.Listeners {
			if ref.SectionName != nil && *ref.SectionName != l.Name || ref.Port != nil && *ref.Port != l.Port {
				continue
			}
			selected = append(selected, string(l.Name))
			if !xdsgen.ListenerAllows(g, l, ns, kind) {
				continue
			}
			allowed = append(allowed, string(l.Name))
			if len(xdsgen.AttachedHosts(g, l, ns, ref, hosts, kind)) > 0 {
				attached = append(attached, string(l.Name))
			}
		}
		switch {
		case len(selected) == 0:
			return string(gatewayv1.RouteReasonNoMatchingParent), fmt.Sprintf("Gateway %s/%s has no listener matching the parentRef's sectionName and port", gns, ref.Name)
		case len(allowed) == 0:
			return string(gatewayv1.RouteReasonNotAllowedByListeners), fmt.Sprintf("no listener of Gateway %s/%s (%s) allows %ss from namespace %q", gns, ref.Name, strings.Join(selected, ", "), kind, ns)
		case len(attached) == 0:
			return string(gatewayv1.RouteReasonNoMatchingListenerHostname), fmt.Sprintf("no hostname of the route intersects the hostname of a listener of Gateway %s/%s (%s)", gns, ref.Name, strings.Join(allowed, ", "))
		}
		return string(gatewayv1.RouteReasonAccepted), fmt.Sprintf("attached to Gateway %s/%s, listeners %s", gns, ref.Name, strings.Join(attached, ", "))
	}
	return string(gatewayv1.RouteReasonNoMatchingParent), fmt.Sprintf("no Gateway %q in namespace %q: the route takes effect when one exists", ref.Name, gns)
}

// streamParents is the parent status of a TLSRoute or TCPRoute (Gateway
// parents only): Accepted as for an HTTPRoute's Gateway parent.
func streamParents(cfg *api.Set, ns string, gen int64, kind string, refs []gatewayv1.ParentReference, hosts []gatewayv1.Hostname) []gatewayv1.RouteParentStatus {
	out := make([]gatewayv1.RouteParentStatus, len(refs))
	for i, ref := range refs {
		out[i] = gatewayv1.RouteParentStatus{ParentRef: ref, ControllerName: ControllerName, Conditions: []metav1.Condition{{Type: string(gatewayv1.RouteConditionAccepted)}}}
	}
	gatewayParents(cfg, ns, gen, kind, refs, hosts, out)
	return out
}
