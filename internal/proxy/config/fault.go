package config

import (
	"weft.dev/weft/internal/proxy/fault"
	"weft.dev/weft/internal/proxy/mirror"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// buildFaultMirror compiles the fault injection and the request mirrors of
// route r into route.
func buildFaultMirror(route *Route, r *weftv1.Route) {
	route.Fault = fault.Compile(r.GetFault())
	route.Mirrors = mirror.Compile(r.GetMirrors())
}
