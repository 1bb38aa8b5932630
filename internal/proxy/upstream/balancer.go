package upstream

import (
	"math/rand/v2"
	"sync/atomic"

	"weft.dev/weft/internal/proxy/config"
)

// Pick chooses one of eps for a request to the service with the given key,
// using algorithm lb, and counts it in flight until the Lease is Done.
//
//   - RoundRobin: an atomic counter per service.
//   - Random: uniform.
//   - LeastRequest: power of two choices over in-flight counts per endpoint.
func (p *Pool) Pick(key string, lb config.LoadBalancer, eps []config.Endpoint) (Lease, error) {
	n := len(eps)
	if n == 0 {
		return Lease{}, ErrNoEndpoints
	}
	var ep *config.Endpoint
	var pr *peer
	switch {
	case n == 1:
		ep = &eps[0]
	case lb == config.Random:
		ep = &eps[rand.IntN(n)]
	case lb == config.LeastRequest:
		i := rand.IntN(n)
		j := rand.IntN(n - 1)
		if j >= i {
			j++
		}
		a, b := p.peer(&eps[i]), p.peer(&eps[j])
		if b.inflight.Load() < a.inflight.Load() {
			ep, pr = &eps[j], b
		} else {
			ep, pr = &eps[i], a
		}
	default:
		ep = &eps[p.counter(key).Add(1)%uint32(n)]
	}
	if pr == nil {
		pr = p.peer(ep)
	}
	pr.inflight.Add(1)
	return Lease{Endpoint: ep, peer: pr}, nil
}

func (p *Pool) counter(key string) *atomic.Uint32 {
	if c, ok := p.rr.Load(key); ok {
		return c.(*atomic.Uint32)
	}
	c := new(atomic.Uint32)
	// Start services at different offsets so proxies that start together
	// do not all hit the first endpoint first.
	c.Store(rand.Uint32())
	v, _ := p.rr.LoadOrStore(key, c)
	return v.(*atomic.Uint32)
}

// InFlight reports the requests in flight to the endpoint at addr (for
// tests and debugging).
func (p *Pool) InFlight(addr string) int64 {
	if pr := (*p.peers.Load())[addr]; pr != nil {
		return pr.inflight.Load()
	}
	return 0
}
