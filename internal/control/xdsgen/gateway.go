package xdsgen

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// Gateways builds the Gateway resource of every Gateway of cfg, by
// resource name ("<name>.<namespace>", the name its proxy registers as).
// A listener whose certificate Secret is missing is left out (the
// Gateway's status says so: see GatewayListenerRefs).
func Gateways(cfg *api.Set) map[string]*weftv1.Gateway {
	if cfg == nil {
		return nil
	}
	out := make(map[string]*weftv1.Gateway, len(cfg.Gateways))
	for _, g := range cfg.Gateways {
		out[weftv1.ResourceName(g.Name, g.Namespace)] = Gateway(cfg, g)
	}
	return out
}

// Gateway builds the resource of Gateway g.
func Gateway(cfg *api.Set, g *gatewayv1.Gateway) *weftv1.Gateway {
	routes := compileAttached(cfg, func(ns string, ref gatewayv1.ParentReference, hostnames []gatewayv1.Hostname, kind string) []routeParent {
		var out []routeParent
		for _, l := range g.Spec.Listeners {
			for _, h := range AttachedHosts(g, l, ns, ref, hostnames, kind) {
				out = append(out, routeParent{key: string(l.Name) + "\x00" + h})
			}
		}
		return out
	})
	res := &weftv1.Gateway{Name: g.Name, Namespace: g.Namespace}
	for _, l := range g.Spec.Listeners {
		gl := &weftv1.GatewayListener{Name: string(l.Name), Port: uint32(l.Port), Protocol: string(l.Protocol)}
		if l.Hostname != nil {
			gl.Hostname = string(*l.Hostname)
		}
		if l.Protocol == gatewayv1.HTTPSProtocolType {
			s := listenerSecret(cfg, g, l)
			if s == nil {
				continue
			}
			gl.CertPem, gl.KeyPem = s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
		}
		prefix := string(l.Name) + "\x00"
		for key, rs := range routes {
			if host, ok := strings.CutPrefix(key, prefix); ok {
				gl.Hosts = append(gl.Hosts, &weftv1.GatewayHost{Hostname: host, Routes: &weftv1.Service{Name: g.Name, Namespace: g.Namespace, Routes: rs}})
			}
		}
		sort.Slice(gl.Hosts, func(i, j int) bool { return gl.Hosts[i].Hostname < gl.Hosts[j].Hostname })
		gl.Streams = gatewayStreams(cfg, g, l)
		res.Listeners = append(res.Listeners, gl)
	}
	return res
}

// listenerSecret is the TLS Secret an HTTPS listener names, nil if it is
// not stored.
func listenerSecret(cfg *api.Set, g *gatewayv1.Gateway, l gatewayv1.Listener) *corev1.Secret {
	if l.TLS == nil || len(l.TLS.CertificateRefs) == 0 {
		return nil
	}
	name := string(l.TLS.CertificateRefs[0].Name)
	for _, s := range cfg.Secrets {
		if s.Namespace == g.Namespace && s.Name == name {
			return s
		}
	}
	return nil
}

// ListenerSecretMissing reports whether listener l of g names a Secret
// that is not stored.
func ListenerSecretMissing(cfg *api.Set, g *gatewayv1.Gateway, l gatewayv1.Listener) bool {
	return l.Protocol == gatewayv1.HTTPSProtocolType && listenerSecret(cfg, g, l) == nil
}

// RefersTo reports whether parentRef ref of a route in namespace ns names
// Gateway g (any listener).
func RefersTo(g *gatewayv1.Gateway, ns string, ref gatewayv1.ParentReference) bool {
	if !api.IsGatewayParent(ref) || string(ref.Name) != g.Name {
		return false
	}
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	return ns == g.Namespace
}

