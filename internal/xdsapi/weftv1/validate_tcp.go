package weftv1

import "fmt"

// validateTCPRoutes checks a service's TCP routes: a port in range, named
// backends with a service and namespace (a TCP connection cannot be
// answered with a status, so fail_status has no meaning here).
func validateTCPRoutes(s *Service) error {
	for i, r := range s.GetTcpRoutes() {
		if r.GetPort() > 65535 {
			return fmt.Errorf("tcp_routes[%d].port: %d out of range", i, r.GetPort())
		}
		if ns := r.GetConsumerNamespace(); ns != "" && ns == s.GetNamespace() {
			return fmt.Errorf("tcp_routes[%d].consumer_namespace: %q is the service's own namespace (a route there is a producer route)", i, ns)
		}
		for j, b := range r.GetBackends() {
			if b.GetService() == "" || b.GetNamespace() == "" {
				return fmt.Errorf("tcp_routes[%d].backends[%d]: service and namespace must not be empty", i, j)
			}
			if b.GetFailStatus() != 0 || b.GetRequestHeaders() != nil || b.GetResponseHeaders() != nil || b.GetRewrite() != nil {
				return fmt.Errorf("tcp_routes[%d].backends[%d]: a TCP backend has no fail status or HTTP filters", i, j)
			}
		}
	}
	return nil
}
