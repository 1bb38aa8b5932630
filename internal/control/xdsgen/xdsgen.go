// Package xdsgen translates a mesh snapshot into weft's xDS resources. It is a
// pure function of the snapshot: no clock, no I/O, no shared state, so the
// same snapshot always yields the same resources (checked by golden files).
package xdsgen

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// Resources is the generated xDS state, keyed by resource name.
type Resources struct {
	Services  map[string]*weftv1.Service
	Endpoints map[string]*weftv1.Endpoints
}

// Generate builds every Service and Endpoints resource of the snapshot. Every
// service gets an Endpoints resource, empty when it has no ready workloads,
// so a proxy that asks for it learns that at once instead of waiting. It is
// made of the per-resource functions the xDS server calls for the services
// that changed.
func Generate(snap *mesh.Snapshot) Resources {
	out := Resources{
		Services:  make(map[string]*weftv1.Service, len(snap.Services)),
		Endpoints: make(map[string]*weftv1.Endpoints, len(snap.Services)),
	}
	routing := NewRouting(snap.Config)
	for _, key := range snap.Keys {
		s := snap.Services[key]
		out.Services[key] = routing.Service(s)
		out.Endpoints[key] = Endpoints(s, snap.Endpoints[key], nil)
	}
	return out
}

// Routing is what Service resources take from the stored configuration:
// the routes attached to each service, its load-balancing algorithm and
// its mutual-TLS mode.
// Compile it with NewRouting, or derive it from the Routing of an earlier
// configuration with Update; it is immutable.
type Routing struct {
	// cfg is the configuration compiled.
	cfg    *api.Set
	routes map[string][]*weftv1.Route
	lbs    map[string]lbPolicy // balancer.go
	defLB  lbPolicy
	// modes are the mutual-TLS modes Service annotations set, by service
	// key; defMode is the MeshConfig's, for every other service (mtls.go).
	modes   map[string]weftv1.MTLSMode
	defMode weftv1.MTLSMode
	jwt     map[string][]*weftv1.JwtRule // requestauthn.go
	authz   authzPolicies
	breaker map[string]breakerLimits // breaker.go
	// retries are the DestinationPolicy retry settings by service key;
	// retryOff is MeshConfig spec.defaults.retry.enabled false (retry.go).
	retries  map[string]serviceRetry
	retryOff bool
	obs      observability                 // accesslog.go
	tcp      map[string][]*weftv1.TcpRoute // tcp.go
	egress   *weftv1.Egress                // egress.go
}

// NewRouting compiles the routes and load-balancing policies of cfg (nil
// is an empty configuration).
func NewRouting(cfg *api.Set) *Routing {
	if cfg == nil {
		cfg = &api.Set{}
	}
	lbs, def := loadBalancers(cfg)
	modes, defMode := mtlsModes(cfg)
	return &Routing{cfg: cfg, routes: compileRoutes(cfg, nil), lbs: lbs, defLB: def, modes: modes, defMode: defMode, jwt: compileJWT(cfg, nil), authz: compileAuthz(cfg), breaker: compileBreakers(cfg),
		retries: compileRetries(cfg, nil), retryOff: defaultRetryOff(cfg), obs: compileObservability(cfg), tcp: compileTCPRoutes(cfg),
		egress: compileEgress(cfg)}
}

// Service builds the Service resource of s. Its routes are shared with
// other resources built from r and must not be modified.
func (r *Routing) Service(s *mesh.Service) *weftv1.Service {
	key := s.Key()
	lb, ok := r.lbs[key]
	if !ok {
		lb = r.defLB
	}
	svc := &weftv1.Service{
		Name:         s.Name,
		Namespace:    s.Namespace,
		Routes:       r.routes[key],
		LoadBalancer: lb.lb,
		MtlsMode:     r.mtlsMode(key),
		JwtRules:     r.jwt[key],
		// See authz.go.
		AuthzPolicies:    r.authz.forService(s.Name, s.Namespace),
		AuthzDefaultDeny: r.authz.defaultDeny,
		// See breaker.go.
		ConnectionLimits:    r.breaker[key].limits,
		AdaptiveConcurrency: r.breaker[key].adaptive,
		TcpRoutes:           r.tcp[key], // tcp.go
	}
	r.setRetry(svc, key) // retry.go
	lb.apply(svc)
	for _, p := range s.Ports {
		svc.Ports = append(svc.Ports, &weftv1.ServicePort{Name: p.Name, Port: uint32(p.Port), Protocol: portProtocol(p.Name, p.AppProtocol)})
	}
	r.obs.apply(svc, key)
	svc.Egress = r.egress // egress.go
	return svc
}

