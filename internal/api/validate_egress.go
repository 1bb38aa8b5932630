package api

import (
	"crypto/x509"
	"encoding/pem"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Validate checks the ExternalService and names every offending field.
func (x *ExternalService) Validate() error { return Validate(x) }

func (x *ExternalService) validate(e *errs) {
	p := fieldPath("spec")
	s := x.Spec
	switch {
	case len(s.Hosts) == 0:
		e.add(p.child("hosts"), "required: at least one host")
	case len(s.Hosts) > MaxExternalHosts:
		e.add(p.child("hosts"), "at most %d hosts", MaxExternalHosts)
	}
	seen := map[string]bool{}
	for i, h := range s.Hosts {
		hp := p.child("hosts").index(i)
		validateExternalHost(e, hp, h)
		if seen[strings.ToLower(h)] {
			e.add(hp, "duplicate host %q", h)
		}
		seen[strings.ToLower(h)] = true
	}
	if len(s.Ports) > MaxExternalPorts {
		e.add(p.child("ports"), "at most %d ports", MaxExternalPorts)
	}
	ports := map[int32]bool{}
	for i, port := range s.Ports {
		pp := p.child("ports").index(i)
		if port.Number < 1 || port.Number > 65535 {
			e.add(pp.child("number"), "must be 1-65535, got %d", port.Number)
		}
		if ports[port.Number] {
			e.add(pp.child("number"), "duplicate port %d", port.Number)
		}
		ports[port.Number] = true
		switch port.Protocol {
		case "", ExternalHTTP, ExternalHTTPS, ExternalTLS, ExternalTCP:
		default:
			e.add(pp.child("protocol"), "must be HTTP, HTTPS, TLS or TCP, got %q", port.Protocol)
		}
	}
	if g := s.EgressGateway; g != "" {
		for _, msg := range validation.IsDNS1123Label(g) {
			e.add(p.child("egressGateway"), "%s", msg)
		}
	}
	if t := s.TLS; t != nil {
		tp := p.child("tls")
		if t.Mode != TLSOriginate {
			e.add(tp.child("mode"), "must be ORIGINATE, got %q", t.Mode)
		}
		if t.InsecureSkipVerify {
			e.add(tp.child("insecureSkipVerify"), "must be false: weft originates verified TLS only (give the server's CA in caCertificates)")
		}
		if t.SNI != "" {
			for _, msg := range validation.IsDNS1123Subdomain(t.SNI) {
				e.add(tp.child("sni"), "%s", msg)
			}
		}
		if t.CACertificates != "" {
			validateCACertificates(e, tp.child("caCertificates"), t.CACertificates)
		}
		for i, port := range s.Ports {
			if port.Protocol == ExternalHTTPS || port.Protocol == ExternalTLS || port.Protocol == ExternalTCP {
				e.add(p.child("ports").index(i).child("protocol"), "must be HTTP with tls.mode ORIGINATE: the app speaks plain HTTP and the proxy adds TLS, got %q", port.Protocol)
			}
		}
	}
}

// validateExternalHost checks one spec.hosts entry: a DNS name, or "*."
// followed by one.
func validateExternalHost(e *errs, p fieldPath, h string) {
	name := h
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		name = rest
	}
	switch {
	case h == "*" || name == "":
		e.add(p, "%q would match every host: name the hosts, or use mode ALLOW_ANY", h)
		return
	case strings.Contains(name, "*"):
		e.add(p, "%q: a wildcard is allowed only as the whole first label (\"*.example.com\")", h)
		return
	case !strings.Contains(name, ".") && h != name:
		e.add(p, "%q would match every name under a top-level domain: name at least two labels after \"*.\"", h)
		return
	}
	for _, suffix := range []string{".svc", ".svc.cluster.local"} {
		if strings.HasSuffix(strings.ToLower(name), suffix) {
			e.add(p, "%q is a mesh service name (ends in %s), not an external host", h, suffix)
			return
		}
	}
	for _, msg := range validation.IsDNS1123Subdomain(name) {
		e.add(p, "%s", msg)
	}
}

// validateCACertificates checks that s is PEM holding at least one
// certificate, all of which parse.
func validateCACertificates(e *errs, p fieldPath, s string) {
	if len(s) > MaxCACertificatesBytes {
		e.add(p, "at most %d bytes", MaxCACertificatesBytes)
		return
	}
	rest := []byte(s)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			e.add(p, "PEM block %d is %q, want CERTIFICATE", n, b.Type)
			return
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			e.add(p, "certificate %d: %v", n, err)
			return
		}
		n++
	}
	if n == 0 {
		e.add(p, "no PEM certificate found")
	}
}

// validateOutboundTrafficPolicy checks MeshConfig spec.outboundTrafficPolicy.
func validateOutboundTrafficPolicy(e *errs, p fieldPath, o *OutboundTrafficPolicy) {
	if o == nil {
		return
	}
	switch o.Mode {
	case "", OutboundAllowAny, OutboundRegistryOnly:
	default:
		e.add(p.child("mode"), "must be ALLOW_ANY or REGISTRY_ONLY, got %q", o.Mode)
	}
	if g := o.EgressGateway; g != nil {
		gp := p.child("egressGateway")
		if g.Name == "" {
			e.add(gp.child("name"), "required")
		}
		for _, msg := range validation.IsDNS1123Label(g.Name) {
			e.add(gp.child("name"), "%s", msg)
		}
		if g.Namespace != "" {
			for _, msg := range validation.IsDNS1123Label(g.Namespace) {
				e.add(gp.child("namespace"), "%s", msg)
			}
		}
	}
}
