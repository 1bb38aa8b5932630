package xdsgen

import (
	"fmt"
	"math"
	"time"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// routeFilter is what fault.go translates of one route rule filter: an
// ExtensionRef (to a FaultInjection: the API refuses any other kind) or a
// RequestMirror. HTTPRoute and GRPCRoute filters share these fields.
type routeFilter struct {
	ext    *gatewayv1.LocalObjectReference
	mirror *gatewayv1.HTTPRequestMirrorFilter
}

func httpWeftFilters(fs []gatewayv1.HTTPRouteFilter) []routeFilter {
	var out []routeFilter
	for _, f := range fs {
		if f.ExtensionRef != nil || f.RequestMirror != nil {
			out = append(out, routeFilter{f.ExtensionRef, f.RequestMirror})
		}
	}
	return out
}

func grpcWeftFilters(fs []gatewayv1.GRPCRouteFilter) []routeFilter {
	var out []routeFilter
	for _, f := range fs {
		if f.ExtensionRef != nil || f.RequestMirror != nil {
			out = append(out, routeFilter{f.ExtensionRef, f.RequestMirror})
		}
	}
	return out
}

// compileFilters sets the fault and mirrors of r, a compiled match of a
// rule of a route in namespace ns with filters fs. An ExtensionRef to a
// FaultInjection that does not exist is not skipped: as the Gateway API
// requires for a custom filter that cannot be resolved, the rule's
// requests are answered 500 (its only backend fails with 500).
func compileWeftFilters(cfg *api.Set, ns string, fs []routeFilter, r *weftv1.Route) {
	for _, f := range fs {
		if f.ext != nil {
			fi := findFault(cfg, ns, string(f.ext.Name))
			if fi == nil {
				r.Backends = []*weftv1.Backend{{Weight: 1, FailStatus: 500,
					FailReason: fmt.Sprintf("its ExtensionRef filter names FaultInjection %s/%s, which does not exist", ns, f.ext.Name)}}
				r.Fault = nil
				continue
			}
			r.Fault = FaultInjection(fi)
		}
		if m := f.mirror; m != nil {
			r.Mirrors = append(r.Mirrors, requestMirror(ns, m))
		}
	}
}

// requestMirror compiles a RequestMirror filter of a route in namespace ns.
func requestMirror(ns string, m *gatewayv1.HTTPRequestMirrorFilter) *weftv1.RequestMirror {
	bns := ns
	if m.BackendRef.Namespace != nil {
		bns = string(*m.BackendRef.Namespace)
	}
	return &weftv1.RequestMirror{Service: string(m.BackendRef.Name), Namespace: bns, PerMillion: mirrorShare(m)}
}

// httpBackendWeftFilters are the fault and mirror filters of each
// backendRef of an HTTPRoute rule, in order.
func httpBackendWeftFilters(refs []gatewayv1.HTTPBackendRef) [][]routeFilter {
	out := make([][]routeFilter, len(refs))
	for j, b := range refs {
		out[j] = httpWeftFilters(b.Filters)
	}
	return out
}

// grpcBackendWeftFilters is httpBackendWeftFilters for a GRPCRoute rule.
func grpcBackendWeftFilters(refs []gatewayv1.GRPCBackendRef) [][]routeFilter {
	out := make([][]routeFilter, len(refs))
	for j, b := range refs {
		out[j] = grpcWeftFilters(b.Filters)
	}
	return out
}

// backendWeftFilters sets the fault and mirrors of each of backends
// (compiled from a rule's backendRefs, in order) from fs, the filters of
// the backendRefs, for a route in namespace ns. As on a rule, a backendRef
// whose ExtensionRef names a FaultInjection that does not exist fails its
// share of the requests with 500.
func backendWeftFilters(cfg *api.Set, ns string, fs [][]routeFilter, backends []*weftv1.Backend) {
	if len(fs) != len(backends) {
		return // a rule without backendRefs
	}
	for j, b := range backends {
		for _, f := range fs[j] {
			if f.ext != nil {
				fi := findFault(cfg, ns, string(f.ext.Name))
				if fi == nil {
					b.FailStatus, b.Fault = 500, nil
					b.FailReason = fmt.Sprintf("its ExtensionRef filter names FaultInjection %s/%s, which does not exist", ns, f.ext.Name)
					continue
				}
				b.Fault = FaultInjection(fi)
			}
			if m := f.mirror; m != nil {
				b.Mirrors = append(b.Mirrors, requestMirror(ns, m))
			}
		}
	}
}

// flatten joins the filter lists of a rule and of its backendRefs.
func flatten(rule []routeFilter, backends [][]routeFilter) []routeFilter {
	for _, fs := range backends {
		rule = append(rule, fs...)
	}
	return rule
}

// findFault returns the FaultInjection ns/name of cfg, or nil.
func findFault(cfg *api.Set, ns, name string) *api.FaultInjection {
	for _, f := range cfg.FaultInjections {
		if f.Namespace == ns && f.Name == name {
			return f
		}
	}
	return nil
}

// FaultInjection compiles one (validated) FaultInjection.
func FaultInjection(f *api.FaultInjection) *weftv1.FaultInjection {
	out := &weftv1.FaultInjection{Name: f.Namespace + "/" + f.Name}
	if d := f.Spec.Delay; d != nil {
		dur, _ := time.ParseDuration(d.FixedDelay) // validated
		out.Delay = &weftv1.FaultDelay{DelayMs: uint32(dur.Milliseconds()), PerMillion: percentShare(d.Percentage)}
	}
	if a := f.Spec.Abort; a != nil {
		out.Abort = &weftv1.FaultAbort{HttpStatus: uint32(a.HTTPStatus), GrpcStatus: api.GRPCCodes[a.GRPCStatus], PerMillion: percentShare(a.Percentage)}
	}
	if m := f.Spec.Match; m != nil {
		for _, h := range m.Headers {
			out.Headers = append(out.Headers, &weftv1.HeaderMatch{Name: h.Name, Value: h.Value})
		}
	}
	return out
}

// percentShare converts an optional percentage (nil: 100) to parts per
// million.
func percentShare(p *float64) uint32 {
	if p == nil {
		return weftv1.PerMillion
	}
	return uint32(math.Round(*p * weftv1.PerMillion / 100))
}

// mirrorShare is the share of requests a RequestMirror filter mirrors, in
// parts per million: percent, fraction (default denominator 100) or, with
// neither, all.
func mirrorShare(m *gatewayv1.HTTPRequestMirrorFilter) uint32 {
	switch {
	case m.Percent != nil:
		return uint32(*m.Percent) * (weftv1.PerMillion / 100)
	case m.Fraction != nil:
		den := int64(100)
		if m.Fraction.Denominator != nil {
			den = int64(*m.Fraction.Denominator)
		}
		return uint32(int64(m.Fraction.Numerator) * weftv1.PerMillion / den)
	}
	return weftv1.PerMillion
}

// addFaultParents adds to parents the Service parents of every route, in
// prev or cur, with a rule that references a FaultInjection that changed
// between the two, so that Update recompiles their routes.
func addFaultParents(prev, cur *api.Set, parents map[serviceRef]bool) {
	old, next := api.Changed(prev.FaultInjections, cur.FaultInjections)
	if len(old)+len(next) == 0 {
		return
	}
	changed := map[api.Key]bool{}
	for _, f := range old {
		changed[api.KeyOf(f)] = true
	}
	for _, f := range next {
		changed[api.KeyOf(f)] = true
	}
	refers := func(ns string, fs []routeFilter) bool {
		for _, f := range fs {
			if f.ext != nil && changed[api.Key{Kind: api.KindFaultInjection, Namespace: ns, Name: string(f.ext.Name)}] {
				return true
			}
		}
		return false
	}
	add := func(ns string, refs []gatewayv1.ParentReference) {
		for _, ref := range refs {
			if p, ok := serviceParent(ns, ref); ok {
				parents[p] = true
			}
		}
	}
	for _, set := range []*api.Set{prev, cur} {
		for _, hr := range set.HTTPRoutes {
			for _, rule := range hr.Spec.Rules {
				if refers(hr.Namespace, flatten(httpWeftFilters(rule.Filters), httpBackendWeftFilters(rule.BackendRefs))) {
					add(hr.Namespace, hr.Spec.ParentRefs)
					break
				}
			}
		}
		for _, gr := range set.GRPCRoutes {
			for _, rule := range gr.Spec.Rules {
				if refers(gr.Namespace, flatten(grpcWeftFilters(rule.Filters), grpcBackendWeftFilters(rule.BackendRefs))) {
					add(gr.Namespace, gr.Spec.ParentRefs)
					break
				}
			}
		}
	}
}
