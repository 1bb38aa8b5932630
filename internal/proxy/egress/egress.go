// Package egress is the outbound listener's view of the world outside the
// mesh: MeshConfig spec.outboundTrafficPolicy and the ExternalServices,
// compiled once per config push into an immutable Table that answers, per
// request, whether a non-mesh host may be reached, under which
// ExternalService's name it is counted, and whether the proxy originates
// TLS to it.
package egress

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// Reason is the x-weft-reason of a refusal under REGISTRY_ONLY.
const Reason = "registry-only"

// ReasonTLS is the x-weft-reason of a failed TLS origination.
const ReasonTLS = "tls-origination"

// ReasonGateway is the x-weft-reason of a call an egress gateway cannot
// carry: a CONNECT to a host bound to a gateway, the gateway without
// workloads, or a request for a mesh service sent to a gateway.
const ReasonGateway = "egress-gateway"

// Table is the compiled egress configuration. The zero Table (and a nil
// one) allows any host and declares none.
type Table struct {
	registryOnly bool
	exact        map[string][]*Service
	// wild holds the "*.suffix" hosts by suffix (".example.com").
	wild map[string][]*Service
}

// Service is one ExternalService.
type Service struct {
	// Key is "<name>.<namespace>", the destination_service of its calls.
	Key string
	// ports are the declared port numbers; empty: any port. (Their
	// protocols are documentation for now: the proxy carries what the
	// app sends.)
	ports map[uint32]bool
	// Originate is set for tls.mode ORIGINATE: the transport speaking TLS
	// to the host.
	Originate *http.Transport
	// Gateway is the key of the mesh service (egress gateway) that makes
	// the calls; "" for direct calls.
	Gateway string
}

// Compile builds the Table of e (nil: allow any, declare none).
func Compile(e *weftv1.Egress) (*Table, error) {
	t := &Table{registryOnly: e.GetRegistryOnly(), exact: map[string][]*Service{}, wild: map[string][]*Service{}}
	for i, x := range e.GetExternalServices() {
		s := &Service{Key: weftv1.ResourceName(x.GetName(), x.GetNamespace()), Gateway: x.GetEgressGateway()}
		for _, p := range x.GetPorts() {
			if s.ports == nil {
				s.ports = map[uint32]bool{}
			}
			s.ports[p.GetNumber()] = true
		}
		if tc := x.GetTls(); tc != nil {
			cfg, err := clientTLS(tc)
			if err != nil {
				return nil, fmt.Errorf("external_services[%d].tls: %w", i, err)
			}
			var d net.Dialer
			d.Timeout, d.KeepAlive = 10*time.Second, 30*time.Second
			s.Originate = &http.Transport{
				Proxy:               nil,
				DialContext:         d.DialContext,
				TLSClientConfig:     cfg,
				TLSHandshakeTimeout: 10 * time.Second,
				DisableCompression:  true,
				MaxIdleConnsPerHost: 16,
				IdleConnTimeout:     90 * time.Second,
				ForceAttemptHTTP2:   false,
				TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
			}
		}
		for _, h := range x.GetHosts() {
			h = strings.ToLower(h)
			if suffix, ok := strings.CutPrefix(h, "*"); ok {
				t.wild[suffix] = append(t.wild[suffix], s)
				continue
			}
			t.exact[h] = append(t.exact[h], s)
		}
	}
	return t, nil
}

// clientTLS is the verifying client config of an ExternalService's TLS
// origination.
func clientTLS(tc *weftv1.ExternalServiceTLS) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: tc.GetSni()}
	if pemCAs := tc.GetCaCertificates(); pemCAs != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(pemCAs)) {
			return nil, errors.New("ca_certificates: no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// RegistryOnly reports mode REGISTRY_ONLY.
func (t *Table) RegistryOnly() bool { return t != nil && t.registryOnly }

// Empty reports a table with no ExternalService and mode ALLOW_ANY: the
// outbound listener then passes every non-mesh host through unchanged.
func (t *Table) Empty() bool {
	return t == nil || !t.registryOnly && len(t.exact) == 0 && len(t.wild) == 0
}

// Lookup finds the ExternalService declaring authority (host[:port]; the
// port defaults to defPort). It returns nil and, for a declared host whose
// port is not declared, the ExternalService that declared the host.
func (t *Table) Lookup(authority string, defPort uint32) (s *Service, hostOnly *Service) {
	if t == nil {
		return nil, nil
	}
	host, port := splitAuthority(authority, defPort)
	try := func(list []*Service) *Service {
		for _, c := range list {
			if c.allows(port) {
				return c
			}
			if hostOnly == nil {
				hostOnly = c
			}
		}
		return nil
	}
	if s := try(t.exact[host]); s != nil {
		return s, nil
	}
	// Longest wildcard suffix first: "*.api.example.com" before "*.example.com".
	for i := 0; i < len(host); i++ {
		if host[i] != '.' {
			continue
		}
		if list, ok := t.wild[host[i:]]; ok {
			if s := try(list); s != nil {
				return s, nil
			}
		}
	}
	return nil, hostOnly
}

func (s *Service) allows(port uint32) bool {
	if len(s.ports) == 0 {
		return true
	}
	return s.ports[port]
}

// splitAuthority lowercases the host of authority, drops a trailing dot and
// the brackets of an IPv6 literal, and parses the port (defPort if none).
func splitAuthority(authority string, defPort uint32) (string, uint32) {
	host, port := authority, defPort
	// SplitHostPort allocates an error for a host without a port.
	if strings.IndexByte(authority, ':') >= 0 {
		if h, p, err := net.SplitHostPort(authority); err == nil {
			host = h
			if n, err := strconv.ParseUint(p, 10, 16); err == nil {
				port = uint32(n)
			}
		}
	}
	return strings.TrimSuffix(strings.ToLower(host), "."), port
}

// HostClass is the bounded label of a refused authority: "ip" for an IP
// literal, "name" for anything else.
func HostClass(authority string) string {
	host, _ := splitAuthority(authority, 0)
	host = strings.Trim(host, "[]")
	if net.ParseIP(host) != nil {
		return "ip"
	}
	return "name"
}

// Message is the body of a refusal: what was refused and how to allow it.
func Message(authority string) string {
	host, _ := splitAuthority(authority, 0)
	return "weft: " + authority + " is not a mesh service and no ExternalService declares it, and the mesh's outboundTrafficPolicy is REGISTRY_ONLY (MeshConfig spec.outboundTrafficPolicy.mode); to allow it, apply an ExternalService with spec.hosts: [" + host + "] (see docs/egress.md)"
}

// PortMessage is the body of a refusal of a declared host on a port its
// ExternalService does not declare.
func PortMessage(authority string, s *Service) string {
	return "weft: ExternalService " + s.Key + " declares the host of " + authority + " but not this port, and the mesh's outboundTrafficPolicy is REGISTRY_ONLY; add the port to its spec.ports (see docs/egress.md)"
}
