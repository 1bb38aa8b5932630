package telemetry

import "github.com/prometheus/client_golang/prometheus"

func newAccessLogs() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_proxy_access_log_lines_total",
		Help: "Access log lines, by result: written, or dropped because the log writer's buffer was full (writes never block a request).",
	}, []string{"result"})
}

// AccessLogLine counts one access log line written or dropped.
func (m *Metrics) AccessLogLine(dropped bool) {
	if m == nil {
		return
	}
	r := "written"
	if dropped {
		r = "dropped"
	}
	m.accessLogs.WithLabelValues(r).Inc()
}
