package outbound

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"time"
	"weft.dev/weft/internal/proxy/h1fast"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/proxy/telemetry"
	"weft.dev/weft/internal/proxy/upstream"
)

// serving is the state of one Serve call; it is the servers' handler.
type serving struct {
	l       *Listener
	ctx     context.Context
	tunnels *h1fast.ConnListener
	group   group
}

// ServeHTTP handles one request from the app.
func (s *serving) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		s.connect(w, r)
		return
	}
	if s.l.opts.EgressGateway && r.URL.Host == "" {
		s.l.gatewayHTTP(w, r) // egress.go
		return
	}
	cfg := s.l.opts.Provider.Load()
	var svc *config.Service
	if key, ok := r.Context().Value(tunnelKey{}).(string); ok {
		if svc = cfg.Services[key]; svc == nil {
			upstream.WriteError(w, r, http.StatusServiceUnavailable, "weft: service "+key+" left the mesh")
			return
		}
	} else if svc = cfg.Resolve(r.Host, s.l.opts.Namespace); svc == nil {
		if name, ok := cfg.MeshName(r.Host); ok {
			upstream.WriteError(w, r, http.StatusServiceUnavailable, unknownServiceMessage(name))
			return
		}
		s.l.passthroughHTTP(w, r)
		return
	}
	s.l.forward(w, r, cfg, svc)
}

// reqState carries one mesh request through ReverseProxy. It is the
// request's context itself, saving a context.WithValue allocation.
type reqState struct {
	context.Context
	lease upstream.Lease
	dest  string
	// For retries on another endpoint.
	lb   config.LoadBalancer
	eps  []config.Endpoint
	pool *upstream.Pool

	retry retryState // retry.go
	route []string   // the matched route's x-weft-route value, for the peer (routelabel.go)
}

type stateKey struct{}

func (st *reqState) Value(k any) any {
	if k == (stateKey{}) {
		return st
	}
	return st.Context.Value(k)
}

// forward sends a request for mesh service svc to a peer proxy.
func (l *Listener) forward(w http.ResponseWriter, r *http.Request, cfg *config.Config, svc *config.Service) {
	start := time.Now()
	sw := upstream.NewStatusWriter(w)
	defer sw.Release()
	ex := l.observe(&r, sw, svc, start) // observe.go: metrics, access log, tap, trace
	defer ex.finish()
	labels := &ex.labels

	key := svc.Key
	if r.ProtoMajor == 2 {
		var cancel context.CancelFunc
		r, cancel = upstream.WithGRPCDeadline(r)
		defer cancel()
	}
	ctx := r.Context()
	route := svc.Match(r, l.opts.Namespace)
	matched := route // for the retry stage
	if route != nil {
		labels.Route = route.Name
		b := route.Pick(rand.Uint32())
		if l.routeFilters(sw, r, svc.Key, route, b) {
			return
		}
		if status, msg := unforwardable(cfg, route, b); status != 0 {
			upstream.WriteError(sw, r, status, msg)
			return
		}
		key = b.Service
		if route.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeoutCause(ctx, route.Timeout, errRequestTimeout)
			defer cancel()
		}
		if l.externalAuth(ctx, sw, r, cfg, route, b, key) { // extauth.go
			return
		}
		if l.injectFault(ctx, sw, r, route, b, key) { // fault.go
			return
		}
		r = l.mirror(r, cfg, route, b) // mirror.go
	} else if len(svc.RoutesFor(l.opts.Namespace)) > 0 {
		upstream.WriteError(sw, r, http.StatusNotFound, "weft: no route for "+r.URL.Path+" on "+svc.Key)
		return
	}
	labels.DestinationService = key
	ctx, adm, ok := l.admit(ctx, sw, r, cfg, key) // breaker.go
	if !ok {
		return
	}
	defer adm.Done()

	eps, err := l.endpoints(ctx, cfg, key)
	if err != nil {
		upstream.WriteError(sw, r, http.StatusServiceUnavailable, err.Error())
		return
	}
	lb := lbFor(cfg, key)
	lease, err := l.pickFor(sw, r, cfg, key, route, eps)
	if err != nil {
		upstream.WriteError(sw, r, http.StatusServiceUnavailable, err.Error())
		return
	}
	st := &reqState{Context: ctx, lease: lease, dest: key, lb: lb, eps: eps, pool: l.pool, retry: l.retryFor(cfg, matched, key, start), route: peerRoute(matched)}
	ex.st = st
	defer func() { st.lease.Done() }()
	r = r.WithContext(st)
	if r.ProtoMajor == 2 {
		l.h2.ServeHTTP(sw, r)
		return
	}
	if r.ProtoMajor == 1 {
		// Let bidirectional HTTP/1.1 streams flow.
		http.NewResponseController(w).EnableFullDuplex()
	}
	l.h1.ServeHTTP(sw, r)
}

