package api

import (
	"net/url"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

var loadBalancers = []string{LBP2CEWMA, LBRoundRobin, LBRandom, LBLeastRequest, LBRingHash, LBMaglev}

var mtlsModes = []string{MTLSStrict, MTLSPermissive}

// validateMTLSMode checks a mutual-TLS mode: upper case, as Istio spells it.
func validateMTLSMode(e *errs, p fieldPath, mode string) {
	if !slices.Contains(mtlsModes, mode) {
		e.add(p, "must be one of %s, got %q", strings.Join(mtlsModes, ", "), mode)
	}
}

// Default fills in defaults: mTLS mode STRICT. An empty trust domain is
// left empty: it means the CA's, which only the control plane knows (its
// API fills it in).
func (m *MeshConfig) Default() {
	if m.Spec.MTLS == nil {
		m.Spec.MTLS = &MTLSConfig{}
	}
	if m.Spec.MTLS.Mode == "" {
		m.Spec.MTLS.Mode = MTLSStrict
	}
}

// Validate checks the MeshConfig and names every offending field.
func (m *MeshConfig) Validate() error { return Validate(m) }

func (m *MeshConfig) validate(e *errs) {
	p := fieldPath("spec")
	if td := m.Spec.TrustDomain; td != "" {
		for _, msg := range validation.IsDNS1123Subdomain(td) {
			e.add(p.child("trustDomain"), "%s", msg)
		}
	}
	if m.Spec.MTLS != nil && m.Spec.MTLS.Mode != "" {
		validateMTLSMode(e, p.child("mtls").child("mode"), m.Spec.MTLS.Mode)
	}
	if d := m.Spec.Defaults; d != nil {
		validateLB(e, p.child("defaults").child("loadBalancer"), d.LoadBalancer)
		validateMeshBalancer(e, p.child("defaults"), d)
	}
	validateAuthorizationConfig(e, p.child("authorization"), m.Spec.Authorization)
	validateMeshObservability(e, p, m)
	validateOutboundTrafficPolicy(e, p.child("outboundTrafficPolicy"), m.Spec.OutboundTrafficPolicy)
}

// Default fills in defaults: targetRef kind Service.
func (d *DestinationPolicy) Default() {
	if d.Spec.TargetRef.Kind == "" {
		d.Spec.TargetRef.Kind = KindService
	}
}

// Validate checks the DestinationPolicy and names every offending field.
func (d *DestinationPolicy) Validate() error { return Validate(d) }

func (d *DestinationPolicy) validate(e *errs) {
	p := fieldPath("spec")
	validateTargetRef(e, p.child("targetRef"), d.Spec.TargetRef)
	validateLB(e, p.child("loadBalancer"), d.Spec.LoadBalancer)
	validateBreaker(e, p, &d.Spec)          // validate_breaker.go
	validateBalancer(e, p, &d.Spec)         // validate_balancer.go
	validateDestinationRetry(e, p, &d.Spec) // validate_retry.go
}

func validateTargetRef(e *errs, p fieldPath, t PolicyTargetRef) {
	if t.Kind != "" && t.Kind != KindService {
		e.add(p.child("kind"), "must be Service, got %q", t.Kind)
	}
	if t.Name == "" {
		e.add(p.child("name"), "required")
		return
	}
	for _, msg := range validation.IsDNS1123Label(t.Name) {
		e.add(p.child("name"), "%s", msg)
	}
}

func validateLB(e *errs, p fieldPath, lb string) {
	if lb != "" && !slices.Contains(loadBalancers, lb) {
		e.add(p, "must be one of %s, got %q", strings.Join(loadBalancers, ", "), lb)
	}
}

func validateIdentity(e *errs, p fieldPath, id string) {
	if id == "*" {
		return
	}
	if suffix, ok := strings.CutPrefix(id, "*"); ok {
		if suffix == "" || strings.Contains(suffix, "*") {
			e.add(p, "\"*\" is allowed only alone, at the start or at the end, got %q", id)
		}
		return
	}
	u, err := url.Parse(strings.TrimSuffix(id, "*"))
	if err != nil || u.Scheme != "spiffe" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		e.add(p, "must be a SPIFFE ID like spiffe://cluster.local/ns/default/sa/orders, got %q", id)
		return
	}
	if strings.Contains(strings.TrimSuffix(id, "*"), "*") {
		e.add(p, "\"*\" is allowed only alone, at the start or at the end, got %q", id)
	}
}
