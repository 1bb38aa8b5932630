// Package config is the proxy's validated, immutable view of the mesh: the
// services it can call, their routes and endpoints. The xDS client derives a
// new Config from the previous one and the resources of each response with
// Update (Build is the same compilation from scratch) and swaps it in
// atomically; the request path only ever reads one Config.
package config

import (
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"weft.dev/weft/internal/proxy/accesslog"
	"weft.dev/weft/internal/proxy/adaptive"
	"weft.dev/weft/internal/proxy/authz"
	"weft.dev/weft/internal/proxy/breaker"
	"weft.dev/weft/internal/proxy/extauth"
	"weft.dev/weft/internal/proxy/fault"
	"weft.dev/weft/internal/proxy/jwtauthn"
	"weft.dev/weft/internal/proxy/mirror"
	"weft.dev/weft/internal/proxy/retry"
	"weft.dev/weft/internal/proxy/route"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// LoadBalancer is the endpoint-picking algorithm of a service.
type LoadBalancer int

// Load-balancing algorithms.
const (
	RoundRobin LoadBalancer = iota
	Random
	LeastRequest
)

// Config is one immutable snapshot of the mesh as this proxy sees it.
type Config struct {
	// Version identifies the snapshot (for config dumps and metrics).
	Version string
	// Services by key "<name>.<namespace>".
	Services map[string]*Service
	// Endpoints by service key. A missing key means the proxy has not
	// subscribed to (or not yet received) that service's endpoints; a
	// present key with an empty slice means the service has none.
	Endpoints map[string][]Endpoint
	// Namespaces that hold at least one service.
	Namespaces map[string]bool
	// Egress is the outbound traffic policy and the ExternalServices
	// (egress.go); never nil once built.
	Egress *Egress
}

// Service is a mesh service and its compiled routes.
type Service struct {
	Key       string
	Name      string
	Namespace string
	// Ports the service accepts; empty means any.
	Ports []Port
	// Routes are the producer routes (GAMMA: routes in the service's own
	// namespace), in match precedence order. They apply to callers in
	// every namespace that has no ConsumerRoutes.
	Routes []Route
	// ConsumerRoutes are, by caller namespace, the consumer routes (routes
	// in that namespace attached to this service), in match precedence
	// order. For callers in that namespace they replace Routes.
	ConsumerRoutes map[string][]Route
	LoadBalancer   LoadBalancer
	Balancer       *Balancer // balancer.go; nil: no hashing, no outlier detection
	// PermissiveMTLS is mTLS mode PERMISSIVE: the inbound listeners of the
	// service's workloads accept plaintext HTTP as well as mutual TLS.
	PermissiveMTLS bool
	// JWT verifies the tokens of the service's inbound requests (its
	// RequestAuthentications); nil when it has none.
	JWT *jwtauthn.Verifier
	// Authz is the compiled AuthorizationPolicies that may govern the
	// service's inbound requests (before selection by workload labels,
	// see authz.View); nil when it has none and the mesh default allows.
	Authz *authz.Set
	// Breaker and Adaptive are the service's connection limits and
	// adaptive concurrency as a destination (breaker.go); nil when unset.
	Breaker  *breaker.Limits
	Adaptive *adaptive.Config
	// Retry is how requests to the service are retried (retry.go).
	Retry Retry
	// AccessLog is which of the service's requests get an access log line
	// (observe.go).
	AccessLog accesslog.Mode
	// TapBodies: the service opted in to showing bodies to taps.
	TapBodies bool
	// TraceSampling is the mesh's trace sampling ratio, -1 when the
	// MeshConfig sets none.
	TraceSampling float64
	// TCPRoutes split the opaque TCP connections to the service (tcp.go).
	TCPRoutes []TCPRoute

	egressSrc *weftv1.Egress // egress.go
	// TraceEndpoint is the mesh's OTLP collector (MeshConfig
	// spec.tracing.otlpEndpoint), "" for none.
	TraceEndpoint string
}

// Port is one declared service port.
type Port struct {
	Name     string
	Number   uint32
	Protocol string
}

// Route is one compiled route entry (one match of an HTTPRoute or
// GRPCRoute rule): the route stage's matches, backends and filters
// (route.Route), plus what the other stages compile for it.
type Route struct {
	route.Route
	// Timeout bounds the whole request; zero means none.
	Timeout time.Duration
	// BackendTimeout bounds each attempt; zero means none. Retry, when
	// set, replaces the destination's retry policy (retry.go).
	BackendTimeout time.Duration
	Retry          *retry.Policy
	Session        *SessionPersistence // balancer.go

	// Fault is the route's fault injection (fault.go); nil for none.
	Fault *fault.Fault
	// Mirrors are the services a copy of the route's requests goes to.
	Mirrors []mirror.Target
	// BackendFaults are the fault injection and mirrors of each backend
	// (by Backend.Index, fault.go); nil when no backend has any.
	BackendFaults []BackendFault
	// ExtAuth is the route's external authorization (extauth.go); nil for none.
	ExtAuth *extauth.Auth
	// BackendExtAuth is each backend's (by Backend.Index); nil when none
	// has one.
	BackendExtAuth []*extauth.Auth
	// PeerHeader is the value of the x-weft-route header the caller's
	// proxy sends the peer, []string{Name}, built once and shared
	// (read-only) by every request.
	PeerHeader []string
}

// Backend is a weighted backend of a route (see route.Backend).
type Backend = route.Backend

// Endpoint is one peer proxy inbound listener, or a pod without a sidecar
// (Plaintext).
type Endpoint struct {
	Address  string
	Identity spiffeid.ID
	Workload string
	Labels   map[string]string
	// Plaintext: the proxy speaks plain HTTP or TCP to Address, with no
	// identity to check (weftv1.Endpoint.plaintext).
	Plaintext bool
}

// Empty returns a Config with no services.
func Empty() *Config {
	return &Config{Services: map[string]*Service{}, Endpoints: map[string][]Endpoint{}, Namespaces: map[string]bool{}}
}

// Build validates xDS resources and compiles them into a Config. The error
// names the resource and the field that is wrong, for the NACK message.
func Build(version string, services []*weftv1.Service, endpoints []*weftv1.Endpoints) (*Config, error) {
	c := &Config{
		Version:    version,
		Services:   make(map[string]*Service, len(services)),
		Endpoints:  make(map[string][]Endpoint, len(endpoints)),
		Namespaces: map[string]bool{},
	}
	for _, s := range services {
		svc, err := buildService(s)
		if err != nil {
			return nil, fmt.Errorf("Service %q: %w", weftv1.ResourceName(s.GetName(), s.GetNamespace()), err)
		}
		if _, dup := c.Services[svc.Key]; dup {
			return nil, fmt.Errorf("Service %q: duplicate", svc.Key)
		}
		c.Services[svc.Key] = svc
		c.Namespaces[svc.Namespace] = true
	}
	eg, err := buildEgress(nil, c) // egress.go
	if err != nil {
		return nil, fmt.Errorf("Service egress: %w", err)
	}
	c.Egress = eg
	for _, e := range endpoints {
		key := weftv1.ResourceName(e.GetService(), e.GetNamespace())
		eps, err := buildEndpoints(e)
		if err != nil {
			return nil, fmt.Errorf("Endpoints %q: %w", key, err)
		}
		c.Endpoints[key] = eps
	}
	return c, nil
}

// Delta is a change to the resources behind a Config, keyed by xDS resource
// name ("<name>.<namespace>", the same as the service key).
type Delta struct {
	Services         map[string]*weftv1.Service
	RemovedServices  []string
	Endpoints        map[string]*weftv1.Endpoints
	RemovedEndpoints []string
}

// Update returns the Config that Build would make from prev's resources
// with d applied, compiling only the resources in d and sharing every other
// entry with prev, which is left unchanged. Each resource's name must match
// its content. A push of one resource to a proxy that knows hundreds thus
// costs one compiled resource, not a rebuild of all of them.
func (prev *Config) Update(version string, d Delta) (*Config, error) {
	c, rejected := prev.UpdateEach(version, d)
	if rejected != nil {
		return nil, rejected
	}
	return c, nil
}

func servicesComeOrGo(prev *Config, d Delta) bool {
	for _, name := range d.RemovedServices {
		if _, ok := prev.Services[name]; ok {
			return true
		}
	}
	for name := range d.Services {
		if _, ok := prev.Services[name]; !ok {
			return true
		}
	}
	return false
}

// buildService compiles a Service resource; weftv1.ValidateService, which
// the control plane runs too, decides whether it is valid.
func buildService(s *weftv1.Service) (*Service, error) {
	if err := weftv1.ValidateService(s); err != nil {
		return nil, err
	}
	svc := &Service{
		Key:          weftv1.ResourceName(s.GetName(), s.GetNamespace()),
		Name:         s.GetName(),
		Namespace:    s.GetNamespace(),
		LoadBalancer: LoadBalancer(s.GetLoadBalancer()),
		Balancer:     buildBalancer(s),

		PermissiveMTLS: s.GetMtlsMode() == weftv1.MTLSMode_MTLS_PERMISSIVE,
		Retry:          buildServiceRetry(s), // retry.go
	}
	for _, p := range s.GetPorts() {
		svc.Ports = append(svc.Ports, Port{Name: p.GetName(), Number: p.GetPort(), Protocol: p.GetProtocol()})
	}
	buildBreaker(svc, s) // breaker.go
	// TCP routes: tcp.go.
	if err := buildTCPRoutes(svc, s); err != nil {
		return nil, err
	}
	for i, r := range s.GetRoutes() {
		rt, err := buildRoute(r)
		if err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		if ns := r.GetConsumerNamespace(); ns != "" {
			if svc.ConsumerRoutes == nil {
				svc.ConsumerRoutes = map[string][]Route{}
			}
			svc.ConsumerRoutes[ns] = append(svc.ConsumerRoutes[ns], rt)
			continue
		}
		svc.Routes = append(svc.Routes, rt)
	}
	if rules := s.GetJwtRules(); len(rules) > 0 {
		v, err := jwtauthn.Compile(jwtauthn.RulesFromProto(rules))
		if err != nil {
			return nil, fmt.Errorf("jwt_rules: %w", err)
		}
		svc.JWT = v
	}
	if len(s.GetAuthzPolicies()) > 0 || s.GetAuthzDefaultDeny() {
		set, err := authz.Compile(s.GetAuthzPolicies(), s.GetAuthzDefaultDeny())
		if err != nil {
			return nil, err
		}
		svc.Authz = set
	}
	buildObservability(svc, s)
	svc.egressSrc = s.GetEgress()
	return svc, nil
}

func buildRoute(r *weftv1.Route) (Route, error) {
	rt, err := route.Compile(r)
	if err != nil {
		return Route{}, err
	}
	out := Route{Route: rt, Timeout: time.Duration(r.GetTimeoutMs()) * time.Millisecond}
	buildRouteRetry(&out, r) // retry.go
	out.Session = buildSession(r)
	buildFaultMirror(&out, r) // fault.go
	buildExtAuth(&out, r)     // extauth.go
	out.PeerHeader = []string{rt.Name}
	return out, nil
}

func buildEndpoints(e *weftv1.Endpoints) ([]Endpoint, error) {
	if err := weftv1.ValidateEndpoints(e); err != nil {
		return nil, err
	}
	eps := make([]Endpoint, 0, len(e.GetEndpoints()))
	for _, ep := range e.GetEndpoints() {
		id, _ := spiffeid.FromString(ep.GetIdentity()) // checked by ValidateEndpoints; zero for plaintext
		eps = append(eps, Endpoint{Address: ep.GetAddress(), Identity: id, Workload: ep.GetWorkload(), Labels: ep.GetLabels(), Plaintext: ep.GetPlaintext()})
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].Address < eps[j].Address })
	return eps, nil
}

