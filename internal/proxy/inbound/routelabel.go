package inbound

import (
	"net/http"
	"sync/atomic"

	"weft.dev/weft/internal/proxy/config"
)

// RouteHeader is the mesh-internal request header in which the caller's
// proxy tells the inbound which route the request matched (the route label
// of the server side). Only the outbound sets it, on the peer hop: it
// removes any value the app sent first, and the inbound reads it only on
// mutual-TLS connections (not in a weft-tcp tunnel, whose bytes the app
// wrote) and removes it, in every spelling, before the app.
const RouteHeader = "X-Weft-Route"

// UnknownRoute is the server-side route label of a request whose caller
// named a route this proxy does not know for its service.
const UnknownRoute = "_unknown"

// routeSet is the set of route names that may label this service's
// inbound requests in one configuration snapshot.
type routeSet struct {
	cfg   *config.Config
	names map[string]bool
}

// routeNames caches the routeSet of the current configuration; it is
// rebuilt once per configuration push, on the first request that needs it.
type routeNames struct{ cur atomic.Pointer[routeSet] }

// routeLabel returns the route label of an inbound request: "" when the
// caller sent no route (or the connection is plaintext or a weft-tcp
// tunnel, whose headers no mesh peer vouches for), the route's name when it is one of the routes
// this proxy's configuration holds that send to its service (the routes
// of its own Service, producer and consumer, and of any service whose
// route has a backend here), else UnknownRoute, so that no caller can
// grow the label's cardinality.
func (l *Listener) routeLabel(h http.Header, peer *peerInfo) string {
	v, ok := h[RouteHeader]
	if !ok || len(v) == 0 || peer.plaintext || peer.tunnel || l.opts.Provider == nil {
		return ""
	}
	cfg := l.opts.Provider.Load()
	rs := l.routes.cur.Load()
	if rs == nil || rs.cfg != cfg {
		rs = &routeSet{cfg: cfg, names: routesTo(cfg, l.dest)}
		l.routes.cur.Store(rs)
	}
	if len(v) == 1 && rs.names[v[0]] {
		return v[0]
	}
	return UnknownRoute
}

// routesTo returns the names of the routes in cfg that can send a request
// to service dest.
func routesTo(cfg *config.Config, dest string) map[string]bool {
	names := map[string]bool{}
	add := func(owner string, routes []config.Route) {
		for i := range routes {
			r := &routes[i]
			to := owner == dest
			for _, b := range r.Backends {
				to = to || b.Service == dest
			}
			if to && r.Name != "" {
				names[r.Name] = true
			}
		}
	}
	for key, s := range cfg.Services {
		add(key, s.Routes)
		for _, rs := range s.ConsumerRoutes {
			add(key, rs)
		}
	}
	return names
}
