package outbound

import (
	"net/http"

	"weft.dev/weft/internal/proxy/inbound"
)

// setRouteHeader tells the peer's inbound which route the request matched
// (its server-side route label): it replaces whatever the app sent under
// inbound.RouteHeader, and sends none when no route matched.
func setRouteHeader(h http.Header, route string) {
	if route == "" {
		delete(h, inbound.RouteHeader)
		return
	}
	h[inbound.RouteHeader] = []string{route}
}