// Endpoints builds the Endpoints resource of service s from the workloads
// that serve it (the snapshot's Endpoints of s), in their order. Labels are
// shared with the workloads and must not be modified. While s has no
// workload, its pods without a sidecar (plain) are its endpoints, marked
// plaintext; once one pod of it has a sidecar, only the mesh endpoints
// serve it, so no call to a meshed service goes out in plaintext.
func Endpoints(s *mesh.Service, eps []*mesh.Workload, plain []mesh.PlainEndpoint) *weftv1.Endpoints {
	out := &weftv1.Endpoints{Service: s.Name, Namespace: s.Namespace}
	for _, w := range eps {
		out.Endpoints = append(out.Endpoints, &weftv1.Endpoint{
			Address:  w.Address,
			Identity: w.Identity,
			Workload: w.ID,
			Labels:   w.Labels,
		})
	}
	if len(eps) > 0 {
		return out
	}
	for _, p := range plain {
		id := "pod/" + s.Namespace + "/" + p.Pod
		if p.Pod == "" {
			id = "pod/" + s.Namespace + "/" + p.Address
		}
		out.Endpoints = append(out.Endpoints, &weftv1.Endpoint{Address: p.Address, Workload: id, Plaintext: true})
	}
	return out
}

func portProtocol(name string, appProtocol *string) string {
	p := name
	if appProtocol != nil {
		p = *appProtocol
	}
	p = strings.ToLower(p)
	for _, known := range []string{"grpc", "http2", "http", "tcp"} {
		if p == known || strings.HasPrefix(p, known+"-") {
			return known
		}
	}
	return ""
}

// policyTarget is the service a DestinationPolicy applies to.
func policyTarget(dp *api.DestinationPolicy) serviceRef {
	return serviceRef{dp.Spec.TargetRef.Name, dp.Namespace}
}

// flatRoute is one route match with what is needed to order it.
type flatRoute struct {
	route *weftv1.Route
	// group is the consumer namespace of the route, "" for a producer
	// route: routes are ordered within their group only.
	group string
	grpc  bool
	rank  matchRank
	// created, source ("<namespace>/<name>"), rule and matchIdx break ties.
	created  time.Time
	source   string
	rule     int
	matchIdx int
}

// matchRank is what Gateway API match precedence compares, most significant
// first; the greater rank wins. For an HTTPRoute match: path kind (exact 2,
// regular expression 1, prefix 0: the spec leaves the place of regular
// expressions to implementations, weft puts them between exact and prefix
// matches), characters of the path (or expression), method (1 or 0),
// header matches, query parameter matches. For a GRPCRoute match:
// an exact method match (1) before a regular expression or none (0),
// characters of the service, characters of the method, header matches.
type matchRank [5]int

// httpRank is the rank of an HTTPRoute match; a match without a path is a
// prefix match on "/", as the Gateway API defaults it. Header and query
// matches are counted once per name, as only the first entry of a name
// applies.
func httpRank(m gatewayv1.HTTPRouteMatch) matchRank {
	var k matchRank
	k[1] = 1 // PathPrefix "/"
	if m.Path != nil && m.Path.Value != nil {
		if m.Path.Type != nil {
			switch *m.Path.Type {
			case gatewayv1.PathMatchExact:
				k[0] = 2
			case gatewayv1.PathMatchRegularExpression:
				k[0] = 1
			}
		}
		k[1] = len(*m.Path.Value)
	}
	if m.Method != nil {
		k[2] = 1
	}
	k[3], k[4] = len(httpHeaderMatches(m.Headers)), len(queryMatches(m.QueryParams))
	return k
}

// grpcRank is the rank of a GRPCRoute match. Exact matches come before
// regular expressions (whose place the spec leaves to implementations:
// the characters of an expression say little about what it matches).
func grpcRank(m gatewayv1.GRPCRouteMatch) matchRank {
	var k matchRank
	if mm := m.Method; mm != nil {
		if mm.Type == nil || *mm.Type == gatewayv1.GRPCMethodMatchExact {
			k[0] = 1
		}
		if mm.Service != nil {
			k[1] = len(*mm.Service)
		}
		if mm.Method != nil {
			k[2] = len(*mm.Method)
		}
	}
	k[3] = len(grpcHeaderMatches(m.Headers))
	return k
}

// routeGroup is the group of a route in namespace ns attached to parent p:
// "" when it is a producer route (GAMMA: one in the service's namespace),
// ns when it is a consumer route.
func routeGroup(ns string, p serviceRef) string {
	if ns == p.namespace {
		return ""
	}
	return ns
}

