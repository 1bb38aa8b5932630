package xdsgen

import (
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// corsExtAuth sets the CORS policy and the external authorization of r, a
// compiled match of a rule of an HTTPRoute in namespace ns, and of its
// backends (compiled from the rule's backendRefs, in order), from the CORS
// and ExternalAuth filters of the rule and of each backendRef (the API
// allows one of each per list).
func corsExtAuth(ns string, rule gatewayv1.HTTPRouteRule, r *weftv1.Route) {
	r.Cors, r.ExternalAuth = corsExtAuthFilters(ns, rule.Filters)
	if len(rule.BackendRefs) == len(r.Backends) {
		for j, b := range rule.BackendRefs {
			r.Backends[j].Cors, r.Backends[j].ExternalAuth = corsExtAuthFilters(ns, b.Filters)
		}
	}
}

func corsExtAuthFilters(ns string, fs []gatewayv1.HTTPRouteFilter) (c *weftv1.CORSPolicy, a *weftv1.ExternalAuth) {
	for _, f := range fs {
		switch {
		case f.Type == gatewayv1.HTTPRouteFilterCORS && f.CORS != nil:
			c = corsPolicy(f.CORS)
		case f.Type == gatewayv1.HTTPRouteFilterExternalAuth && f.ExternalAuth != nil:
			a = externalAuth(ns, f.ExternalAuth)
		}
	}
	return c, a
}

func corsPolicy(c *gatewayv1.HTTPCORSFilter) *weftv1.CORSPolicy {
	out := &weftv1.CORSPolicy{MaxAgeSeconds: 5}
	if c.MaxAge > 0 {
		out.MaxAgeSeconds = uint32(c.MaxAge)
	}
	if c.AllowCredentials != nil {
		out.AllowCredentials = *c.AllowCredentials
	}
	for _, o := range c.AllowOrigins {
		out.AllowOrigins = append(out.AllowOrigins, string(o))
	}
	for _, m := range c.AllowMethods {
		out.AllowMethods = append(out.AllowMethods, string(m))
	}
	for _, h := range c.AllowHeaders {
		out.AllowHeaders = append(out.AllowHeaders, string(h))
	}
	for _, h := range c.ExposeHeaders {
		out.ExposeHeaders = append(out.ExposeHeaders, string(h))
	}
	return out
}

func externalAuth(ns string, a *gatewayv1.HTTPExternalAuthFilter) *weftv1.ExternalAuth {
	out := &weftv1.ExternalAuth{Service: string(a.BackendRef.Name), Namespace: ns}
	if a.BackendRef.Namespace != nil {
		out.Namespace = string(*a.BackendRef.Namespace)
	}
	if a.ExternalAuthProtocol == gatewayv1.HTTPRouteExternalAuthGRPCProtocol {
		out.Protocol = weftv1.ExternalAuth_GRPC
		if g := a.GRPCAuthConfig; g != nil {
			out.AllowedHeaders = g.AllowedRequestHeaders
		}
	}
	if h := a.HTTPAuthConfig; h != nil {
		out.Path = h.Path
		out.AllowedHeaders = h.AllowedRequestHeaders
		out.AllowedResponseHeaders = h.AllowedResponseHeaders
	}
	if b := a.ForwardBody; b != nil {
		out.MaxBodyBytes = uint32(b.MaxSize)
	}
	return out
}
