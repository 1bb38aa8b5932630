package api

import (
	"crypto/tls"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// maxListeners is the Gateway API's bound on a Gateway's listeners.
const maxListeners = 64

// validateGateway checks a Gateway's listeners: unique names, ports,
// hostnames, and for HTTPS exactly one certificateRef to a Secret in the
// Gateway's namespace.
func validateGateway(e *errs, g *gatewayv1.Gateway) {
	p := fieldPath("spec")
	if g.Spec.GatewayClassName == "" {
		e.add(p.child("gatewayClassName"), "required (any name; weft serves every Gateway with the gateway proxy of the same name)")
	}
	ls := g.Spec.Listeners
	switch {
	case len(ls) == 0:
		e.add(p.child("listeners"), "at least one listener is required")
	case len(ls) > maxListeners:
		e.add(p.child("listeners"), "at most %d listeners are allowed, got %d", maxListeners, len(ls))
	}
	names := map[gatewayv1.SectionName]bool{}
	type portHost struct {
		port int32
		host string
	}
	seen := map[portHost]bool{}
	family := map[int32]gatewayv1.ProtocolType{}
	for i, l := range ls {
		lp := p.child("listeners").index(i)
		if l.Name == "" {
			e.add(lp.child("name"), "required")
		} else if names[l.Name] {
			e.add(lp.child("name"), "duplicate listener name %q", l.Name)
		}
		names[l.Name] = true
		if l.Port < 1 || l.Port > 65535 {
			e.add(lp.child("port"), "must be between 1 and 65535")
		}
		host := ""
		if l.Hostname != nil {
			host = string(*l.Hostname)
			validateHostname(e, lp.child("hostname"), host)
		}
		if seen[portHost{l.Port, host}] {
			e.add(lp, "another listener has port %d and hostname %q", l.Port, host)
		}
		seen[portHost{l.Port, host}] = true
		fam := l.Protocol
		if fam == gatewayv1.TLSProtocolType {
			fam = gatewayv1.TCPProtocolType // both are streams
		}
		if f, ok := family[l.Port]; ok && f != fam {
			e.add(lp.child("protocol"), "%s on port %d, where another listener is %s: listeners sharing a port must be all HTTP, all HTTPS, or all TLS/TCP", l.Protocol, l.Port, f)
		}
		family[l.Port] = fam
		switch l.Protocol {
		case gatewayv1.HTTPProtocolType:
			if l.TLS != nil {
				e.add(lp.child("tls"), "must be empty for protocol HTTP")
			}
		case gatewayv1.HTTPSProtocolType:
			validateListenerTLS(e, lp.child("tls"), l.TLS)
		case gatewayv1.TLSProtocolType:
			if l.TLS == nil || l.TLS.Mode == nil || *l.TLS.Mode != gatewayv1.TLSModePassthrough {
				e.add(lp.child("tls.mode"), "must be Passthrough for protocol TLS: weft routes the connection by SNI unopened (terminate TLS with protocol HTTPS)")
			} else if len(l.TLS.CertificateRefs) > 0 {
				e.add(lp.child("tls.certificateRefs"), "must be empty for a Passthrough listener: the backend presents its own certificate")
			}
		case gatewayv1.TCPProtocolType:
			if l.TLS != nil {
				e.add(lp.child("tls"), "must be empty for protocol TCP")
			}
			if l.Hostname != nil {
				e.add(lp.child("hostname"), "must be empty for protocol TCP: a TCP connection names no host")
			}
		case gatewayv1.UDPProtocolType:
			// Refused by checkGateway (support.go): valid, not served yet.
		default:
			e.add(lp.child("protocol"), "must be HTTP, HTTPS, TLS or TCP, got %q", l.Protocol)
		}
		if ar := l.AllowedRoutes; ar != nil {
			if ar.Namespaces != nil && ar.Namespaces.From != nil {
				switch *ar.Namespaces.From {
				case gatewayv1.NamespacesFromSame, gatewayv1.NamespacesFromAll:
				case gatewayv1.NamespacesFromSelector:
					// Refused by checkGateway.
				default:
					e.add(lp.child("allowedRoutes.namespaces.from"), "must be Same or All, got %q", *ar.Namespaces.From)
				}
			}
			for j, k := range ar.Kinds {
				if want := ListenerRouteKinds(l.Protocol); k.Group != nil && *k.Group != GroupGateway || !slices.Contains(want, string(k.Kind)) {
					e.add(lp.child("allowedRoutes.kinds").index(j), "must be one of %s of group %q for protocol %s, got %q", strings.Join(want, ", "), GroupGateway, l.Protocol, k.Kind)
				}
			}
		}
	}
}

// validateHostname checks a listener or route hostname: a DNS name or a
// "*." wildcard of one, never an IP address.
func validateHostname(e *errs, p fieldPath, host string) {
	name := strings.TrimPrefix(host, "*.")
	for _, msg := range validation.IsDNS1123Subdomain(name) {
		e.add(p, "%q: %s", host, msg)
	}
}

// validateListenerTLS checks an HTTPS listener's tls: mode Terminate and
// exactly one certificateRef to a Secret (group "", kind Secret) in the
// Gateway's namespace.
func validateListenerTLS(e *errs, p fieldPath, t *gatewayv1.ListenerTLSConfig) {
	if t == nil {
		e.add(p, "required for protocol HTTPS: name the certificate in certificateRefs")
		return
	}
	if t.Mode != nil && *t.Mode != gatewayv1.TLSModeTerminate {
		e.add(p.child("mode"), "must be Terminate for protocol HTTPS (Passthrough is protocol TLS), got %q", *t.Mode)
	}
	if len(t.CertificateRefs) != 1 {
		e.add(p.child("certificateRefs"), "exactly one certificateRef is supported, got %d", len(t.CertificateRefs))
	}
	for i, ref := range t.CertificateRefs {
		rp := p.child("certificateRefs").index(i)
		if ref.Group != nil && *ref.Group != "" && *ref.Group != "core" {
			e.add(rp.child("group"), "must be \"\" (core), got %q", *ref.Group)
		}
		if ref.Kind != nil && *ref.Kind != KindSecret {
			e.add(rp.child("kind"), "must be Secret, got %q", *ref.Kind)
		}
		if ref.Namespace != nil {
			e.add(rp.child("namespace"), "must be empty: the Secret must be in the Gateway's namespace")
		}
		if ref.Name == "" {
			e.add(rp.child("name"), "required")
		}
	}
	if len(t.Options) > 0 {
		e.add(p.child("options"), "must be empty: weft defines no TLS options")
	}
}

// validateSecret accepts only kubernetes.io/tls Secrets whose data
// tls.crt and tls.key are a PEM certificate chain and its private key.
func validateSecret(e *errs, s *corev1.Secret) {
	if s.Type != corev1.SecretTypeTLS {
		e.add("type", "must be %q: weft stores only TLS certificates for Gateway listeners, got %q", corev1.SecretTypeTLS, s.Type)
	}
	if len(s.StringData) > 0 {
		e.add("stringData", "must be empty: put the base64 PEM in data")
	}
	crt, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	switch {
	case len(crt) == 0:
		e.add("data[tls.crt]", "required: the PEM certificate chain")
	case len(key) == 0:
		e.add("data[tls.key]", "required: the PEM private key")
	default:
		if _, err := tls.X509KeyPair(crt, key); err != nil {
			e.add("data", "tls.crt and tls.key are not a PEM certificate and its key: %v", err)
		}
	}
	for k := range s.Data {
		if k != corev1.TLSCertKey && k != corev1.TLSPrivateKeyKey && k != "ca.crt" {
			e.add(fieldPath("data").child(k), "unknown key: a TLS Secret holds tls.crt, tls.key and optionally ca.crt")
		}
	}
}

// checkGateway refuses listener protocols and allowedRoutes selectors that
// pass validation but are not served yet.
func checkGateway(e *errs, g *gatewayv1.Gateway) {
	for i, l := range g.Spec.Listeners {
		lp := fieldPath("spec.listeners").index(i)
		switch l.Protocol {
		case gatewayv1.UDPProtocolType:
			e.add(lp.child("protocol"), "%s %s", l.Protocol, notYet)
		}
		if ar := l.AllowedRoutes; ar != nil && ar.Namespaces != nil && ar.Namespaces.From != nil && *ar.Namespaces.From == gatewayv1.NamespacesFromSelector {
			e.add(lp.child("allowedRoutes.namespaces.from"), "Selector %s", notYet)
		}
	}
	if len(g.Spec.Addresses) > 0 {
		e.add("spec.addresses", "must be empty: a weft gateway listens on the host it runs on (weft gateway --address)")
	}
}

// ListenerRouteKinds are the route kinds a listener of protocol p serves.
func ListenerRouteKinds(p gatewayv1.ProtocolType) []string {
	switch p {
	case gatewayv1.TLSProtocolType:
		return []string{KindTLSRoute}
	case gatewayv1.TCPProtocolType:
		return []string{KindTCPRoute}
	}
	return []string{KindHTTPRoute, KindGRPCRoute}
}

// maxStreamBackends bounds a TLSRoute's or TCPRoute's backendRefs.
const maxStreamBackends = 16

// validateStreamRoute checks a TLSRoute or TCPRoute: Gateway parents
// only, valid hostnames, exactly one rule with 1 to 16 backendRefs to
// Services with a port.
func validateStreamRoute(e *errs, refs []gatewayv1.ParentReference, hostnames []gatewayv1.Hostname, rules int, backends func(int) []gatewayv1.BackendRef) {
	validateParentRefs(e, "spec.parentRefs", refs)
	for i, ref := range refs {
		if !IsGatewayParent(ref) {
			e.add(fieldPath("spec.parentRefs").index(i), "must be a Gateway: TLSRoutes and TCPRoutes attach to a Gateway's TLS or TCP listener")
		}
	}
	for i, h := range hostnames {
		validateHostname(e, fieldPath("spec.hostnames").index(i), string(h))
	}
	if rules != 1 {
		e.add("spec.rules", "exactly one rule is supported, got %d", rules)
		return
	}
	bs := backends(0)
	p := fieldPath("spec.rules").index(0).child("backendRefs")
	if len(bs) == 0 || len(bs) > maxStreamBackends {
		e.add(p, "between 1 and %d backendRefs are required, got %d", maxStreamBackends, len(bs))
	}
	for j, b := range bs {
		bp := p.index(j)
		if b.Kind != nil && *b.Kind != KindService || b.Group != nil && *b.Group != "" && *b.Group != "core" {
			e.add(bp, "must be a Service (group \"\", kind Service)")
		}
		validateRefName(e, bp, string(b.Name))
		if b.Weight != nil && (*b.Weight < 0 || *b.Weight > 1000000) {
			e.add(bp.child("weight"), "must be between 0 and 1000000")
		}
	}
}
