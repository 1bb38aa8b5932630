package xdsgen

import (
	"maps"
	"slices"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
)

// Update returns the Routing of cfg (nil is an empty configuration),
// derived from r, which was compiled from an earlier configuration, and the
// sorted keys of the services whose Service resources may differ between
// the two: the parents, before and after, of every HTTPRoute and GRPCRoute
// that was added, removed or changed, and the targets, before and after, of
// every DestinationPolicy that was, and the Services whose weft.dev/mtls-mode
// annotation changed their mode, and the parents of every route that
// references a FaultInjection that was (fault.go). Only the routes of those parents are
// compiled again, so the cost is one pass over the routes and policies of
// both configurations plus the compilation of what changed.
//
// A MeshConfig change is not attributed to services: its default load
// balancer and mTLS mode apply to every service without a DestinationPolicy. It is
// rare, so Update then compiles cfg from scratch and reports all, with no
// keys: every Service resource may differ.
//
// An AuthorizationPolicy change is not attributed either: a policy without
// targetRef governs a whole namespace or, in the root namespace, the mesh
// (authz.go). Policies change rarely; Update compiles cfg from scratch and
// reports all.
//
// The rest of the configuration is not Update's to attribute: a Service
// resource changes the mesh.Service the resource is generated from, which
// mesh.Builder.ApplyConfig reports.
func (r *Routing) Update(cfg *api.Set) (next *Routing, keys []string, all bool) {
	if cfg == nil {
		cfg = &api.Set{}
	}
	if meshConfigChanged(r.cfg.MeshConfig, cfg.MeshConfig) {
		return NewRouting(cfg), nil, true
	}
	if old, cur := api.Changed(r.cfg.AuthorizationPolicies, cfg.AuthorizationPolicies); len(old)+len(cur) > 0 {
		return NewRouting(cfg), nil, true
	}
	if externalServicesChanged(r.cfg, cfg) { // egress.go
		return NewRouting(cfg), nil, true
	}
	n := *r
	n.cfg = cfg
	affected := map[serviceRef]bool{}

	parents := map[serviceRef]bool{}
	addParents := func(ns string, refs []gatewayv1.ParentReference) {
		for _, ref := range refs {
			if p, ok := serviceParent(ns, ref); ok {
				parents[p] = true
			}
		}
	}
	oldHTTP, curHTTP := api.Changed(r.cfg.HTTPRoutes, cfg.HTTPRoutes)
	for _, hr := range slices.Concat(oldHTTP, curHTTP) {
		addParents(hr.Namespace, hr.Spec.ParentRefs)
	}
	oldGRPC, curGRPC := api.Changed(r.cfg.GRPCRoutes, cfg.GRPCRoutes)
	for _, gr := range slices.Concat(oldGRPC, curGRPC) {
		addParents(gr.Namespace, gr.Spec.ParentRefs)
	}
	addFaultParents(r.cfg, cfg, parents) // fault.go
	if len(parents) > 0 {
		compiled := compileRoutes(cfg, parents)
		n.routes = maps.Clone(r.routes)
		for p := range parents {
			affected[p] = true
			key := p.key()
			if routes, ok := compiled[key]; ok {
				n.routes[key] = routes
			} else {
				delete(n.routes, key)
			}
		}
	}

	targets := map[serviceRef]bool{}
	oldDP, curDP := api.Changed(r.cfg.DestinationPolicies, cfg.DestinationPolicies)
	for _, dp := range slices.Concat(oldDP, curDP) {
		targets[policyTarget(dp)] = true
	}
	if len(targets) > 0 {
		n.breaker = compileBreakers(cfg) // breaker.go
		n.lbs = maps.Clone(r.lbs)
		for t := range targets {
			affected[t] = true
			delete(n.lbs, t.key())
		}
		// As in loadBalancers: of two policies for one service, the
		// last in the configuration's order wins.
		for _, dp := range cfg.DestinationPolicies {
			if t := policyTarget(dp); targets[t] {
				n.lbs[t.key()] = destinationLB(dp, n.defLB)
			}
		}
	}

	n.retries = r.updateRetries(cfg, targets) // retry.go
	r.updateTCPRoutes(&n, cfg, affected)      // tcp.go
	r.updateMTLS(&n, cfg, affected)
	r.updateObservability(&n, cfg, affected) // accesslog.go
	var jwtTargets []serviceRef
	n.jwt, jwtTargets = r.updateJWT(cfg) // requestauthn.go
	for _, t := range jwtTargets {
		affected[t] = true
	}

	for ref := range affected {
		keys = append(keys, ref.key())
	}
	slices.Sort(keys)
	return &n, keys, false
}

// meshConfigChanged reports whether the MeshConfig differs between two
// configurations.
func meshConfigChanged(prev, next *api.MeshConfig) bool {
	if prev == nil || next == nil {
		return prev != next
	}
	return !api.SameVersion(prev, next)
}