// compileRoutes turns HTTPRoutes and GRPCRoutes attached to services (the
// GAMMA convention) into per-service route lists, one entry per match. The
// producer routes (in the service's namespace) come first, then the
// consumer routes of each other namespace, by namespace; each group is
// ordered by Gateway API match precedence (see precedes). It compiles the
// lists of the services in only, or of every service when only is nil.
func compileRoutes(cfg *api.Set, only map[serviceRef]bool) map[string][]*weftv1.Route {
	return compileAttached(cfg, func(ns string, ref gatewayv1.ParentReference, _ []gatewayv1.Hostname, _ string) []routeParent {
		p, ok := serviceParent(ns, ref)
		if !ok || only != nil && !only[p] {
			return nil
		}
		return []routeParent{{p.key(), routeGroup(ns, p)}}
	})
}

// routeParent is one list a route's matches join: the parent's key and
// the route's group in it (see routeGroup).
type routeParent struct{ key, group string }

// compileAttached compiles the routes into lists by the parents that
// parents returns for each parentRef of a route (given the route's
// namespace, hostnames and kind), each list ordered as compileRoutes says.
func compileAttached(cfg *api.Set, parents func(ns string, ref gatewayv1.ParentReference, hostnames []gatewayv1.Hostname, kind string) []routeParent) map[string][]*weftv1.Route {
	flat := map[string][]flatRoute{}
	for _, hr := range cfg.HTTPRoutes {
		for _, ref := range hr.Spec.ParentRefs {
			for _, rp := range parents(hr.Namespace, ref, hr.Spec.Hostnames, api.KindHTTPRoute) {
				parent, group := rp.key, rp.group
				for ri, rule := range hr.Spec.Rules {
					backends := httpBackends(hr.Namespace, rule.BackendRefs)
					backendWeftFilters(cfg, hr.Namespace, httpBackendWeftFilters(rule.BackendRefs), backends) // fault.go
					timeout := uint32(0)
					if rule.Timeouts != nil && rule.Timeouts.Request != nil {
						if d, err := time.ParseDuration(string(*rule.Timeouts.Request)); err == nil {
							timeout = uint32(d.Milliseconds())
						}
					}
					name := fmt.Sprintf("%s/%s/%d", hr.Namespace, hr.Name, ri)
					matches := rule.Matches
					if len(matches) == 0 {
						matches = []gatewayv1.HTTPRouteMatch{{}}
					}
					filters := httpRuleFilters(rule, backends)
					for mi, m := range matches {
						r := &weftv1.Route{Name: name, Matches: []*weftv1.RouteMatch{httpMatch(m)}, Backends: backends, TimeoutMs: timeout, ConsumerNamespace: group, SessionPersistence: sessionPersistence(name, rule.SessionPersistence)}
						filters.setOn(r)
						routeRetry(r, rule)                                                     // retry.go
						compileWeftFilters(cfg, hr.Namespace, httpWeftFilters(rule.Filters), r) // fault.go
						corsExtAuth(hr.Namespace, rule, r)                                      // cors.go
						flat[parent] = append(flat[parent], flatRoute{route: r, group: group, rank: httpRank(m),
							created: hr.CreationTimestamp.Time, source: hr.Namespace + "/" + hr.Name, rule: ri, matchIdx: mi})
					}
				}
			}
		}
	}
	for _, gr := range cfg.GRPCRoutes {
		for _, ref := range gr.Spec.ParentRefs {
			for _, rp := range parents(gr.Namespace, ref, gr.Spec.Hostnames, api.KindGRPCRoute) {
				parent, group := rp.key, rp.group
				for ri, rule := range gr.Spec.Rules {
					var refs []gatewayv1.HTTPBackendRef
					for _, b := range rule.BackendRefs {
						refs = append(refs, gatewayv1.HTTPBackendRef{BackendRef: b.BackendRef})
					}
					backends := httpBackends(gr.Namespace, refs)
					backendWeftFilters(cfg, gr.Namespace, grpcBackendWeftFilters(rule.BackendRefs), backends) // fault.go
					name := fmt.Sprintf("%s/%s/%d", gr.Namespace, gr.Name, ri)
					matches := rule.Matches
					if len(matches) == 0 {
						matches = []gatewayv1.GRPCRouteMatch{{}}
					}
					filters := grpcRuleFilters(rule, backends)
					for mi, m := range matches {
						r := &weftv1.Route{Name: name, Matches: []*weftv1.RouteMatch{grpcMatch(m)}, Backends: backends, ConsumerNamespace: group, SessionPersistence: sessionPersistence(name, rule.SessionPersistence)}
						filters.setOn(r)
						compileWeftFilters(cfg, gr.Namespace, grpcWeftFilters(rule.Filters), r) // fault.go
						flat[parent] = append(flat[parent], flatRoute{route: r, group: group, grpc: true, rank: grpcRank(m),
							created: gr.CreationTimestamp.Time, source: gr.Namespace + "/" + gr.Name, rule: ri, matchIdx: mi})
					}
				}
			}
		}
	}
	out := make(map[string][]*weftv1.Route, len(flat))
	for key, rs := range flat {
		first := firstKinds(rs)
		sort.SliceStable(rs, func(i, j int) bool { return precedes(rs[i], rs[j], first) })
		list := make([]*weftv1.Route, len(rs))
		for i, r := range rs {
			list[i] = r.route
		}
		out[key] = list
	}
	return out
}

