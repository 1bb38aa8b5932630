package outbound

import (
	"context"
	"net"
	"net/http"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/upstream"
)

// ServeGateway serves a request that an ingress gateway accepted, with the
// routes of svc (the Gateway's routes for the request's host), through the
// same pipeline as the app's requests to a mesh service: route match and
// filters, faults, mirrors, admission, endpoint pick, retries, mTLS to the
// backend's proxy with this proxy's identity. A request that no route
// matches is answered 404 with x-weft-reason no-matching-route.
func (l *Listener) ServeGateway(w http.ResponseWriter, r *http.Request, svc *config.Service) {
	if svc.Match(r, l.opts.Namespace) == nil {
		w.Header().Set("X-Weft-Reason", "no-matching-route")
		upstream.WriteError(w, r, http.StatusNotFound, "weft: gateway "+svc.Key+" has no route for "+r.Method+" "+r.URL.Path+" on host "+r.Host)
		return
	}
	l.forward(w, r, l.opts.Provider.Load(), svc)
}

// ServeGatewayStream forwards a connection that an ingress gateway's TLS
// (passthrough) or TCP listener accepted to a peer proxy of service key as
// an opaque stream, as a CONNECT tunnel's is; it returns when the stream
// ends. The connection is closed.
func (l *Listener) ServeGatewayStream(ctx context.Context, c net.Conn, key string) {
	l.forwardOpaque(ctx, l.opts.Provider.Load(), c, key, "gateway")
}
