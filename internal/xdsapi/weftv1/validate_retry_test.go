package weftv1

import (
	"strings"
	"testing"
)

// TestValidateRetry checks every retry limit a proxy enforces, naming the
// field.
func TestValidateRetry(t *testing.T) {
	u := func(v uint32) *uint32 { return &v }
	be := []*Backend{{Service: "web", Namespace: "default", Weight: 1}}
	tests := []struct {
		name string
		s    *Service
		want string // error substring; "" means valid
	}{
		{"empty retry", &Service{Retry: &ServiceRetry{}}, ""},
		{"full retry", &Service{Retry: &ServiceRetry{Attempts: u(10), RetryOn: []string{"5xx", "unavailable"}, BackoffMs: 60000,
			MaxBufferedBodyBytes: u(MaxRetryBufferedBody), Budget: &RetryBudget{Percent: u(100), WindowMs: 60000}}}, ""},
		{"attempts", &Service{Retry: &ServiceRetry{Attempts: u(11)}}, "retry.attempts: 11 exceeds 10"},
		{"condition", &Service{Retry: &ServiceRetry{RetryOn: []string{"5xx", "UNAVAILABLE"}}}, `retry.retry_on[1]: unknown condition "UNAVAILABLE"`},
		{"backoff", &Service{Retry: &ServiceRetry{BackoffMs: 60001}}, "retry.backoff_ms: 60001 exceeds 60000"},
		{"body", &Service{Retry: &ServiceRetry{MaxBufferedBodyBytes: u(MaxRetryBufferedBody + 1)}}, "retry.max_buffered_body_bytes"},
		{"percent", &Service{Retry: &ServiceRetry{Budget: &RetryBudget{Percent: u(101)}}}, "retry.budget.percent: 101 exceeds 100"},
		{"floor", &Service{Retry: &ServiceRetry{Budget: &RetryBudget{MinRetriesPerSecond: u(MaxRetryBudgetPerSecond + 1)}}}, "retry.budget.min_retries_per_second"},
		{"window", &Service{Retry: &ServiceRetry{Budget: &RetryBudget{WindowMs: 999}}}, "retry.budget.window_ms: 999 is not between 1000 and 60000"},
		{"route retry", &Service{Routes: []*Route{{Backends: be, Retry: &RouteRetry{Attempts: 1, Codes: []uint32{503}}}}}, ""},
		{"route attempts", &Service{Routes: []*Route{{Backends: be, Retry: &RouteRetry{Attempts: 0}}}}, "routes[0]: retry.attempts: 0 is not between 1 and 10"},
		{"route code", &Service{Routes: []*Route{{Backends: be, Retry: &RouteRetry{Attempts: 1, Codes: []uint32{200}}}}}, "routes[0]: retry.codes[0]: 200 is not an HTTP error status"},
		{"route backoff", &Service{Routes: []*Route{{Backends: be, Retry: &RouteRetry{Attempts: 1, BackoffMs: 60001}}}}, "routes[0]: retry.backoff_ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.s.Name, tt.s.Namespace = "web", "default"
			err := ValidateService(tt.s)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
}
