package xdsgen

import (
	"cmp"
	"slices"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// compileTCPRoutes turns the TCPRoutes attached to services (parentRef
// kind Service, optionally narrowed to a port by port or by sectionName,
// the name of a port of the Service) into each service's TcpRoutes, by
// service key: a route on a port before a route without one, then by
// TCPRoute namespace and name. A route in another namespace than its
// parent's is a consumer route, for callers in its own namespace. A
// sectionName that names no port of the Service attaches nothing (the
// route's status says so).
func compileTCPRoutes(cfg *api.Set) map[string][]*weftv1.TcpRoute {
	out := map[string][]*weftv1.TcpRoute{}
	for _, tr := range cfg.TCPRoutes {
		if len(tr.Spec.Rules) == 0 {
			continue
		}
		backends := tcpBackends(tr.Namespace, tr.Spec.Rules[0])
		for _, ref := range tr.Spec.ParentRefs {
			parent, ok := serviceParent(tr.Namespace, ref)
			if !ok {
				continue
			}
			var port uint32
			if ref.Port != nil {
				port = uint32(*ref.Port)
			} else if ref.SectionName != nil && *ref.SectionName != "" {
				p, ok := servicePortNamed(cfg, parent, string(*ref.SectionName))
				if !ok {
					continue
				}
				port = p
			}
			r := &weftv1.TcpRoute{Name: tr.Namespace + "/" + tr.Name, Port: port, Backends: backends}
			if tr.Namespace != parent.namespace {
				r.ConsumerNamespace = tr.Namespace
			}
			out[parent.key()] = append(out[parent.key()], r)
		}
	}
	for _, rs := range out {
		// Stable: routes without a port keep the namespace/name order of cfg.
		slices.SortStableFunc(rs, func(a, b *weftv1.TcpRoute) int { return cmp.Compare(anyPort(a), anyPort(b)) })
	}
	return out
}

// anyPort ranks a route without a port after those with one.
func anyPort(r *weftv1.TcpRoute) int {
	if r.Port == 0 {
		return 1
	}
	return 0
}

// tcpBackends compiles the backendRefs of a TCPRoute rule in namespace ns.
func tcpBackends(ns string, rule gatewayv1.TCPRouteRule) []*weftv1.Backend {
	out := make([]*weftv1.Backend, 0, len(rule.BackendRefs))
	for _, b := range rule.BackendRefs {
		out = append(out, meshBackend(ns, b))
	}
	return out
}

// servicePortNamed is the number of the port named name of Service s in
// cfg.
func servicePortNamed(cfg *api.Set, s serviceRef, name string) (uint32, bool) {
	for _, svc := range cfg.Services {
		if svc.Name != s.name || svc.Namespace != s.namespace {
			continue
		}
		for _, p := range svc.Spec.Ports {
			if p.Name == name {
				return uint32(p.Port), true
			}
		}
	}
	return 0, false
}

// updateTCPRoutes recompiles the TCP routes when a TCPRoute was added,
// removed or changed between r's configuration and cfg (or a Service, whose
// port names sectionNames resolve against), adding the parents, before and
// after, of the changed routes to affected.
func (r *Routing) updateTCPRoutes(n *Routing, cfg *api.Set, affected map[serviceRef]bool) {
	changed := slices.Concat(api.Changed(r.cfg.TCPRoutes, cfg.TCPRoutes))
	if oldSvc, curSvc := api.Changed(r.cfg.Services, cfg.Services); len(oldSvc)+len(curSvc) > 0 {
		changed = append(changed, cfg.TCPRoutes...)
	}
	if len(changed) == 0 {
		return
	}
	n.tcp = compileTCPRoutes(cfg)
	for _, tr := range changed {
		for _, ref := range tr.Spec.ParentRefs {
			if p, ok := serviceParent(tr.Namespace, ref); ok {
				affected[p] = true
			}
		}
	}
}
