package weftv1

import (
	"fmt"
	"slices"
)

// Limits of retry configuration, shared by the API, the control plane and
// the proxy.
const (
	// MaxRetryAttempts bounds the retries after the first attempt.
	MaxRetryAttempts = 10
	// MaxRetryBackoffMs bounds a backoff (one minute).
	MaxRetryBackoffMs = 60 * 1000
	// MaxRetryBufferedBody bounds the request body kept for replay.
	MaxRetryBufferedBody = 16 << 20
	// MinRetryBudgetWindowMs and MaxRetryBudgetWindowMs bound the budget
	// window.
	MinRetryBudgetWindowMs = 1000
	MaxRetryBudgetWindowMs = 60 * 1000
	// MaxRetryBudgetPerSecond bounds the budget floor.
	MaxRetryBudgetPerSecond = 100000
)

// RetryConditions are the HTTP conditions of ServiceRetry.retry_on.
var RetryConditions = []string{"5xx", "gateway-error", "reset", "connect-failure", "retriable-4xx"}

// GRPCRetryCodes are the gRPC status names ServiceRetry.retry_on accepts,
// with their codes.
var GRPCRetryCodes = map[string]int{
	"cancelled":          1,
	"unknown":            2,
	"deadline-exceeded":  4,
	"resource-exhausted": 8,
	"aborted":            10,
	"internal":           13,
	"unavailable":        14,
}

// validateServiceRetry checks the retry fields of a Service (60-69).
func validateServiceRetry(s *Service) error {
	r := s.GetRetry()
	if r == nil {
		return nil
	}
	if r.Attempts != nil && r.GetAttempts() > MaxRetryAttempts {
		return fmt.Errorf("retry.attempts: %d exceeds %d", r.GetAttempts(), MaxRetryAttempts)
	}
	if r.GetBackoffMs() > MaxRetryBackoffMs {
		return fmt.Errorf("retry.backoff_ms: %d exceeds %d", r.GetBackoffMs(), MaxRetryBackoffMs)
	}
	for i, on := range r.GetRetryOn() {
		if _, grpc := GRPCRetryCodes[on]; !grpc && !slices.Contains(RetryConditions, on) {
			return fmt.Errorf("retry.retry_on[%d]: unknown condition %q", i, on)
		}
	}
	if r.GetMaxBufferedBodyBytes() > MaxRetryBufferedBody {
		return fmt.Errorf("retry.max_buffered_body_bytes: %d exceeds %d", r.GetMaxBufferedBodyBytes(), MaxRetryBufferedBody)
	}
	if b := r.GetBudget(); b != nil {
		if b.GetPercent() > 100 {
			return fmt.Errorf("retry.budget.percent: %d exceeds 100", b.GetPercent())
		}
		if b.GetMinRetriesPerSecond() > MaxRetryBudgetPerSecond {
			return fmt.Errorf("retry.budget.min_retries_per_second: %d exceeds %d", b.GetMinRetriesPerSecond(), MaxRetryBudgetPerSecond)
		}
		if w := b.GetWindowMs(); w != 0 && (w < MinRetryBudgetWindowMs || w > MaxRetryBudgetWindowMs) {
			return fmt.Errorf("retry.budget.window_ms: %d is not between %d and %d", w, MinRetryBudgetWindowMs, MaxRetryBudgetWindowMs)
		}
	}
	return nil
}

// validateRouteRetry checks the retry fields of a Route (50-59).
func validateRouteRetry(r *Route) error {
	rt := r.GetRetry()
	if rt == nil {
		return nil
	}
	if a := rt.GetAttempts(); a < 1 || a > MaxRetryAttempts {
		return fmt.Errorf("retry.attempts: %d is not between 1 and %d", a, MaxRetryAttempts)
	}
	for i, c := range rt.GetCodes() {
		if c < 400 || c > 599 {
			return fmt.Errorf("retry.codes[%d]: %d is not an HTTP error status (400-599)", i, c)
		}
	}
	if rt.GetBackoffMs() > MaxRetryBackoffMs {
		return fmt.Errorf("retry.backoff_ms: %d exceeds %d", rt.GetBackoffMs(), MaxRetryBackoffMs)
	}
	return nil
}
