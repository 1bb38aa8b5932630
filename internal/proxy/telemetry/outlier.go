package telemetry

import "github.com/prometheus/client_golang/prometheus"

// outlierMetrics count outlier ejections by destination service.
type outlierMetrics struct {
	ejections *prometheus.CounterVec
	ejected   *prometheus.GaugeVec
}

func newOutlierMetrics() outlierMetrics {
	return outlierMetrics{
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_proxy_outlier_ejections_total",
			Help: "Endpoints ejected from load balancing by outlier detection, by destination service.",
		}, []string{"destination_service"}),
		ejected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "weft_proxy_outlier_ejected_endpoints",
			Help: "Endpoints of the destination service currently ejected by outlier detection (updated as requests flow).",
		}, []string{"destination_service"}),
	}
}

// OutlierEjected counts one ejection of an endpoint of service.
func (m *Metrics) OutlierEjected(service string) {
	if m == nil {
		return
	}
	m.outlier.ejections.WithLabelValues(service).Inc()
}

// OutlierEjectedNow sets how many endpoints of service are ejected.
func (m *Metrics) OutlierEjectedNow(service string, n int) {
	if m == nil {
		return
	}
	m.outlier.ejected.WithLabelValues(service).Set(float64(n))
}