// endpoints returns the endpoints of service key, waiting (bounded) for
// them when the proxy has not subscribed to them yet.
func (l *Listener) endpoints(ctx context.Context, cfg *config.Config, key string) ([]config.Endpoint, error) {
	eps, ok := cfg.Endpoints[key]
	if !ok {
		l.opts.Metrics.EndpointWait(key)
		wctx, cancel := context.WithTimeout(ctx, l.opts.EndpointsTimeout)
		var err error
		eps, err = l.opts.Provider.Endpoints(wctx, key)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("weft: no healthy endpoints for %s: %w", key, err)
		}
	}
	if len(eps) == 0 {
		return nil, errors.New("weft: no healthy endpoints for " + key)
	}
	return eps, nil
}

// pick waits (bounded) for the endpoints of service key and picks one.
func (l *Listener) pick(ctx context.Context, cfg *config.Config, key string) (upstream.Lease, error) {
	eps, err := l.endpoints(ctx, cfg, key)
	if err != nil {
		return upstream.Lease{}, err
	}
	lb := lbFor(cfg, key)
	return l.pool.Pick(key, lb, eps)
}

// lbFor is the load-balancing algorithm of service key.
func lbFor(cfg *config.Config, key string) config.LoadBalancer {
	if b := cfg.Services[key]; b != nil {
		return b.LoadBalancer
	}
	return config.RoundRobin
}

// leaseTransport sends a request over the picked endpoint's pool.
type leaseTransport struct{ h2 bool }

// rewriteMeshRequest points an HTTP/1.1 request at the picked endpoint.
func rewriteMeshRequest(out *http.Request) {
	st := out.Context().Value(stateKey{}).(*reqState)
	u := *out.URL
	u.Scheme, u.Host = "https", st.lease.Endpoint.Address
	out.URL = &u
	setRouteHeader(out.Header, st.route) // routelabel.go
}

func (l *Listener) meshError(w http.ResponseWriter, r *http.Request, err error) {
	st := r.Context().Value(stateKey{}).(*reqState)
	ep := st.lease.Endpoint
	switch {
	case l.writeRejection(w, r, err): // breaker.go: a connection limit
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(st.Err(), context.DeadlineExceeded):
		l.markTimeout(w, st, err) // retry.go
		upstream.WriteError(w, r, http.StatusGatewayTimeout, fmt.Sprintf("weft: %s timed out (endpoint %s)", st.dest, ep.Address))
	default:
		who := ep.Identity.String()
		if ep.Plaintext {
			who = "no sidecar"
		}
		upstream.WriteError(w, r, http.StatusBadGateway, fmt.Sprintf("weft: upstream %s at %s (%s): %v", st.dest, ep.Address, who, err))
	}
}

// passthroughHTTP forwards a request for a non-mesh destination unchanged.
func (l *Listener) passthroughHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Scheme == "" || r.URL.Host == "" {
		// Origin form to a name outside the mesh: there is nowhere to send
		// it but back to ourselves.
		upstream.WriteError(w, r, http.StatusNotFound, "weft: "+r.Host+" is not a mesh service; send absolute-form proxy requests to reach other hosts")
		return
	}
	if l.egressHTTP(w, r) { // egress.go: REGISTRY_ONLY, ExternalServices
		return
	}
	start := time.Now()
	sw := upstream.NewStatusWriter(w)
	defer sw.Release()
	if r.ProtoMajor == 1 {
		http.NewResponseController(w).EnableFullDuplex()
	}
	l.passthrough.ServeHTTP(sw, r)
	l.opts.Metrics.ClientRequest(telemetry.RequestLabels{
		SourceService: l.source, SourceNamespace: l.opts.Namespace, SourceIdentity: l.selfID, DestinationService: "passthrough", Method: r.Method, Status: sw.Status,
	}, time.Since(start), r.ContentLength, sw.Bytes)
}

func rewritePassthrough(pr *httputil.ProxyRequest) {
	restoreForwarded(pr) // the URL is already absolute; Host stays as sent
}

func passthroughError(w http.ResponseWriter, r *http.Request, err error) {
	upstream.WriteError(w, r, http.StatusBadGateway, passthroughMessage(r.Host, err))
}

// unknownServiceMessage explains a mesh-looking name that is no service.
func unknownServiceMessage(name string) string {
	return "weft: no mesh service " + name + " (no workload registered it and no Service resource declares it)"
}

// passthroughMessage explains a failed pass-through. A name that resolves
// nowhere is most often a mistyped or not yet registered mesh service, so
// the message says so instead of only quoting the DNS error.
func passthroughMessage(host string, err error) string {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return "weft: " + host + " is not a mesh service (no workload registered it and no Service resource declares it) and does not resolve outside the mesh"
	}
	return "weft: passthrough to " + host + ": " + err.Error()
}

// restoreForwarded puts back the X-Forwarded-* headers ReverseProxy strips
// before Rewrite: weft forwards requests unchanged.
func restoreForwarded(pr *httputil.ProxyRequest) {
	for _, k := range [...]string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		if v, ok := pr.In.Header[k]; ok {
			pr.Out.Header[k] = v
		}
	}
}
