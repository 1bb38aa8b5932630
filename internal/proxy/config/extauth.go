package config

import (
	"weft.dev/weft/internal/proxy/extauth"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// buildExtAuth compiles the external authorization of route r into route.
func buildExtAuth(route *Route, r *weftv1.Route) {
	route.ExtAuth = extauth.Compile(r.GetExternalAuth())
}
