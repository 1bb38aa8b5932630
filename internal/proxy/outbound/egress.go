package outbound

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"time"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/egress"
	"weft.dev/weft/internal/proxy/upstream"
)

// egressHTTP governs an absolute-form request for a host outside the mesh
// (internal/proxy/egress). It returns false when the request is to pass
// through as before: no ExternalService declares the host and the mode is
// ALLOW_ANY. Otherwise it has answered: refused with 502 and
// x-weft-reason: registry-only under REGISTRY_ONLY, or forwarded as a call
// to the declaring ExternalService (its metrics, access log, tap and
// trace; TLS origination when it asks for it).
//
// A host whose ExternalService names an egress gateway is sent, as a mesh
// request, to that gateway's workloads, unless this proxy is an egress
// gateway itself (Options.EgressGateway), which calls the host.
func (l *Listener) egressHTTP(w http.ResponseWriter, r *http.Request) bool {
	cfg := l.opts.Provider.Load()
	eg := cfg.Egress
	if eg == nil || eg.Empty() {
		return false
	}
	x, hostOnly := eg.Lookup(r.URL.Host, defaultPort(r.URL.Scheme))
	switch {
	case x == nil && !eg.RegistryOnly():
		return false
	case x == nil:
		l.refuseEgress(w, r, hostOnly, "http")
	case x.Gateway != "" && !l.opts.EgressGateway:
		gw := cfg.Services[x.Gateway]
		if gw == nil {
			w.Header().Set(ReasonHeader, egress.ReasonGateway)
			upstream.WriteError(w, r, http.StatusServiceUnavailable, "weft: the egress gateway "+x.Gateway+" of ExternalService "+x.Key+" is not a mesh service: no workload runs `weft run --service "+x.Gateway+" --egress`")
			return true
		}
		l.forward(w, r, cfg, gw) // to the gateway over mTLS, as a mesh call
	default:
		l.forwardExternal(w, r, eg.Observed(x), x)
	}
	return true
}

// gatewayHTTP serves, on an egress gateway (Options.EgressGateway), a
// request its inbound listener passed on from a mesh caller: in origin
// form, for the host in its Host header. Mesh services are refused (403):
// the gateway must not lend its identity to its callers. The caller's
// identity header is not sent outside.
func (l *Listener) gatewayHTTP(w http.ResponseWriter, r *http.Request) {
	cfg := l.opts.Provider.Load()
	if cfg.Resolve(r.Host, l.opts.Namespace) != nil {
		w.Header().Set(ReasonHeader, egress.ReasonGateway)
		upstream.WriteError(w, r, http.StatusForbidden, "weft: egress gateway "+l.source+" calls hosts outside the mesh only; "+r.Host+" is a mesh service")
		return
	}
	if _, ok := cfg.MeshName(r.Host); ok {
		w.Header().Set(ReasonHeader, egress.ReasonGateway)
		upstream.WriteError(w, r, http.StatusForbidden, "weft: egress gateway "+l.source+" calls hosts outside the mesh only; "+r.Host+" is a mesh name")
		return
	}
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	r.URL = &u
	delete(r.Header, "X-Forwarded-Client-Cert")
	l.passthroughHTTP(w, r)
}

// egressConnect governs a CONNECT to a host outside the mesh: it returns
// the destination_service of the tunnel ("passthrough", or the declaring
// ExternalService) and false when it refused the tunnel (REGISTRY_ONLY).
// A tunnel carries what the app sends (TLS from the app, usually): weft
// does not originate TLS inside a CONNECT tunnel.
func (l *Listener) egressConnect(w http.ResponseWriter, r *http.Request, cfg *config.Config) (string, bool) {
	eg := cfg.Egress
	if eg == nil || eg.Empty() {
		return "passthrough", true
	}
	x, hostOnly := eg.Lookup(r.Host, 443)
	switch {
	case x != nil && x.Gateway != "" && !l.opts.EgressGateway:
		w.Header().Set(ReasonHeader, egress.ReasonGateway)
		upstream.WriteError(w, r, http.StatusBadGateway, "weft: ExternalService "+x.Key+" sends its calls through egress gateway "+x.Gateway+", which carries plain HTTP requests only: call http://"+r.Host+" (with tls.mode ORIGINATE for a TLS host) instead of CONNECT")
		return "", false
	case x != nil:
		return x.Key, true
	case !eg.RegistryOnly():
		return "passthrough", true
	}
	l.refuseEgress(w, r, hostOnly, "connect")
	return "", false
}

