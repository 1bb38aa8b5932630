package upstream

import (
	"slices"
	"time"

	"weft.dev/weft/internal/proxy/balancer"
	"weft.dev/weft/internal/proxy/config"
)

// Pick chooses one of eps for a request to the service with the given key,
// using algorithm lb, and counts it in flight until the Lease is Done. It
// is PickWith without consistent-hash key or session, with the outlier
// detection of the service's last PickWith (so that a pick for a retry or
// a tunnel feeds the same detector).
func (p *Pool) Pick(key string, lb config.LoadBalancer, eps []config.Endpoint) (Lease, error) {
	if len(eps) == 0 {
		return Lease{}, ErrNoEndpoints
	}
	d := p.Destination(key)
	return p.lease(d, balancer.Request{Algorithm: lb, Spec: d.Spec()}, eps), nil
}

// PickWith chooses one of eps for req (see package balancer) and counts it
// in flight until the Lease is Done.
func (p *Pool) PickWith(key string, req balancer.Request, eps []config.Endpoint) (Lease, error) {
	if len(eps) == 0 {
		return Lease{}, ErrNoEndpoints
	}
	d := p.Destination(key)
	d.SetSpec(req.Spec)
	return p.lease(d, req, eps), nil
}

func (p *Pool) lease(d *balancer.Destination, req balancer.Request, eps []config.Endpoint) Lease {
	i, st := d.Pick(req, eps)
	ep := &eps[i]
	pr := p.peer(ep)
	pr.inflight.Add(1)
	return Lease{Endpoint: ep, peer: pr, dest: d, state: st, spec: req.Spec}
}

// Destination returns the long-lived balancer state of service key.
func (p *Pool) Destination(key string) *balancer.Destination {
	if d, ok := p.dests.Load(key); ok {
		return d.(*balancer.Destination)
	}
	v, _ := p.dests.LoadOrStore(key, balancer.NewDestination(key, p.opts.Balancer))
	return v.(*balancer.Destination)
}

// Observe records the outcome of one attempt on the leased endpoint — its
// response status (0 with err), error and the latency to its response
// headers — for the latency estimate and outlier detection.
func (l Lease) Observe(status int, err error, latency time.Duration) {
	if l.state == nil {
		return
	}
	l.dest.Observe(l.state, l.spec, status, err, err != nil && IsConnectError(err), latency)
}

// Ejected lists, by service key, the addresses of the endpoints outlier
// detection ejected now (for the admin config dump).
func (p *Pool) Ejected() map[string][]string {
	out := map[string][]string{}
	p.dests.Range(func(k, d any) bool {
		if addrs := d.(*balancer.Destination).EjectedAddresses(); len(addrs) > 0 {
			slices.Sort(addrs)
			out[k.(string)] = addrs
		}
		return true
	})
	return out
}

// InFlight reports the requests in flight to the endpoint at addr (for
// tests and debugging).
func (p *Pool) InFlight(addr string) int64 {
	if pr := (*p.peers.Load())[addr]; pr != nil {
		return pr.inflight.Load()
	}
	return 0
}
