package telemetry

import "github.com/prometheus/client_golang/prometheus"

// routeMetrics are the route stage's counters.
type routeMetrics struct {
	redirects     *prometheus.CounterVec
	endpointWaits *prometheus.CounterVec
}

func (r *routeMetrics) register(reg prometheus.Registerer) error {
	r.redirects = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_route_redirects_total",
		Help: "Requests answered with a redirect by an HTTPRoute RequestRedirect filter, by destination service and route (namespace/route/rule).",
	}, []string{"destination_service", "route"})
	r.endpointWaits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_endpoint_waits_total",
		Help: "Requests that had to wait for the endpoints of a service the proxy had not received yet (its first use); a route change never causes one (make before break).",
	}, []string{"destination_service"})
	for _, c := range []prometheus.Collector{r.redirects, r.endpointWaits} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// RouteRedirect counts one request answered with a redirect.
func (m *Metrics) RouteRedirect(destination, route string) {
	if m == nil {
		return
	}
	m.route.redirects.WithLabelValues(destination, route).Inc()
}

// EndpointWait counts one request that waits for the endpoints of
// destination.
func (m *Metrics) EndpointWait(destination string) {
	if m == nil {
		return
	}
	m.route.endpointWaits.WithLabelValues(destination).Inc()
}
