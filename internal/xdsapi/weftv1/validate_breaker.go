package weftv1

import "fmt"

// Bounds of the breaker stage's fields, shared with the API's validation.
const (
	maxConnectionLimit = 1000000
	maxAdaptiveLimit   = 100000
)

// validateBreaker checks a Service's connection limits and adaptive
// concurrency (fields 80-89).
func validateBreaker(s *Service) error {
	if cl := s.GetConnectionLimits(); cl != nil {
		for _, f := range []struct {
			name string
			v    uint32
		}{
			{"max_connections", cl.GetMaxConnections()},
			{"max_pending_requests", cl.GetMaxPendingRequests()},
			{"max_concurrent_requests", cl.GetMaxConcurrentRequests()},
		} {
			if f.v > maxConnectionLimit {
				return fmt.Errorf("connection_limits.%s: %d is over %d", f.name, f.v, maxConnectionLimit)
			}
		}
		if cl.GetMaxPendingRequests() > 0 && cl.GetMaxConcurrentRequests() == 0 {
			return fmt.Errorf("connection_limits.max_pending_requests: set without max_concurrent_requests")
		}
	}
	ac := s.GetAdaptiveConcurrency()
	if ac == nil {
		return nil
	}
	switch u, m := ac.GetUpdateIntervalMs(), ac.GetMinRttIntervalMs(); {
	case u < 10 || u > 10000:
		return fmt.Errorf("adaptive_concurrency.update_interval_ms: %d out of range 10..10000", u)
	case m < 1000 || m > 3600000:
		return fmt.Errorf("adaptive_concurrency.min_rtt_interval_ms: %d out of range 1000..3600000", m)
	case m <= u:
		return fmt.Errorf("adaptive_concurrency.min_rtt_interval_ms: %d not longer than update_interval_ms %d", m, u)
	}
	lo, init, hi := ac.GetMinLimit(), ac.GetInitialLimit(), ac.GetMaxLimit()
	if lo < 1 || lo > init || init > hi || hi > maxAdaptiveLimit {
		return fmt.Errorf("adaptive_concurrency: limits must hold 1 <= min_limit (%d) <= initial_limit (%d) <= max_limit (%d) <= %d", lo, init, hi, maxAdaptiveLimit)
	}
	if b := ac.GetLatencyBufferPercent(); b < 1 || b > 1000 {
		return fmt.Errorf("adaptive_concurrency.latency_buffer_percent: %d out of range 1..1000", b)
	}
	return nil
}
