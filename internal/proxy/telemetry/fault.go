package telemetry

import "github.com/prometheus/client_golang/prometheus"

// faultMetrics are the counters of the fault-injection and mirroring
// stages.
type faultMetrics struct {
	faults  *prometheus.CounterVec
	mirrors *prometheus.CounterVec
}

func (f *faultMetrics) register(reg prometheus.Registerer) error {
	f.faults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_proxy_faults_injected_total",
		Help: "Faults injected by the outbound listener (FaultInjection), by destination service, route (namespace/name/rule) and kind (delay or abort).",
	}, []string{"destination_service", "route", "kind"})
	f.mirrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_proxy_mirror_requests_total",
		Help: "Mirror copies of requests (RequestMirror), by mirror destination service, route and outcome: sent (a response came back, whatever its status), dropped (not sent: the destination's in-flight bound was reached, or the body was not mirrorable) or failed (no endpoint, connection error or timeout).",
	}, []string{"destination_service", "route", "outcome"})
	for _, c := range []prometheus.Collector{f.faults, f.mirrors} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// FaultInjected counts one injected fault of kind "delay" or "abort".
// Services and routes come from the configuration (a bounded set).
func (m *Metrics) FaultInjected(destination, route, kind string) {
	if m == nil {
		return
	}
	m.fault.faults.WithLabelValues(destination, route, kind).Inc()
}

// MirrorRequest counts one mirror copy with outcome "sent", "dropped" or
// "failed".
func (m *Metrics) MirrorRequest(destination, route, outcome string) {
	if m == nil {
		return
	}
	m.fault.mirrors.WithLabelValues(destination, route, outcome).Inc()
}
