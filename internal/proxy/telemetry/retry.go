package telemetry

import "github.com/prometheus/client_golang/prometheus"

// retryMetrics count the retry stage's decisions.
type retryMetrics struct {
	retries   *prometheus.CounterVec
	exhausted *prometheus.CounterVec
	timeouts  *prometheus.CounterVec
}

var _ prometheus.Collector = (*retryMetrics)(nil)

func newRetryMetrics() *retryMetrics {
	return &retryMetrics{
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_proxy_retries_total",
			Help: "Retries the outbound listener sent, by destination service, route and reason (connect-failure, reset, status, grpc-status, backend-request-timeout).",
		}, []string{"destination_service", "route", "reason"}),
		exhausted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_proxy_retry_budget_exhausted_total",
			Help: "Retries not sent because the destination's retry budget (or maxConcurrentRetries) was used up; the failed attempt was returned as is.",
		}, []string{"destination_service"}),
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_proxy_timeouts_total",
			Help: "Requests answered 504 by the outbound listener because a timeout passed, by destination service, route and timeout (request or backend-request).",
		}, []string{"destination_service", "route", "timeout"}),
	}
}

// Describe implements prometheus.Collector.
func (r *retryMetrics) Describe(ch chan<- *prometheus.Desc) {
	r.retries.Describe(ch)
	r.exhausted.Describe(ch)
	r.timeouts.Describe(ch)
}

// Collect implements prometheus.Collector.
func (r *retryMetrics) Collect(ch chan<- prometheus.Metric) {
	r.retries.Collect(ch)
	r.exhausted.Collect(ch)
	r.timeouts.Collect(ch)
}

// Retry counts one retry to destination (a service key) on route (a route
// name, "" for none) for reason (a retry.Reason name: a fixed set).
func (m *Metrics) Retry(destination, route, reason string) {
	if m == nil {
		return
	}
	m.retry.retries.WithLabelValues(destination, route, reason).Inc()
}

// RetryBudgetExhausted counts one retry the budget of destination refused.
func (m *Metrics) RetryBudgetExhausted(destination string) {
	if m == nil {
		return
	}
	m.retry.exhausted.WithLabelValues(destination).Inc()
}

// Timeout counts one request to destination on route answered 504 because
// timeout ("request" or "backend-request") passed.
func (m *Metrics) Timeout(destination, route, timeout string) {
	if m == nil {
		return
	}
	m.retry.timeouts.WithLabelValues(destination, route, timeout).Inc()
}
