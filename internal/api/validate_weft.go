package api

import (
	"net/url"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

var loadBalancers = []string{LBRoundRobin, LBRandom, LBLeastRequest}

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
	}
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
	if cp := d.Spec.ConnectionPool; cp != nil {
		cpp := p.child("connectionPool")
		if cp.MaxConnections <= 0 {
			e.add(cpp.child("maxConnections"), "must be greater than 0")
		}
		if cp.MaxPendingRequests < 0 {
			e.add(cpp.child("maxPendingRequests"), "must not be negative")
		}
	}
	if od := d.Spec.OutlierDetection; od != nil {
		op := p.child("outlierDetection")
		if od.Consecutive5xx < 1 {
			e.add(op.child("consecutive5xx"), "must be at least 1")
		}
		validDuration(e, op.child("interval"), od.Interval)
		validDuration(e, op.child("baseEjectionTime"), od.BaseEjectionTime)
		if od.MaxEjectionPercent < 0 || od.MaxEjectionPercent > 100 {
			e.add(op.child("maxEjectionPercent"), "must be between 0 and 100")
		}
	}
	if r := d.Spec.Retry; r != nil {
		rp := p.child("retry")
		if r.Attempts < 0 || r.Attempts > 10 {
			e.add(rp.child("attempts"), "must be between 0 and 10")
		}
		validDuration(e, rp.child("perTryTimeout"), r.PerTryTimeout)
		for i, on := range r.RetryOn {
			if !slices.Contains(retryConditions, on) {
				e.add(rp.child("retryOn").index(i), "must be one of %s, got %q", strings.Join(retryConditions, ", "), on)
			}
		}
	}
}

// Default fills in defaults: action ALLOW and targetRef kind Service.
func (a *AuthorizationPolicy) Default() {
	if a.Spec.Action == "" {
		a.Spec.Action = ActionAllow
	}
	if a.Spec.TargetRef.Kind == "" {
		a.Spec.TargetRef.Kind = KindService
	}
}

// Validate checks the AuthorizationPolicy and names every offending field.
func (a *AuthorizationPolicy) Validate() error { return Validate(a) }

func (a *AuthorizationPolicy) validate(e *errs) {
	p := fieldPath("spec")
	validateTargetRef(e, p.child("targetRef"), a.Spec.TargetRef)
	switch a.Spec.Action {
	case "", ActionAllow, ActionDeny, ActionAudit:
	default:
		e.add(p.child("action"), "must be ALLOW, DENY or AUDIT, got %q", a.Spec.Action)
	}
	for i, r := range a.Spec.Rules {
		rp := p.child("rules").index(i)
		for j, f := range r.From {
			fp := rp.child("from").index(j)
			if len(f.Identities) == 0 && len(f.Namespaces) == 0 {
				e.add(fp, "set identities or namespaces")
			}
			for k, id := range f.Identities {
				validateIdentity(e, fp.child("identities").index(k), id)
			}
			for k, ns := range f.Namespaces {
				if ns == "*" {
					continue
				}
				for _, msg := range validation.IsDNS1123Label(ns) {
					e.add(fp.child("namespaces").index(k), "%s", msg)
				}
			}
		}
		for j, t := range r.To {
			tp := rp.child("to").index(j)
			if len(t.Methods) == 0 && len(t.Paths) == 0 && len(t.Ports) == 0 {
				e.add(tp, "set methods, paths or ports")
			}
			for k, m := range t.Methods {
				if !slices.Contains(httpMethods, m) {
					e.add(tp.child("methods").index(k), "must be an upper-case HTTP method (%s), got %q", strings.Join(httpMethods, ", "), m)
				}
			}
			for k, path := range t.Paths {
				if path != "*" && !strings.HasPrefix(path, "/") {
					e.add(tp.child("paths").index(k), "must start with \"/\" or be \"*\", got %q", path)
				} else if strings.Contains(strings.TrimSuffix(path, "*"), "*") {
					e.add(tp.child("paths").index(k), "\"*\" is allowed only at the end, got %q", path)
				}
			}
			for k, port := range t.Ports {
				if port < 1 || port > 65535 {
					e.add(tp.child("ports").index(k), "must be between 1 and 65535")
				}
			}
		}
		for j, w := range r.When {
			wp := rp.child("when").index(j)
			if !validHeaderName(w.Header) {
				e.add(wp.child("header"), "invalid header name %q", w.Header)
			}
			if len(w.Values) == 0 {
				e.add(wp.child("values"), "at least one value is required (\"*\" matches any)")
			}
		}
	}
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
	u, err := url.Parse(strings.TrimSuffix(id, "*"))
	if err != nil || u.Scheme != "spiffe" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		e.add(p, "must be a SPIFFE ID like spiffe://cluster.local/ns/default/sa/orders, got %q", id)
		return
	}
	if strings.Contains(strings.TrimSuffix(id, "*"), "*") {
		e.add(p, "\"*\" is allowed only at the end, got %q", id)
	}
}
