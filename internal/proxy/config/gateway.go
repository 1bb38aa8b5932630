package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// Gateway is the compiled Gateway resource of an ingress gateway proxy.
type Gateway struct {
	Name, Namespace string
	Listeners       []GatewayListener
}

// GatewayListener is one compiled listener of a Gateway.
type GatewayListener struct {
	Name     string
	Port     uint32
	Protocol string // HTTP or HTTPS
	// Hostname is the listener's host or "*.suffix" wildcard, "" for any.
	Hostname string
	// Cert is the HTTPS listener's certificate; nil for HTTP.
	Cert  *tls.Certificate
	Hosts []GatewayHost
	// Streams are the TLSRoutes (TLS, by SNI) or TCPRoutes (TCP) of the
	// listener.
	Streams []GatewayStream
}

// GatewayStream is a TLSRoute or TCPRoute attached to a listener.
type GatewayStream struct {
	Name     string
	Hostname string // the SNI served: exact, "*.suffix", or "" for any
	Backends []StreamBackend
	total    uint32
}

// StreamBackend is one weighted backend service of a GatewayStream.
type StreamBackend struct {
	Service string // service key
	Weight  uint32
}

// Pick returns the backend service key for draw n (uniform), by weight;
// "" when every weight is 0.
func (s *GatewayStream) Pick(n uint32) string {
	if s.total == 0 {
		return ""
	}
	n %= s.total
	for _, b := range s.Backends {
		if n < b.Weight {
			return b.Service
		}
		n -= b.Weight
	}
	return ""
}

// Stream returns the stream route for a connection's SNI ("" for none, or
// a TCP listener): exact hostname, else the longest wildcard covering it,
// else one without hostname; nil when none applies.
func (l *GatewayListener) Stream(sni string) *GatewayStream {
	sni = strings.ToLower(sni)
	var best *GatewayStream
	for i := range l.Streams {
		s := &l.Streams[i]
		switch {
		case s.Hostname == sni:
			return s
		case s.Hostname == "":
			if best == nil {
				best = s
			}
		case sni != "" && HostCovers(s.Hostname, sni):
			if best == nil || len(s.Hostname) > len(best.Hostname) {
				best = s
			}
		}
	}
	return best
}

// GatewayHost is the routes of one hostname of a listener, compiled as a
// Service whose routes are the gateway's.
type GatewayHost struct {
	Hostname string // exact, "*.suffix", or "" for any host
	Service  *Service
}

// BuildGateway compiles a Gateway resource; every listener must compile.
func BuildGateway(g *weftv1.Gateway) (*Gateway, error) {
	out := &Gateway{Name: g.GetName(), Namespace: g.GetNamespace()}
	for i, l := range g.GetListeners() {
		gl := GatewayListener{Name: l.GetName(), Port: l.GetPort(), Protocol: l.GetProtocol(), Hostname: strings.ToLower(l.GetHostname())}
		if gl.Port == 0 || gl.Port > 65535 {
			return nil, fmt.Errorf("listeners[%d]: port %d out of range", i, gl.Port)
		}
		switch gl.Protocol {
		case "HTTP", "TLS", "TCP":
		case "HTTPS":
			cert, err := tls.X509KeyPair(l.GetCertPem(), l.GetKeyPem())
			if err != nil {
				return nil, fmt.Errorf("listeners[%d] (%s): certificate: %w", i, gl.Name, err)
			}
			gl.Cert = &cert
		default:
			return nil, fmt.Errorf("listeners[%d] (%s): unsupported protocol %q", i, gl.Name, gl.Protocol)
		}
		for j, h := range l.GetHosts() {
			svc, err := buildService(h.GetRoutes())
			if err != nil {
				return nil, fmt.Errorf("listeners[%d].hosts[%d] (%q): %w", i, j, h.GetHostname(), err)
			}
			gl.Hosts = append(gl.Hosts, GatewayHost{Hostname: strings.ToLower(h.GetHostname()), Service: svc})
		}
		for j, s := range l.GetStreams() {
			st := GatewayStream{Name: s.GetName(), Hostname: strings.ToLower(s.GetHostname())}
			for k, b := range s.GetBackends() {
				if b.GetService() == "" || b.GetNamespace() == "" {
					return nil, fmt.Errorf("listeners[%d].streams[%d].backends[%d]: service and namespace are required", i, j, k)
				}
				st.Backends = append(st.Backends, StreamBackend{Service: weftv1.ResourceName(b.GetService(), b.GetNamespace()), Weight: b.GetWeight()})
				st.total += b.GetWeight()
			}
			gl.Streams = append(gl.Streams, st)
		}
		out.Listeners = append(out.Listeners, gl)
	}
	return out, nil
}

// Host returns the routes for a request's Host (port and case ignored):
// those of the exact hostname, else of the longest wildcard that covers
// it, else of the any-host entry; nil when none applies.
func (l *GatewayListener) Host(authority string) *Service {
	host := strings.ToLower(authority)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	var best *GatewayHost
	for i := range l.Hosts {
		h := &l.Hosts[i]
		switch {
		case h.Hostname == host:
			return h.Service
		case h.Hostname == "":
			if best == nil {
				best = h
			}
		case HostCovers(h.Hostname, host):
			if best == nil || len(h.Hostname) > len(best.Hostname) {
				best = h
			}
		}
	}
	if best == nil {
		return nil
	}
	return best.Service
}

// HostCovers reports whether pattern (a host or "*.suffix", lower case)
// covers host: equal, or host ends in the suffix after at least one label.
func HostCovers(pattern, host string) bool {
	suffix, ok := strings.CutPrefix(pattern, "*")
	if !ok {
		return pattern == host
	}
	return len(host) > len(suffix) && strings.HasSuffix(host, suffix)
}
