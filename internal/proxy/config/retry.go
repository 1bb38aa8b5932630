package config

import (
	"time"

	"weft.dev/weft/internal/proxy/retry"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// Retry is what the attempt loop reads from a destination service: its
// compiled retry policy and budget limits.
type Retry struct {
	// Policy applies to requests to the service on a route without retry
	// (retry.Default unless a DestinationPolicy or MeshConfig changed it).
	Policy retry.Policy
	// Budget are the limits of the service's retry budget.
	Budget retry.BudgetParams
}

// DefaultRetry is the Retry of a destination the proxy has no Service
// resource for.
var DefaultRetry = Retry{Policy: retry.Default, Budget: retry.DefaultBudget}

// buildServiceRetry compiles the retry fields (60-69) of a validated
// Service resource.
func buildServiceRetry(s *weftv1.Service) Retry {
	out := DefaultRetry
	if s.GetDefaultRetryOff() {
		out.Policy = retry.DefaultOff
	}
	out.Budget.MaxConcurrent = s.GetMaxConcurrentRetries()
	r := s.GetRetry()
	if r == nil {
		return out
	}
	p := &out.Policy
	if r.Attempts != nil {
		p.Attempts = int(r.GetAttempts())
	}
	if ms := r.GetPerTryTimeoutMs(); ms > 0 {
		p.PerTry = time.Duration(ms) * time.Millisecond
	}
	if ms := r.GetBackoffMs(); ms > 0 {
		p.Backoff = time.Duration(ms) * time.Millisecond
	}
	if r.MaxBufferedBodyBytes != nil {
		p.MaxBufferedBody = int64(r.GetMaxBufferedBodyBytes())
	}
	if on := r.GetRetryOn(); len(on) > 0 {
		// Listed conditions replace the default and apply to every
		// method: the user says these requests are safe to repeat.
		p.On, p.IdempotentOnly = 0, false
		for _, name := range on {
			if code, ok := weftv1.GRPCRetryCodes[name]; ok {
				p.AddGRPC(code)
				continue
			}
			p.On |= retryConditions[name]
		}
	}
	if b := r.GetBudget(); b != nil {
		if b.Percent != nil {
			out.Budget.Percent = b.GetPercent()
		}
		if b.MinRetriesPerSecond != nil {
			out.Budget.MinPerSecond = b.GetMinRetriesPerSecond()
		}
		if ms := b.GetWindowMs(); ms > 0 {
			out.Budget.Window = time.Duration(ms) * time.Millisecond
		}
	}
	return out
}

// retryConditions maps weftv1.RetryConditions to policy conditions.
var retryConditions = map[string]retry.Condition{
	"5xx":             retry.On5xx,
	"gateway-error":   retry.OnGatewayError,
	"reset":           retry.OnReset,
	"connect-failure": retry.OnConnectFailure,
	"retriable-4xx":   retry.OnRetriable4xx,
}

// buildRouteRetry compiles the retry fields (50-59) of a Route: an
// HTTPRoute retry retries its codes, connect failures, resets and
// backendRequest timeouts for every method (Gateway API GEP-1731).
func buildRouteRetry(route *Route, r *weftv1.Route) {
	route.BackendTimeout = time.Duration(r.GetBackendRequestTimeoutMs()) * time.Millisecond
	rt := r.GetRetry()
	if rt == nil {
		return
	}
	p := &retry.Policy{
		Attempts: int(rt.GetAttempts()),
		On:       retry.OnConnectFailure | retry.OnReset | retry.OnPerTryTimeout,
		Backoff:  retry.Default.Backoff,
	}
	if ms := rt.GetBackoffMs(); ms > 0 {
		p.Backoff = time.Duration(ms) * time.Millisecond
	}
	for _, c := range rt.GetCodes() {
		p.AddCode(int(c))
	}
	route.Retry = p
}
