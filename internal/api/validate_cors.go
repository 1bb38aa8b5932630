package api

import (
	"regexp"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Limits of the CORS and ExternalAuth filters (the Gateway API CRD's).
const (
	maxCORSEntries    = 64
	maxCORSMethods    = 9
	maxExtAuthHeaders = 64
	maxExtAuthPathLen = 1024
)

var (
	// corsOriginRE is the Gateway API CORSOrigin pattern.
	corsOriginRE = regexp.MustCompile(`^(\*|https?://((\*\.)?([a-zA-Z0-9\-]+\.)*[a-zA-Z0-9-]+|\*)(:([0-9]{1,5}))?)$`)
	// extAuthPathRE is the Gateway API HTTPAuthConfig.path pattern.
	extAuthPathRE = regexp.MustCompile(`^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$`)
	// corsMethods are the values of HTTPMethodWithWildcard.
	corsMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true, "CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true, "*": true}
)

// validateCORSExtAuth checks the CORS and ExternalAuth filter f at fp.
func validateCORSExtAuth(e *errs, fp fieldPath, f gatewayv1.HTTPRouteFilter) {
	if c := f.CORS; c != nil {
		cp := fp.child("cors")
		origins := make([]string, len(c.AllowOrigins))
		for i, o := range c.AllowOrigins {
			origins[i] = string(o)
			if !corsOriginRE.MatchString(string(o)) {
				e.add(cp.child("allowOrigins").index(i), "%q is not \"*\" or <scheme>://<host>[:<port>] with scheme http or https and a host that may start with \"*.\"", o)
			}
		}
		corsList(e, cp.child("allowOrigins"), origins, maxCORSEntries)
		methods := make([]string, len(c.AllowMethods))
		for i, m := range c.AllowMethods {
			methods[i] = string(m)
			if !corsMethods[string(m)] {
				e.add(cp.child("allowMethods").index(i), "must be one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH or *, got %q", m)
			}
		}
		corsList(e, cp.child("allowMethods"), methods, maxCORSMethods)
		for _, l := range []struct {
			field string
			hs    []gatewayv1.HTTPHeaderName
		}{{"allowHeaders", c.AllowHeaders}, {"exposeHeaders", c.ExposeHeaders}} {
			names := make([]string, len(l.hs))
			for i, h := range l.hs {
				names[i] = string(h)
				if !validHeaderName(string(h)) {
					e.add(cp.child(l.field).index(i), "invalid header name %q", h)
				}
			}
			corsList(e, cp.child(l.field), names, maxCORSEntries)
		}
		if c.MaxAge < 0 {
			e.add(cp.child("maxAge"), "must be at least 1 (seconds), got %d", c.MaxAge)
		}
	}
	if a := f.ExternalAuth; a != nil {
		ap := fp.child("externalAuth")
		switch a.ExternalAuthProtocol {
		case gatewayv1.HTTPRouteExternalAuthHTTPProtocol:
			if a.HTTPAuthConfig == nil {
				e.add(ap.child("http"), "required when protocol is HTTP")
			}
			if a.GRPCAuthConfig != nil {
				e.add(ap.child("grpc"), "must not be set when protocol is HTTP")
			}
		case gatewayv1.HTTPRouteExternalAuthGRPCProtocol:
			if a.GRPCAuthConfig == nil {
				e.add(ap.child("grpc"), "required when protocol is GRPC")
			}
			if a.HTTPAuthConfig != nil {
				e.add(ap.child("http"), "must not be set when protocol is GRPC")
			}
		default:
			e.add(ap.child("protocol"), "must be HTTP or GRPC, got %q", a.ExternalAuthProtocol)
		}
		bp := ap.child("backendRef")
		validateBackendRef(e, bp, gatewayv1.BackendRef{BackendObjectReference: a.BackendRef})
		if a.BackendRef.Port == nil {
			e.add(bp.child("port"), "required (the auth service's port)")
		}
		if h := a.HTTPAuthConfig; h != nil {
			hp := ap.child("http")
			if h.Path != "" {
				if len(h.Path) > maxExtAuthPathLen || !extAuthPathRE.MatchString(h.Path) || h.Path[0] != '/' {
					e.add(hp.child("path"), "must be a path starting with \"/\" of at most %d URL path characters, got %q", maxExtAuthPathLen, h.Path)
				}
			}
			extAuthHeaders(e, hp.child("allowedHeaders"), h.AllowedRequestHeaders)
			extAuthHeaders(e, hp.child("allowedResponseHeaders"), h.AllowedResponseHeaders)
		}
		if g := a.GRPCAuthConfig; g != nil {
			extAuthHeaders(e, ap.child("grpc").child("allowedHeaders"), g.AllowedRequestHeaders)
		}
	}
}

// corsList checks the length of a CORS list and that "*" stands alone.
func corsList(e *errs, p fieldPath, vs []string, limit int) {
	if len(vs) > limit {
		e.add(p, "at most %d entries are allowed, got %d", limit, len(vs))
	}
	if len(vs) < 2 {
		return
	}
	for i, v := range vs {
		if v == "*" {
			e.add(p.index(i), "\"*\" must be the only entry")
		}
	}
}

func extAuthHeaders(e *errs, p fieldPath, hs []string) {
	if len(hs) > maxExtAuthHeaders {
		e.add(p, "at most %d headers are allowed, got %d", maxExtAuthHeaders, len(hs))
	}
	for i, h := range hs {
		if !validHeaderName(h) {
			e.add(p.index(i), "invalid header name %q", h)
		}
	}
}