// firstKinds reports, for each group of routes of one parent, whether its
// GRPCRoutes come before its HTTPRoutes. The Gateway API forbids merging
// the two kinds' precedence; the matches of the kind of the group's oldest
// route (by creation, then "<namespace>/<name>", HTTPRoute on a tie) come
// first, each kind ordered by its own rules.
func firstKinds(rs []flatRoute) map[string]bool {
	oldest := map[string]flatRoute{}
	for _, r := range rs {
		o, ok := oldest[r.group]
		if !ok || olderRoute(r, o) {
			oldest[r.group] = r
		}
	}
	out := make(map[string]bool, len(oldest))
	for g, r := range oldest {
		out[g] = r.grpc
	}
	return out
}

// olderRoute reports whether the route of a is older than that of b.
func olderRoute(a, b flatRoute) bool {
	if !a.created.Equal(b.created) {
		return a.created.Before(b.created)
	}
	if a.source != b.source {
		return a.source < b.source
	}
	return !a.grpc && b.grpc
}

// precedes orders route matches of one parent: by group (producer routes,
// then consumer routes by namespace), by kind (grpcFirst, by group: see
// firstKinds), by rank (see matchRank), then oldest route, route
// "<namespace>/<name>", rule order and match order, as the Gateway API
// defines precedence for HTTPRoute and GRPCRoute.
func precedes(a, b flatRoute, grpcFirst map[string]bool) bool {
	if a.group != b.group {
		return a.group < b.group
	}
	if a.grpc != b.grpc {
		return a.grpc == grpcFirst[a.group]
	}
	for i := range a.rank {
		if a.rank[i] != b.rank[i] {
			return a.rank[i] > b.rank[i]
		}
	}
	if !a.created.Equal(b.created) {
		return a.created.Before(b.created)
	}
	if a.source != b.source {
		return a.source < b.source
	}
	if a.rule != b.rule {
		return a.rule < b.rule
	}
	return a.matchIdx < b.matchIdx
}

// serviceRef names a service.
type serviceRef struct{ name, namespace string }

// key is the service's resource name.
func (r serviceRef) key() string { return weftv1.ResourceName(r.name, r.namespace) }

// serviceParent returns the Service that parent reference p of a route in
// namespace ns attaches it to, if p is a Service.
func serviceParent(ns string, p gatewayv1.ParentReference) (serviceRef, bool) {
	// A Service parent is core/v1: group "" (Gateway API's default group
	// for a nil pointer is its own).
	if p.Kind == nil || string(*p.Kind) != "Service" || p.Group == nil || (*p.Group != "" && *p.Group != "core") {
		return serviceRef{}, false
	}
	if p.Namespace != nil {
		ns = string(*p.Namespace)
	}
	return serviceRef{string(p.Name), ns}, true
}

// httpBackends compiles the backendRefs of a rule of a route in namespace
// ns. A rule without backendRefs still gets a route: as the Gateway API
// requires, the requests it matches are answered 500 (a backend with
// fail_status) rather than falling through to another rule.
func httpBackends(ns string, refs []gatewayv1.HTTPBackendRef) []*weftv1.Backend {
	if len(refs) == 0 {
		return []*weftv1.Backend{noBackends()}
	}
	var out []*weftv1.Backend
	for _, b := range refs {
		out = append(out, meshBackend(ns, b.BackendRef))
	}
	return out
}

// meshBackend is backendRef b of a route in namespace ns: its service, in
// ns unless it names another namespace, and its weight (default 1).
func meshBackend(ns string, b gatewayv1.BackendRef) *weftv1.Backend {
	bns := ns
	if b.Namespace != nil {
		bns = string(*b.Namespace)
	}
	w := uint32(1)
	if b.Weight != nil {
		w = uint32(*b.Weight)
	}
	return &weftv1.Backend{Service: string(b.Name), Namespace: bns, Weight: w}
}

