package config

import (
	"fmt"

	"weft.dev/weft/internal/proxy/route"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TCPRoute is a compiled TCPRoute of a service: which backend each opaque
// TCP connection to the service goes to, picked by weight per connection.
type TCPRoute struct {
	// Port is the service port it applies to; 0 for every port.
	Port uint32
	// ConsumerNamespace, when set, restricts it to callers in that
	// namespace.
	ConsumerNamespace string
	// Route holds the name and weighted backends (its Pick); it has no
	// matches.
	route.Route
}

// buildTCPRoutes compiles the service's TCP routes into svc.
func buildTCPRoutes(svc *Service, s *weftv1.Service) error {
	for i, r := range s.GetTcpRoutes() {
		rt, err := route.Compile(&weftv1.Route{Name: r.GetName(), Backends: r.GetBackends()})
		if err != nil {
			return fmt.Errorf("tcp_routes[%d]: %w", i, err)
		}
		svc.TCPRoutes = append(svc.TCPRoutes, TCPRoute{Port: r.GetPort(), ConsumerNamespace: r.GetConsumerNamespace(), Route: rt})
	}
	return nil
}

// TCPRouteFor is the TCP route that governs a connection from a caller in
// namespace ns to port of the service (0: the port is unknown): the first
// consumer route of ns whose port matches, else the first producer route
// whose port matches; nil when none does.
func (s *Service) TCPRouteFor(port uint32, ns string) *TCPRoute {
	var producer *TCPRoute
	for i := range s.TCPRoutes {
		r := &s.TCPRoutes[i]
		if r.Port != 0 && r.Port != port {
			continue
		}
		switch r.ConsumerNamespace {
		case ns:
			return r
		case "":
			if producer == nil {
				producer = r
			}
		}
	}
	return producer
}