// authority is a request authority split into the parts name resolution
// uses.
type authority struct {
	name, namespace string // namespace "" when the host has one label
	port            uint32 // 0 when absent
	svcDomain       bool   // the host ended in .svc or .svc.cluster.local
	ok              bool   // at most name.namespace after the suffix
}

func parseAuthority(a string) authority {
	host := a
	var out authority
	// SplitHostPort allocates an error for a host without a port, the
	// common case here; only call it when there may be one.
	if strings.IndexByte(a, ':') >= 0 {
		if h, p, err := net.SplitHostPort(a); err == nil {
			host = h
			if n, err := strconv.ParseUint(p, 10, 16); err == nil {
				out.port = uint32(n)
			}
		}
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, suffix := range []string{".svc.cluster.local", ".svc"} {
		if strings.HasSuffix(host, suffix) {
			host, out.svcDomain = strings.TrimSuffix(host, suffix), true
			break
		}
	}
	name, ns, _ := strings.Cut(host, ".")
	out.name, out.namespace = name, ns
	out.ok = name != "" && !strings.Contains(ns, ".")
	return out
}

// Resolve maps a request authority ("orders", "orders.shop:8080",
// "orders.shop.svc.cluster.local") to a mesh service. Names without a
// namespace are looked up in defaultNamespace. It returns nil when the host is
// not a mesh service (the caller passes such traffic through).
func (c *Config) Resolve(authority, defaultNamespace string) *Service {
	a := parseAuthority(authority)
	if !a.ok {
		return nil
	}
	ns := a.namespace
	if ns == "" {
		ns = defaultNamespace
	}
	svc := c.Services[a.name+"."+ns]
	if svc == nil || !svc.acceptsPort(a.port) {
		return nil
	}
	return svc
}

// MeshName reports whether an authority that Resolve did not find is
// nevertheless a name in the mesh's namespace: "<name>.<namespace>" for a
// namespace that has services, or anything under ".svc" or
// ".svc.cluster.local". Such names are mistyped or not yet registered mesh
// services and must not leak out of the mesh. It returns "<name>.<namespace>".
func (c *Config) MeshName(authority string) (string, bool) {
	a := parseAuthority(authority)
	if !a.ok || a.namespace == "" || (!a.svcDomain && !c.Namespaces[a.namespace]) {
		return "", false
	}
	return a.name + "." + a.namespace, true
}

func (s *Service) acceptsPort(port uint32) bool {
	if port == 0 || port == 80 || len(s.Ports) == 0 {
		return true
	}
	for _, p := range s.Ports {
		if p.Number == port {
			return true
		}
	}
	return false
}

// RoutesFor returns the routes that apply to a caller in namespace ns
// (GAMMA): the consumer routes of ns if it has any, else the producer
// routes. Empty means the caller's traffic goes to the service itself.
func (s *Service) RoutesFor(ns string) []Route {
	if len(s.ConsumerRoutes) > 0 {
		if rs, ok := s.ConsumerRoutes[ns]; ok {
			return rs
		}
	}
	return s.Routes
}

// Match returns the first route of RoutesFor(callerNamespace) whose
// matches accept r, or nil when none does (the caller answers 404 when
// RoutesFor is not empty, and sends the request to the service itself when
// it is). The routes are in match precedence order, so the first that
// accepts r is the best match.
func (s *Service) Match(r *http.Request, callerNamespace string) *Route {
	routes := s.RoutesFor(callerNamespace)
	for i := range routes {
		if routes[i].Accepts(r) {
			return &routes[i]
		}
	}
	return nil
}