// refuseEgress answers a request or CONNECT for an undeclared host (or a
// declared host's undeclared port, hostOnly) under REGISTRY_ONLY.
func (l *Listener) refuseEgress(w http.ResponseWriter, r *http.Request, hostOnly *egress.Service, kind string) {
	authority := r.Host
	if r.URL.Host != "" {
		authority = r.URL.Host
	}
	class, msg := egress.HostClass(authority), egress.Message(authority)
	if hostOnly != nil {
		class, msg = hostOnly.Key, egress.PortMessage(authority, hostOnly)
	}
	l.opts.Metrics.EgressRefused(class, kind)
	w.Header().Set(ReasonHeader, egress.Reason)
	upstream.WriteError(w, r, http.StatusBadGateway, msg)
}

// originateKey holds, in a request's context, the TLS-originating
// transport of its ExternalService.
type originateKey struct{}

// forwardExternal sends a request to declared external service x, observed
// as svc.
func (l *Listener) forwardExternal(w http.ResponseWriter, r *http.Request, svc *config.Service, x *egress.Service) {
	start := time.Now()
	sw := upstream.NewStatusWriter(w)
	defer sw.Release()
	ex := l.observe(&r, sw, svc, start) // observe.go: metrics, access log, tap, trace
	defer ex.finish()
	ex.labels.TLS = x.Originate != nil
	if x.Originate != nil {
		r = r.WithContext(context.WithValue(r.Context(), originateKey{}, x.Originate))
	}
	if r.ProtoMajor == 1 {
		http.NewResponseController(w).EnableFullDuplex()
	}
	l.egressProxy.ServeHTTP(sw, r)
}

// newEgressProxy is the reverse proxy of declared external hosts: plain
// pass-through, or TLS origination for a request whose context holds its
// transport.
func (l *Listener) newEgressProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{Rewrite: rewriteEgress, Transport: egressTransport{pass: l.passTr}, BufferPool: upstream.BufferPool,
		ErrorLog: l.passthrough.ErrorLog, ErrorHandler: egressError}
}

// rewriteEgress points a TLS-originated request at https on the port the
// app named (443 when it named none).
func rewriteEgress(pr *httputil.ProxyRequest) {
	restoreForwarded(pr)
	if _, ok := pr.In.Context().Value(originateKey{}).(*http.Transport); !ok {
		return
	}
	u := *pr.Out.URL
	u.Scheme = "https"
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), "443")
	}
	pr.Out.URL = &u
}

// egressTransport sends TLS-originated requests with their
// ExternalService's transport, others with the pass-through one.
type egressTransport struct{ pass http.RoundTripper }

func (t egressTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if tr, ok := r.Context().Value(originateKey{}).(*http.Transport); ok {
		return tr.RoundTrip(r)
	}
	return t.pass.RoundTrip(r)
}

// egressError answers a failed call to an external host: 502, with
// x-weft-reason: tls-origination when the proxy was originating TLS (a
// handshake or certificate failure never falls back to plaintext).
func egressError(w http.ResponseWriter, r *http.Request, err error) {
	if _, ok := r.Context().Value(originateKey{}).(*http.Transport); ok {
		w.Header().Set(ReasonHeader, egress.ReasonTLS)
		upstream.WriteError(w, r, http.StatusBadGateway, fmt.Sprintf("weft: TLS origination to %s failed: %v", r.Host, err))
		return
	}
	passthroughError(w, r, err)
}

// defaultPort is the port of a URL scheme that names none.
func defaultPort(scheme string) uint32 {
	if scheme == "https" {
		return 443
	}
	return 80
}
