package weftv1

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// validateEgress checks the egress field of a Service resource: hosts are
// lowercase names or "*.<name with a dot>", ports 1-65535 with a known
// protocol, CA certificates parse.
func validateEgress(e *Egress) error {
	seen := map[string]bool{}
	for i, x := range e.GetExternalServices() {
		p := fmt.Sprintf("egress.external_services[%d]", i)
		if x.GetName() == "" || x.GetNamespace() == "" {
			return fmt.Errorf("%s: name and namespace must not be empty", p)
		}
		key := ResourceName(x.GetName(), x.GetNamespace())
		if seen[key] {
			return fmt.Errorf("%s: duplicate %q", p, key)
		}
		seen[key] = true
		if len(x.GetHosts()) == 0 {
			return fmt.Errorf("%s.hosts: must not be empty", p)
		}
		for j, h := range x.GetHosts() {
			if err := validateExternalHost(h); err != nil {
				return fmt.Errorf("%s.hosts[%d]: %w", p, j, err)
			}
		}
		for j, port := range x.GetPorts() {
			if port.GetNumber() == 0 || port.GetNumber() > 65535 {
				return fmt.Errorf("%s.ports[%d].number: %d out of range", p, j, port.GetNumber())
			}
			switch port.GetProtocol() {
			case "HTTP", "HTTPS", "TLS", "TCP":
			default:
				return fmt.Errorf("%s.ports[%d].protocol: unknown protocol %q", p, j, port.GetProtocol())
			}
		}
		if g := x.GetEgressGateway(); g != "" && !strings.Contains(g, ".") {
			return fmt.Errorf("%s.egress_gateway: %q is not a service key <name>.<namespace>", p, g)
		}
		if _, ok := AccessLogMode_name[int32(x.GetAccessLog())]; !ok {
			return fmt.Errorf("%s.access_log: unknown mode %d", p, x.GetAccessLog())
		}
		if t := x.GetTls(); t != nil && t.GetCaCertificates() != "" {
			if err := validatePEMCertificates(t.GetCaCertificates()); err != nil {
				return fmt.Errorf("%s.tls.ca_certificates: %w", p, err)
			}
		}
	}
	return nil
}

func validateExternalHost(h string) error {
	name, wild := strings.CutPrefix(h, "*.")
	switch {
	case name == "" || h == "*":
		return errors.New("a wildcard matching every host")
	case strings.Contains(name, "*"):
		return fmt.Errorf("%q: a wildcard is allowed only as the whole first label", h)
	case wild && !strings.Contains(name, "."):
		return fmt.Errorf("%q: a wildcard needs at least two labels after \"*.\"", h)
	case name != strings.ToLower(name):
		return fmt.Errorf("%q: must be lowercase", h)
	}
	return nil
}

func validatePEMCertificates(s string) error {
	rest := []byte(s)
	n := 0
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block %d is %q, want CERTIFICATE", n, b.Type)
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("certificate %d: %w", n, err)
		}
		n++
	}
	if n == 0 {
		return errors.New("no PEM certificate")
	}
	return nil
}