// noBackends is the backend of a rule without backendRefs.
func noBackends() *weftv1.Backend {
	return &weftv1.Backend{Weight: 1, FailStatus: 500, FailReason: "the rule has no backendRefs"}
}

func httpMatch(m gatewayv1.HTTPRouteMatch) *weftv1.RouteMatch {
	out := &weftv1.RouteMatch{Headers: httpHeaderMatches(m.Headers), QueryParams: queryMatches(m.QueryParams)}
	if m.Path != nil && m.Path.Value != nil {
		kind := weftv1.PathMatch_PREFIX
		if m.Path.Type != nil {
			switch *m.Path.Type {
			case gatewayv1.PathMatchExact:
				kind = weftv1.PathMatch_EXACT
			case gatewayv1.PathMatchRegularExpression:
				kind = weftv1.PathMatch_REGEX
			}
		}
		out.Path = &weftv1.PathMatch{Kind: kind, Value: *m.Path.Value}
	}
	if m.Method != nil {
		out.Method = string(*m.Method)
	}
	return out
}

// grpcMatch compiles a GRPCRoute match onto the request path
// "/<service>/<method>": an exact service and method is an exact path, an
// exact service alone a path prefix, and everything else (a method alone,
// regular expressions) a regular expression over the path.
func grpcMatch(m gatewayv1.GRPCRouteMatch) *weftv1.RouteMatch {
	out := &weftv1.RouteMatch{Headers: grpcHeaderMatches(m.Headers)}
	mm := m.Method
	if mm == nil || (mm.Service == nil || *mm.Service == "") && (mm.Method == nil || *mm.Method == "") {
		return out
	}
	regex := mm.Type != nil && *mm.Type == gatewayv1.GRPCMethodMatchRegularExpression
	svc, method := "", ""
	if mm.Service != nil {
		svc = *mm.Service
	}
	if mm.Method != nil {
		method = *mm.Method
	}
	switch {
	case !regex && svc != "" && method != "":
		out.Path = &weftv1.PathMatch{Kind: weftv1.PathMatch_EXACT, Value: "/" + svc + "/" + method}
	case !regex && svc != "":
		out.Path = &weftv1.PathMatch{Kind: weftv1.PathMatch_PREFIX, Value: "/" + svc}
	default:
		part := func(v string) string {
			switch {
			case v == "":
				return "[^/]+"
			case regex:
				return "(?:" + v + ")"
			}
			return regexp.QuoteMeta(v)
		}
		out.Path = &weftv1.PathMatch{Kind: weftv1.PathMatch_REGEX, Value: "/" + part(svc) + "/" + part(method)}
	}
	return out
}

// httpHeaderMatches compiles header matches; of several with one name
// (case-insensitive), only the first applies, as the Gateway API requires.
func httpHeaderMatches(hs []gatewayv1.HTTPHeaderMatch) []*weftv1.HeaderMatch {
	var out []*weftv1.HeaderMatch
	for _, h := range hs {
		if !hasHeader(out, string(h.Name)) {
			out = append(out, &weftv1.HeaderMatch{Name: string(h.Name), Value: h.Value, Regex: h.Type != nil && *h.Type == gatewayv1.HeaderMatchRegularExpression})
		}
	}
	return out
}

// grpcHeaderMatches is httpHeaderMatches for a GRPCRoute.
func grpcHeaderMatches(hs []gatewayv1.GRPCHeaderMatch) []*weftv1.HeaderMatch {
	var out []*weftv1.HeaderMatch
	for _, h := range hs {
		if !hasHeader(out, string(h.Name)) {
			out = append(out, &weftv1.HeaderMatch{Name: string(h.Name), Value: h.Value, Regex: h.Type != nil && *h.Type == gatewayv1.GRPCHeaderMatchRegularExpression})
		}
	}
	return out
}

func hasHeader(hs []*weftv1.HeaderMatch, name string) bool {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return true
		}
	}
	return false
}

// queryMatches compiles query parameter matches; of several with one name
// (case-sensitive), only the first applies.
func queryMatches(qs []gatewayv1.HTTPQueryParamMatch) []*weftv1.QueryParamMatch {
	var out []*weftv1.QueryParamMatch
	seen := map[string]bool{}
	for _, q := range qs {
		if name := string(q.Name); !seen[name] {
			seen[name] = true
			out = append(out, &weftv1.QueryParamMatch{Name: name, Value: q.Value, Regex: q.Type != nil && *q.Type == gatewayv1.QueryParamMatchRegularExpression})
		}
	}
	return out
}
