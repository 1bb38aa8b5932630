package xdsgen

import (
	"time"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// breakerLimits is what the breaker stage takes from a DestinationPolicy:
// its connection limits and adaptive concurrency, by target service key.
type breakerLimits struct {
	limits   *weftv1.ConnectionLimits
	adaptive *weftv1.AdaptiveConcurrency
}

// compileBreakers translates the connectionPool and adaptiveConcurrency of
// every DestinationPolicy of cfg. Of two policies for one service, the last
// in the configuration's order wins, as for the load balancer.
func compileBreakers(cfg *api.Set) map[string]breakerLimits {
	out := map[string]breakerLimits{}
	for _, dp := range cfg.DestinationPolicies {
		key := policyTarget(dp).key()
		b := breakerLimits{limits: ConnectionLimits(dp.Spec.ConnectionPool), adaptive: AdaptiveConcurrency(dp.Spec.AdaptiveConcurrency)}
		if b.limits == nil && b.adaptive == nil {
			delete(out, key)
			continue
		}
		out[key] = b
	}
	return out
}

// ConnectionLimits translates a (validated) connectionPool; nil when it
// sets no limit of the breaker stage.
func ConnectionLimits(cp *api.ConnectionPool) *weftv1.ConnectionLimits {
	if cp == nil || cp.MaxConnections == 0 && cp.MaxConcurrentRequests == 0 {
		return nil
	}
	return &weftv1.ConnectionLimits{
		MaxConnections:        uint32(cp.MaxConnections),
		MaxPendingRequests:    uint32(cp.MaxPendingRequests),
		MaxConcurrentRequests: uint32(cp.MaxConcurrentRequests),
	}
}

// AdaptiveConcurrency translates a (validated) adaptiveConcurrency, filling
// in the defaults; nil when it is nil.
func AdaptiveConcurrency(ac *api.AdaptiveConcurrency) *weftv1.AdaptiveConcurrency {
	if ac == nil {
		return nil
	}
	or := func(v, def int32) uint32 {
		if v == 0 {
			return uint32(def)
		}
		return uint32(v)
	}
	out := &weftv1.AdaptiveConcurrency{
		UpdateIntervalMs:     durationMs(ac.UpdateInterval, api.DefaultAdaptiveUpdateInterval),
		MinRttIntervalMs:     durationMs(ac.MinRTTInterval, api.DefaultAdaptiveMinRTTInterval),
		MinLimit:             or(ac.MinLimit, api.DefaultAdaptiveMinLimit),
		LatencyBufferPercent: or(ac.LatencyBufferPercent, api.DefaultAdaptiveLatencyBuffer),
	}
	out.MaxLimit = max(or(ac.MaxLimit, api.DefaultAdaptiveMaxLimit), out.MinLimit)
	out.InitialLimit = min(max(or(ac.InitialLimit, api.DefaultAdaptiveInitialLimit), out.MinLimit), out.MaxLimit)
	return out
}

// durationMs is a validated Go duration (def when empty) in milliseconds.
func durationMs(s, def string) uint32 {
	if s == "" {
		s = def
	}
	d, _ := time.ParseDuration(s) // validated by the API
	return uint32(d / time.Millisecond)
}
