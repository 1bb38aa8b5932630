package outbound

import (
	"net/http"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/inbound"
)

// peerRoute is the x-weft-route value of a request that matched route
// (nil if none did).
func peerRoute(route *config.Route) []string {
	if route == nil {
		return nil
	}
	return route.PeerHeader
}

// setRouteHeader tells the peer's inbound which route the request matched
// (its server-side route label): it replaces whatever the app sent under
// inbound.RouteHeader, and sends none when no route matched. The value is
// the compiled route's, shared by all its requests: nothing downstream
// modifies header values in place.
func setRouteHeader(h http.Header, route []string) {
	if route == nil {
		delete(h, inbound.RouteHeader)
		return
	}
	h[inbound.RouteHeader] = route
}
