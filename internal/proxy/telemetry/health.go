package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HealthSource reads the proxy's state for its health gauges; each
// function is called at scrape time and must be safe for concurrent use.
type HealthSource struct {
	// ConfigVersion is the version of the configuration in use.
	ConfigVersion func() string
	// XDSConnected reports whether the xDS stream is up.
	XDSConnected func() bool
	// CertExpiry is when the workload certificate expires.
	CertExpiry func() time.Time
}

var (
	configInfoDesc = prometheus.NewDesc("weft_proxy_config_info",
		"Always 1; version is the version of the xDS configuration the proxy runs with.", []string{"version"}, nil)
	xdsConnectedDesc = prometheus.NewDesc("weft_proxy_xds_connected",
		"1 while the proxy's xDS stream to the control plane is connected, 0 otherwise.", nil, nil)
	certExpiryDesc = prometheus.NewDesc("weft_proxy_certificate_expiry_timestamp_seconds",
		"When the proxy's workload certificate expires, in seconds since the Unix epoch (time() subtracted from it is the time left).", nil, nil)
)

// healthCollector turns a HealthSource into gauges at scrape time.
type healthCollector struct{ src HealthSource }

// RegisterHealth registers the proxy health gauges (weft_proxy_config_info,
// weft_proxy_xds_connected, weft_proxy_certificate_expiry_timestamp_seconds)
// read from src; a nil function leaves its gauge out.
func RegisterHealth(reg prometheus.Registerer, src HealthSource) error {
	return reg.Register(healthCollector{src})
}

func (c healthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- configInfoDesc
	ch <- xdsConnectedDesc
	ch <- certExpiryDesc
}

func (c healthCollector) Collect(ch chan<- prometheus.Metric) {
	if f := c.src.ConfigVersion; f != nil {
		ch <- prometheus.MustNewConstMetric(configInfoDesc, prometheus.GaugeValue, 1, f())
	}
	if f := c.src.XDSConnected; f != nil {
		v := 0.0
		if f() {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(xdsConnectedDesc, prometheus.GaugeValue, v)
	}
	if f := c.src.CertExpiry; f != nil {
		if t := f(); !t.IsZero() {
			ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, float64(t.UnixNano())/1e9)
		}
	}
}
