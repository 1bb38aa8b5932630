package api

import "time"

// validateBreaker checks spec.connectionPool (except what the retry stage
// owns) and spec.adaptiveConcurrency of a DestinationPolicy.
func validateBreaker(e *errs, p fieldPath, spec *DestinationPolicySpec) {
	if cp := spec.ConnectionPool; cp != nil {
		cpp := p.child("connectionPool")
		for _, f := range []struct {
			name string
			v    int32
		}{
			{"maxConnections", cp.MaxConnections},
			{"maxPendingRequests", cp.MaxPendingRequests},
			{"maxConcurrentRequests", cp.MaxConcurrentRequests},
		} {
			if f.v < 0 || f.v > MaxConnectionPoolLimit {
				e.add(cpp.child(f.name), "must be between 0 and %d, got %d", MaxConnectionPoolLimit, f.v)
			}
		}
		if cp.MaxPendingRequests > 0 && cp.MaxConcurrentRequests == 0 {
			e.add(cpp.child("maxPendingRequests"), "has no effect without maxConcurrentRequests: requests wait only for an admission slot")
		}
	}
	if ac := spec.AdaptiveConcurrency; ac != nil {
		validateAdaptive(e, p.child("adaptiveConcurrency"), ac)
	}
}

func validateAdaptive(e *errs, p fieldPath, ac *AdaptiveConcurrency) {
	update := boundedDuration(e, p.child("updateInterval"), ac.UpdateInterval, DefaultAdaptiveUpdateInterval, 10*time.Millisecond, 10*time.Second)
	minRTT := boundedDuration(e, p.child("minRTTInterval"), ac.MinRTTInterval, DefaultAdaptiveMinRTTInterval, time.Second, time.Hour)
	// Compared in whole milliseconds, as the proxy receives them.
	if update > 0 && minRTT > 0 && minRTT.Truncate(time.Millisecond) <= update.Truncate(time.Millisecond) {
		e.add(p.child("minRTTInterval"), "must be longer than updateInterval (%v), got %v", update, minRTT)
	}
	inRange := func(name string, v, lo, hi int32) {
		if v != 0 && (v < lo || v > hi) {
			e.add(p.child(name), "must be between %d and %d, got %d", lo, hi, v)
		}
	}
	lo := max(ac.MinLimit, 1)
	inRange("minLimit", ac.MinLimit, 1, MaxAdaptiveLimit)
	inRange("maxLimit", ac.MaxLimit, lo, MaxAdaptiveLimit)
	hi := ac.MaxLimit
	if hi == 0 {
		hi = max(DefaultAdaptiveMaxLimit, lo)
	}
	inRange("initialLimit", ac.InitialLimit, lo, hi)
	inRange("latencyBufferPercent", ac.LatencyBufferPercent, 1, 1000)
}

// boundedDuration checks an optional Go duration field against [lo, hi] and
// returns it (def when empty), or 0 when it is invalid.
func boundedDuration(e *errs, p fieldPath, s, def string, lo, hi time.Duration) time.Duration {
	if s == "" {
		s = def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		e.add(p, "invalid duration %q: use a number with a unit, e.g. \"100ms\" or \"30s\"", s)
		return 0
	}
	if d < lo || d > hi {
		e.add(p, "must be between %v and %v, got %v", lo, hi, d)
		return 0
	}
	return d
}