// AttachedHosts returns the hostnames under which a route of kind in
// namespace ns, with hostnames, attaches to listener l of g through
// parentRef ref: none when the ref does not select the listener (name,
// sectionName, port), the listener does not allow the route (namespace,
// kind) or no hostname intersects the listener's; "" is any host.
func AttachedHosts(g *gatewayv1.Gateway, l gatewayv1.Listener, ns string, ref gatewayv1.ParentReference, hostnames []gatewayv1.Hostname, kind string) []string {
	if !RefersTo(g, ns, ref) || ref.SectionName != nil && *ref.SectionName != l.Name || ref.Port != nil && *ref.Port != l.Port {
		return nil
	}
	if !ListenerAllows(g, l, ns, kind) {
		return nil
	}
	lh := ""
	if l.Hostname != nil {
		lh = string(*l.Hostname)
	}
	if len(hostnames) == 0 {
		return []string{lh}
	}
	var out []string
	for _, h := range hostnames {
		if x := intersectHost(lh, string(h)); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// ListenerAllows reports whether listener l of g accepts a route of kind
// from namespace ns (allowedRoutes; the default is the Gateway's
// namespace, HTTPRoute and GRPCRoute).
func ListenerAllows(g *gatewayv1.Gateway, l gatewayv1.Listener, ns, kind string) bool {
	ar := l.AllowedRoutes
	from := gatewayv1.NamespacesFromSame
	if ar != nil && ar.Namespaces != nil && ar.Namespaces.From != nil {
		from = *ar.Namespaces.From
	}
	if from == gatewayv1.NamespacesFromSame && ns != g.Namespace || from != gatewayv1.NamespacesFromSame && from != gatewayv1.NamespacesFromAll {
		return false
	}
	if !slices.Contains(api.ListenerRouteKinds(l.Protocol), kind) {
		return false
	}
	if ar == nil || len(ar.Kinds) == 0 {
		return true
	}
	for _, k := range ar.Kinds {
		if string(k.Kind) == kind {
			return true
		}
	}
	return false
}

// intersectHost is the more specific of a listener hostname (""
// is any) and a route hostname when they intersect, "" when they do not.
func intersectHost(listener, route string) string {
	switch {
	case listener == "" || listener == route:
		return route
	case hostMatches(listener, route):
		return route
	case hostMatches(route, listener):
		return listener
	}
	return ""
}

// hostMatches reports whether pattern (a host or "*.suffix") covers host
// (a host or a narrower wildcard). A wildcard covers one or more labels.
func hostMatches(pattern, host string) bool {
	suffix, ok := strings.CutPrefix(pattern, "*")
	if !ok {
		return pattern == host
	}
	return strings.HasSuffix(host, suffix) && len(host) > len(suffix)
}

// gatewayStreams are the TLSRoutes (TLS listener) or TCPRoutes (TCP
// listener) attached to listener l of g, by SNI hostname, then by route
// ("<namespace>/<name>"): a TCP listener serves the first.
func gatewayStreams(cfg *api.Set, g *gatewayv1.Gateway, l gatewayv1.Listener) []*weftv1.GatewayStream {
	var out []*weftv1.GatewayStream
	add := func(ns, name, kind string, refs []gatewayv1.ParentReference, hostnames []gatewayv1.Hostname, rules [][]gatewayv1.BackendRef) {
		if len(rules) != 1 {
			return
		}
		seen := map[string]bool{}
		for _, ref := range refs {
			for _, h := range AttachedHosts(g, l, ns, ref, hostnames, kind) {
				if seen[h] {
					continue
				}
				seen[h] = true
				var hb []gatewayv1.HTTPBackendRef
				for _, b := range rules[0] {
					hb = append(hb, gatewayv1.HTTPBackendRef{BackendRef: b})
				}
				out = append(out, &weftv1.GatewayStream{Name: fmt.Sprintf("%s/%s", ns, name), Hostname: h, Backends: httpBackends(ns, hb)})
			}
		}
	}
	for _, r := range cfg.TLSRoutes {
		rules := make([][]gatewayv1.BackendRef, len(r.Spec.Rules))
		for i, rule := range r.Spec.Rules {
			rules[i] = rule.BackendRefs
		}
		add(r.Namespace, r.Name, api.KindTLSRoute, r.Spec.ParentRefs, r.Spec.Hostnames, rules)
	}
	for _, r := range cfg.TCPRoutes {
		rules := make([][]gatewayv1.BackendRef, len(r.Spec.Rules))
		for i, rule := range r.Spec.Rules {
			rules[i] = rule.BackendRefs
		}
		add(r.Namespace, r.Name, api.KindTCPRoute, r.Spec.ParentRefs, nil, rules)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Hostname != out[j].Hostname {
			return out[i].Hostname < out[j].Hostname
		}
		return out[i].Name < out[j].Name
	})
	return out
}
