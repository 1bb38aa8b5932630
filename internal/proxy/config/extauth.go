package config

import (
	"weft.dev/weft/internal/proxy/extauth"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// buildExtAuth compiles the external authorization of route r and of its
// backends into route.
func buildExtAuth(route *Route, r *weftv1.Route) {
	route.ExtAuth = extauth.Compile(r.GetExternalAuth())
	for i, b := range r.GetBackends() {
		if a := extauth.Compile(b.GetExternalAuth()); a != nil {
			if route.BackendExtAuth == nil {
				route.BackendExtAuth = make([]*extauth.Auth, len(r.GetBackends()))
			}
			route.BackendExtAuth[i] = a
		}
	}
}

// BackendAuth returns the external authorization of backend b of the
// route (nil: none).
func (r *Route) BackendAuth(b *Backend) *extauth.Auth {
	if b == nil || r.BackendExtAuth == nil {
		return nil
	}
	return r.BackendExtAuth[b.Index]
}
