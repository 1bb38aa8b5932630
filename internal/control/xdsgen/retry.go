package xdsgen

import (
	"maps"
	"time"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// routeRetry sets the retry and backendRequest timeout of the route
// compiled from an HTTPRoute rule (validated: durations parse and fit).
func routeRetry(r *weftv1.Route, rule gatewayv1.HTTPRouteRule) {
	if t := rule.Timeouts; t != nil && t.BackendRequest != nil {
		r.BackendRequestTimeoutMs = gatewayMillis(t.BackendRequest)
	}
	rt := rule.Retry
	if rt == nil {
		return
	}
	out := &weftv1.RouteRetry{Attempts: 2, BackoffMs: gatewayMillis(rt.Backoff)}
	if rt.Attempts != nil {
		out.Attempts = uint32(*rt.Attempts)
	}
	for _, c := range rt.Codes {
		out.Codes = append(out.Codes, uint32(c))
	}
	r.Retry = out
}

// gatewayMillis is a Gateway API duration in milliseconds; 0 when nil.
func gatewayMillis(d *gatewayv1.Duration) uint32 {
	if d == nil {
		return 0
	}
	v, err := time.ParseDuration(string(*d))
	if err != nil {
		return 0
	}
	return uint32(v.Milliseconds())
}

// serviceRetry is what a Service resource takes from its DestinationPolicy
// for retries.
type serviceRetry struct {
	policy        *weftv1.ServiceRetry
	maxConcurrent uint32
}

// compileRetries compiles the retry settings of the DestinationPolicies of
// cfg, by target service key, for the targets in only (all when nil). Of two
// policies for one service the last in the configuration's order wins, as
// for load balancing.
func compileRetries(cfg *api.Set, only map[serviceRef]bool) map[string]serviceRetry {
	out := map[string]serviceRetry{}
	for _, dp := range cfg.DestinationPolicies {
		t := policyTarget(dp)
		if only != nil && !only[t] {
			continue
		}
		var sr serviceRetry
		if cp := dp.Spec.ConnectionPool; cp != nil && cp.MaxConcurrentRetries > 0 {
			sr.maxConcurrent = uint32(cp.MaxConcurrentRetries)
		}
		if r := dp.Spec.Retry; r != nil {
			sr.policy = ServiceRetry(r)
		}
		if sr == (serviceRetry{}) {
			delete(out, t.key())
			continue
		}
		out[t.key()] = sr
	}
	return out
}

// ServiceRetry translates a (validated) DestinationPolicy retry.
func ServiceRetry(r *api.RetryPolicy) *weftv1.ServiceRetry {
	out := &weftv1.ServiceRetry{
		PerTryTimeoutMs: millis(r.PerTryTimeout),
		RetryOn:         r.RetryOn,
		BackoffMs:       millis(r.Backoff),
	}
	out.Attempts = optUint32(r.Attempts)
	out.MaxBufferedBodyBytes = optUint32(r.MaxBufferedBodyBytes)
	if b := r.Budget; b != nil {
		out.Budget = &weftv1.RetryBudget{
			Percent:             optUint32(b.Percent),
			MinRetriesPerSecond: optUint32(b.MinRetriesPerSecond),
			WindowMs:            millis(b.Window),
		}
	}
	return out
}

// optUint32 converts an optional (validated, non-negative) API integer.
func optUint32(p *int32) *uint32 {
	if p == nil {
		return nil
	}
	v := uint32(*p)
	return &v
}

// millis is a (validated) Go duration in milliseconds; 0 when empty.
func millis(s string) uint32 {
	d, err := time.ParseDuration(s)
	if s == "" || err != nil {
		return 0
	}
	return uint32(d.Milliseconds())
}

// defaultRetryOff reports whether the MeshConfig turns the default retry
// policy off.
func defaultRetryOff(cfg *api.Set) bool {
	mc := cfg.MeshConfig
	return mc != nil && mc.Spec.Defaults != nil && mc.Spec.Defaults.Retry != nil &&
		mc.Spec.Defaults.Retry.Enabled != nil && !*mc.Spec.Defaults.Retry.Enabled
}

// setRetry fills in the retry fields of the Service resource of key.
func (r *Routing) setRetry(svc *weftv1.Service, key string) {
	sr := r.retries[key]
	svc.Retry = sr.policy
	svc.MaxConcurrentRetries = sr.maxConcurrent
	svc.DefaultRetryOff = r.retryOff
}

// updateRetries recompiles the retry settings of targets (services whose
// DestinationPolicies changed) for cfg.
func (r *Routing) updateRetries(cfg *api.Set, targets map[serviceRef]bool) map[string]serviceRetry {
	if len(targets) == 0 {
		return r.retries
	}
	compiled := compileRetries(cfg, targets)
	next := maps.Clone(r.retries)
	if next == nil {
		next = map[string]serviceRetry{}
	}
	for t := range targets {
		if sr, ok := compiled[t.key()]; ok {
			next[t.key()] = sr
		} else {
			delete(next, t.key())
		}
	}
	return next
}
