package outbound

import (
	"fmt"
	"net/http"

	"weft.dev/weft/internal/proxy/config"
)

// unforwardable returns the status and message to answer a request with
// when route's backend b (nil when every weight is zero) cannot take it, or
// 0. As the Gateway API requires, the requests a rule cannot forward — it
// has no backendRefs, or the backend picked does not resolve to a mesh
// service — are answered 500 at once, and only those: other rules and the
// other backends of the rule keep working.
func unforwardable(cfg *config.Config, route *config.Route, b *config.Backend) (int, string) {
	switch {
	case b == nil:
		return http.StatusInternalServerError, fmt.Sprintf("weft: route %q has no backend with weight", route.Name)
	case b.FailStatus != 0:
		return b.FailStatus, fmt.Sprintf("weft: route %q cannot forward: %s", route.Name, b.FailReason)
	case cfg.Services[b.Service] == nil:
		return http.StatusInternalServerError, fmt.Sprintf("weft: route %q: backend %s is not a mesh service (BackendNotFound)", route.Name, b.Service)
	}
	return 0, ""
}
