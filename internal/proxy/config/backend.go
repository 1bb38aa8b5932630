package config

import "weft.dev/weft/internal/xdsapi/weftv1"

func buildBackend(b *weftv1.Backend) Backend {
	out := Backend{Weight: b.GetWeight(), FailStatus: int(b.GetFailStatus()), FailReason: b.GetFailReason()}
	if out.FailStatus == 0 {
		out.Service = weftv1.ResourceName(b.GetService(), b.GetNamespace())
	}
	return out
}

// Pick chooses a backend by weight; n is a uniformly distributed random
// number. It returns nil when every weight is zero (the Gateway API then
// answers 500, as for a backend that cannot be resolved).
func (rt *Route) Pick(n uint32) *Backend {
	if rt.totalWeight == 0 {
		return nil
	}
	if len(rt.Backends) == 1 {
		return &rt.Backends[0]
	}
	n %= rt.totalWeight
	for i := range rt.Backends {
		if n < rt.Backends[i].Weight {
			return &rt.Backends[i]
		}
		n -= rt.Backends[i].Weight
	}
	return &rt.Backends[len(rt.Backends)-1]
}
