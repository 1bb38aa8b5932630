package weftv1

import (
	"fmt"
	"net"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// MaxBackendWeight bounds the weight of one backend (the Gateway API's
// limit), so that the weights of a route always sum within a uint32.
const MaxBackendWeight = 1000000

// ValidateService reports whether a proxy can compile s. It is the one
// definition of a valid Service resource: the proxy's compiler runs it on
// every resource it receives and the control plane runs it on the
// resources a configuration generates before accepting the configuration,
// so what the API accepts a proxy never rejects. The error names the field,
// e.g. "routes[2]: backends[0].weight: 2000000 exceeds 1000000".
func ValidateService(s *Service) error {
	if s.GetName() == "" {
		return fmt.Errorf("name: must not be empty")
	}
	if s.GetNamespace() == "" {
		return fmt.Errorf("namespace: must not be empty")
	}
	if _, ok := LoadBalancer_name[int32(s.GetLoadBalancer())]; !ok {
		return fmt.Errorf("load_balancer: unknown algorithm %d", s.GetLoadBalancer())
	}
	if _, ok := MTLSMode_name[int32(s.GetMtlsMode())]; !ok {
		return fmt.Errorf("mtls_mode: unknown mode %d", s.GetMtlsMode())
	}
	if err := validateObservability(s); err != nil {
		return err
	}
	if err := validateEgress(s.GetEgress()); err != nil { // validate_egress.go
		return err
	}
	for i, p := range s.GetPorts() {
		if p.GetPort() == 0 || p.GetPort() > 65535 {
			return fmt.Errorf("ports[%d].port: %d out of range", i, p.GetPort())
		}
		switch p.GetProtocol() {
		case "", "http", "http2", "grpc", "tcp":
		default:
			return fmt.Errorf("ports[%d].protocol: unknown protocol %q", i, p.GetProtocol())
		}
	}
	for i, r := range s.GetRoutes() {
		if err := validateRoute(r); err != nil {
			return fmt.Errorf("routes[%d]: %w", i, err)
		}
		if ns := r.GetConsumerNamespace(); ns != "" && ns == s.GetNamespace() {
			return fmt.Errorf("routes[%d].consumer_namespace: %q is the service's own namespace (a route there is a producer route)", i, ns)
		}
	}
	if err := validateTCPRoutes(s); err != nil { // validate_tcp.go
		return err
	}
	if err := validateJWTRules(s.GetJwtRules()); err != nil {
		return err
	}
	if err := validateServiceRetry(s); err != nil {
		return err
	}
	if err := validateBalancer(s); err != nil {
		return err
	}
	for i, p := range s.GetAuthzPolicies() {
		if err := ValidateAuthzPolicy(p); err != nil {
			return fmt.Errorf("authz_policies[%d]: %w", i, err)
		}
	}
	return validateBreaker(s) // validate_breaker.go
}

func validateRoute(r *Route) error {
	for i, m := range r.GetMatches() {
		if p := m.GetPath(); p != nil {
			if _, ok := PathMatch_Kind_name[int32(p.GetKind())]; !ok {
				return fmt.Errorf("matches[%d].path.kind: unknown kind %d", i, p.GetKind())
			}
			if p.GetKind() != PathMatch_REGEX && !strings.HasPrefix(p.GetValue(), "/") {
				return fmt.Errorf("matches[%d].path.value: %q must start with /", i, p.GetValue())
			}
		}
		for j, h := range m.GetHeaders() {
			if h.GetName() == "" {
				return fmt.Errorf("matches[%d].headers[%d].name: must not be empty", i, j)
			}
		}
	}
	if err := validateRouteRetry(r); err != nil {
		return err
	}
	if err := validateRouteStage(r); err != nil {
		return err
	}
	if err := validateFaultMirror(r); err != nil { // validate_fault.go
		return err
	}
	if err := validateCORSExtAuth(r); err != nil { // validate_cors.go
		return err
	}
	if len(r.GetBackends()) == 0 {
		return fmt.Errorf("backends: must not be empty (a rule that cannot forward has a backend with fail_status)")
	}
	for i, b := range r.GetBackends() {
		if b.GetWeight() > MaxBackendWeight {
			return fmt.Errorf("backends[%d].weight: %d exceeds %d", i, b.GetWeight(), MaxBackendWeight)
		}
		if st := b.GetFailStatus(); st != 0 {
			if st < 400 || st > 599 {
				return fmt.Errorf("backends[%d].fail_status: %d is not an HTTP error status (400-599)", i, st)
			}
			continue
		}
		if b.GetService() == "" || b.GetNamespace() == "" {
			return fmt.Errorf("backends[%d]: service and namespace are required", i)
		}
	}
	return nil
}

// ValidateEndpoints reports whether a proxy can compile e; like
// ValidateService, it is shared by the proxy and the control plane.
func ValidateEndpoints(e *Endpoints) error {
	for i, ep := range e.GetEndpoints() {
		if _, _, err := net.SplitHostPort(ep.GetAddress()); err != nil {
			return fmt.Errorf("endpoints[%d].address: %w", i, err)
		}
		if ep.GetPlaintext() {
			// A pod without a sidecar: nothing to verify, and a plaintext
			// endpoint that named an identity would be one the proxy
			// cannot hold to it.
			if ep.GetIdentity() != "" {
				return fmt.Errorf("endpoints[%d]: a plaintext endpoint has no identity, got %q", i, ep.GetIdentity())
			}
			continue
		}
		if _, err := spiffeid.FromString(ep.GetIdentity()); err != nil {
			return fmt.Errorf("endpoints[%d].identity: %w", i, err)
		}
	}
	return nil
}
