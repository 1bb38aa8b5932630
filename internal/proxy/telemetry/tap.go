package telemetry

import "github.com/prometheus/client_golang/prometheus"

func newTap() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_proxy_tap_events_total",
		Help: "Request events offered to tap subscribers, by result: sent, or dropped because a subscriber's buffer was full (a slow tap never slows requests).",
	}, []string{"result"})
}

// TapEvent counts one tap event sent to or dropped for a subscriber.
func (m *Metrics) TapEvent(dropped bool) {
	if m == nil {
		return
	}
	r := "sent"
	if dropped {
		r = "dropped"
	}
	m.tap.WithLabelValues(r).Inc()
}

// TapEventsDropped is the counter of dropped tap events (for tests).
func (m *Metrics) TapEventsDropped() prometheus.Counter { return m.tap.WithLabelValues("dropped") }
