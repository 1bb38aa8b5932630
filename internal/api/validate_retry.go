package api

import (
	"maps"
	"slices"
	"strings"
	"time"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// maxTimeout bounds HTTPRoute timeouts: they travel as uint32 milliseconds.
const maxTimeout = 1000 * time.Hour

// retryOnValues are the values DestinationPolicy retryOn accepts: HTTP
// conditions, then gRPC status names.
var retryOnValues = slices.Concat(weftv1.RetryConditions, slices.Sorted(maps.Keys(weftv1.GRPCRetryCodes)))

// validateRouteRetry checks the timeouts and retry of HTTPRoute rule rp.
func validateRouteRetry(e *errs, rp fieldPath, rule gatewayv1.HTTPRouteRule) {
	if t := rule.Timeouts; t != nil {
		tp := rp.child("timeouts")
		req, reqOK := validateTimeout(e, tp.child("request"), t.Request)
		be, beOK := validateTimeout(e, tp.child("backendRequest"), t.BackendRequest)
		if reqOK && beOK && req != 0 && be > req {
			e.add(tp.child("backendRequest"), "must not be longer than timeouts.request (%s)", *t.Request)
		}
	}
	rt := rule.Retry
	if rt == nil {
		return
	}
	rtp := rp.child("retry")
	if rt.Attempts != nil && (*rt.Attempts < 1 || *rt.Attempts > weftv1.MaxRetryAttempts) {
		e.add(rtp.child("attempts"), "must be between 1 and %d", weftv1.MaxRetryAttempts)
	}
	if b, ok := validateGatewayDuration(e, rtp.child("backoff"), rt.Backoff); ok && b > weftv1.MaxRetryBackoffMs*int64(time.Millisecond) {
		e.add(rtp.child("backoff"), "must be at most 1m")
	}
	for k, c := range rt.Codes {
		if c < minRetryStatusCode || c > maxRetryStatusCode {
			e.add(rtp.child("codes").index(k), "must be an HTTP status code between %d and %d", minRetryStatusCode, maxRetryStatusCode)
		}
	}
}

// validateTimeout checks an HTTPRoute timeout and returns it and whether it
// was valid.
func validateTimeout(e *errs, p fieldPath, d *gatewayv1.Duration) (int64, bool) {
	v, ok := validateGatewayDuration(e, p, d)
	if ok && v > int64(maxTimeout) {
		e.add(p, "must be at most %s", maxTimeout)
		return v, false
	}
	return v, ok
}

// validateDestinationRetry checks spec.retry and
// spec.connectionPool.maxConcurrentRetries of a DestinationPolicy.
func validateDestinationRetry(e *errs, p fieldPath, spec *DestinationPolicySpec) {
	if cp := spec.ConnectionPool; cp != nil && cp.MaxConcurrentRetries < 0 {
		e.add(p.child("connectionPool").child("maxConcurrentRetries"), "must not be negative")
	}
	r := spec.Retry
	if r == nil {
		return
	}
	rp := p.child("retry")
	if r.Attempts != nil && (*r.Attempts < 0 || *r.Attempts > weftv1.MaxRetryAttempts) {
		e.add(rp.child("attempts"), "must be between 0 and %d", weftv1.MaxRetryAttempts)
	}
	validMillis(e, rp.child("perTryTimeout"), r.PerTryTimeout, time.Millisecond, maxTimeout)
	validMillis(e, rp.child("backoff"), r.Backoff, time.Millisecond, weftv1.MaxRetryBackoffMs*time.Millisecond)
	for i, on := range r.RetryOn {
		if !slices.Contains(retryOnValues, on) {
			e.add(rp.child("retryOn").index(i), "must be one of %s, got %q", strings.Join(retryOnValues, ", "), on)
		}
	}
	if n := r.MaxBufferedBodyBytes; n != nil && (*n < 0 || *n > weftv1.MaxRetryBufferedBody) {
		e.add(rp.child("maxBufferedBodyBytes"), "must be between 0 and %d", weftv1.MaxRetryBufferedBody)
	}
	if b := r.Budget; b != nil {
		bp := rp.child("budget")
		if b.Percent != nil && (*b.Percent < 0 || *b.Percent > 100) {
			e.add(bp.child("percent"), "must be between 0 and 100")
		}
		if n := b.MinRetriesPerSecond; n != nil && (*n < 0 || *n > weftv1.MaxRetryBudgetPerSecond) {
			e.add(bp.child("minRetriesPerSecond"), "must be between 0 and %d", weftv1.MaxRetryBudgetPerSecond)
		}
		validMillis(e, bp.child("window"), b.Window, weftv1.MinRetryBudgetWindowMs*time.Millisecond, weftv1.MaxRetryBudgetWindowMs*time.Millisecond)
	}
}

// validMillis checks an optional duration carried in milliseconds: a Go
// duration in [lo, hi], in whole milliseconds.
func validMillis(e *errs, p fieldPath, s string, lo, hi time.Duration) {
	if s == "" {
		return
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		e.add(p, "invalid duration %q: use a number with a unit, e.g. \"10s\" or \"500ms\"", s)
	case d < lo || d > hi:
		e.add(p, "must be between %s and %s, got %s", lo, hi, s)
	case d%time.Millisecond != 0:
		e.add(p, "must be a whole number of milliseconds, got %s", s)
	}
}
