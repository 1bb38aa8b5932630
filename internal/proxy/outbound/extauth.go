package outbound

import (
	"context"
	"net/http"
	"strconv"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/extauth"
	"weft.dev/weft/internal/proxy/upstream"
)

// externalAuth runs route's ExternalAuth filter on r, bound for service
// dest, and reports whether it answered r itself. It sends the check (an
// HTTP request, or an ext_authz Check call over HTTP/2) to an
// endpoint of the auth service picked by that service's load balancer,
// over the pool's mTLS connections, bounded by the filter's timeout (and
// the request's own deadline). A 2xx answer lets r through with the
// answer's allowed headers copied onto it; another answer is passed on to
// the client with x-weft-reason external-auth-denied; an auth service that
// cannot be reached, times out or fails (502-504) refuses r with 503
// external-auth-unavailable (fail closed). A route without the filter
// costs a nil check.
//
// The route's filter runs first, then the one of b, the backend picked.
func (l *Listener) externalAuth(ctx context.Context, sw http.ResponseWriter, r *http.Request, cfg *config.Config, route *config.Route, b *config.Backend, dest string) bool {
	if a := route.ExtAuth; a != nil && l.checkAuth(ctx, sw, r, cfg, route, a, dest) {
		return true
	}
	if a := route.BackendAuth(b); a != nil {
		return l.checkAuth(ctx, sw, r, cfg, route, a, dest)
	}
	return false
}

// checkAuth runs the check of a (see externalAuth).
func (l *Listener) checkAuth(ctx context.Context, sw http.ResponseWriter, r *http.Request, cfg *config.Config, route *config.Route, a *extauth.Auth, dest string) bool {
	refuse := func(status int, reason, outcome, msg string) bool {
		sw.Header().Set(ReasonHeader, reason)
		upstream.WriteError(sw, r, status, msg)
		l.opts.Metrics.ExternalAuthCheck(dest, route.Name, outcome)
		return true
	}
	body, ok, err := a.ReadBody(r)
	if err != nil {
		return refuse(http.StatusBadRequest, extauth.ReasonBodyTooLarge, "body_too_large", "weft: reading the request body for external authorization: "+err.Error())
	}
	if !ok {
		return refuse(http.StatusRequestEntityTooLarge, extauth.ReasonBodyTooLarge, "body_too_large",
			"weft: the request body is longer than the "+strconv.FormatInt(a.MaxBody, 10)+" bytes external authorization may read (forwardBody.maxSize)")
	}
	if cfg.Services[a.Service] == nil {
		return refuse(http.StatusServiceUnavailable, extauth.ReasonUnavailable, "unavailable", "weft: external authorization service "+a.Service+" is not in the mesh")
	}
	ctx, cancel := context.WithTimeout(ctx, a.Timeout)
	defer cancel()
	lease, err := l.pick(ctx, cfg, a.Service)
	if err != nil {
		return refuse(http.StatusServiceUnavailable, extauth.ReasonUnavailable, "unavailable", "weft: external authorization: "+err.Error())
	}
	defer lease.Done()
	req, err := a.Request(ctx, r, body)
	if err != nil {
		return refuse(http.StatusServiceUnavailable, extauth.ReasonUnavailable, "unavailable", "weft: external authorization: "+err.Error())
	}
	req.URL.Scheme, req.URL.Host = "https", lease.Endpoint.Address
	rt := lease.HTTP1()
	if a.GRPC() {
		rt = lease.HTTP2()
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return refuse(http.StatusServiceUnavailable, extauth.ReasonUnavailable, "unavailable", "weft: external authorization service "+a.Service+" at "+lease.Endpoint.Address+": "+err.Error())
	}
	defer resp.Body.Close()
	d := a.Decide(resp)
	switch {
	case d.Allowed:
		a.Apply(r.Header, d.Header)
		for _, k := range d.Remove {
			delete(r.Header, k)
		}
		l.opts.Metrics.ExternalAuthCheck(dest, route.Name, "allowed")
		return false
	case d.Unavailable:
		return refuse(http.StatusServiceUnavailable, extauth.ReasonUnavailable, "unavailable", "weft: external authorization service "+a.Service+" failed: "+d.Err.Error())
	}
	h := sw.Header()
	for k, vs := range d.Header {
		h[k] = vs
	}
	h.Set(ReasonHeader, extauth.ReasonDenied)
	sw.WriteHeader(d.Status)
	sw.Write(d.Body)
	l.opts.Metrics.ExternalAuthCheck(dest, route.Name, "denied")
	return true
}
