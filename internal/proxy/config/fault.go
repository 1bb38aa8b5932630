package config

import (
	"weft.dev/weft/internal/proxy/fault"
	"weft.dev/weft/internal/proxy/mirror"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// BackendFault is the fault injection and the request mirrors of one
// backend of a route (its backendRef's ExtensionRef and RequestMirror
// filters), applied after the route's to the requests sent to it.
type BackendFault struct {
	Fault   *fault.Fault // nil for none
	Mirrors []mirror.Target
}

// buildFaultMirror compiles the fault injection and the request mirrors of
// route r and of its backends into route.
func buildFaultMirror(route *Route, r *weftv1.Route) {
	route.Fault = fault.Compile(r.GetFault())
	route.Mirrors = mirror.Compile(r.GetMirrors())
	for i, b := range r.GetBackends() {
		f, ms := fault.Compile(b.GetFault()), mirror.Compile(b.GetMirrors())
		if f == nil && len(ms) == 0 {
			continue
		}
		if route.BackendFaults == nil {
			route.BackendFaults = make([]BackendFault, len(r.GetBackends()))
		}
		route.BackendFaults[i] = BackendFault{Fault: f, Mirrors: ms}
	}
}

// BackendFault returns the fault injection and mirrors of backend b of the
// route (nil: none).
func (r *Route) BackendFault(b *Backend) *BackendFault {
	if b == nil || r.BackendFaults == nil {
		return nil
	}
	return &r.BackendFaults[b.Index]
}
