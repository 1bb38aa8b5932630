// Package telemetry holds the proxy's Prometheus metrics, named after the
// OpenTelemetry HTTP semantic conventions plus mesh labels. Metrics live in a
// caller-supplied registry (no globals). Recording on the request path
// resolves label children once and caches them, so a steady-state Observe
// costs one map read and no allocation.
package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// durationBuckets are the OpenTelemetry-recommended HTTP duration buckets
// (seconds).
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// Metrics records what the proxy's listeners observe. A nil *Metrics records
// nothing, so components can run without telemetry.
type Metrics struct {
	client         httpVecs // http.go
	server         httpVecs
	tcpConnections *prometheus.CounterVec
	tcpOpened      *prometheus.CounterVec
	tcpBytes       *prometheus.CounterVec
	httpRejected   *prometheus.CounterVec // http_reject.go
	h2Abuse        *prometheus.CounterVec
	jwtDecisions   *prometheus.CounterVec // jwt.go
	authzDecisions *prometheus.CounterVec
	breaker        breakerMetrics         // breaker.go
	retry          *retryMetrics          // retry.go
	outlier        outlierMetrics         // outlier.go
	route          routeMetrics           // route.go
	fault          faultMetrics           // fault.go
	transparent    transparentMetrics     // transparent.go
	cors           corsMetrics            // cors.go
	extAuth        extAuthMetrics         // extauth.go
	accessLogs     *prometheus.CounterVec // accesslog.go
	tap            *prometheus.CounterVec // tap.go
	egressRefused  *prometheus.CounterVec // egress.go

	clientCache cache[RequestLabels, *httpChildren]
	serverCache cache[RequestLabels, *httpChildren]
	tcpCache    cache[TCPLabels, *tcpChildren]
}

// New creates the proxy's metrics and registers them with reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		client: newHTTPVecs("client", "sent by the outbound listener to mesh services (one observation per request, retries included in its duration)"),
		server: newHTTPVecs("server", "received by the inbound listener: from mesh peers over mutual TLS (tls=\"true\") or, in mTLS mode PERMISSIVE, plaintext with no source identity (tls=\"false\")"),
		tcpConnections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_tcp_connections_total",
			Help: "Opaque TCP connections proxied that have closed, by listener (outbound or inbound) and destination service.",
		}, []string{"listener", "destination_service"}),
		tcpOpened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_tcp_connections_opened_total",
			Help: "Opaque TCP connections proxied that have opened, by listener (outbound or inbound) and destination service; opened minus weft_tcp_connections_total is the number open now.",
		}, []string{"listener", "destination_service"}),
		tcpBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_tcp_bytes_total",
			Help: "Bytes of opaque TCP connections proxied, counted when the connection closes; direction is upstream (sent by the connecting side) or downstream (received by it).",
		}, []string{"listener", "destination_service", "direction"}),
	}
	m.httpRejected = newHTTPRejected()
	m.h2Abuse = newH2Abuse()
	m.jwtDecisions = newJWTDecisions()
	m.authzDecisions = newAuthzDecisions()
	if err := m.registerBreaker(reg); err != nil {
		return nil, err
	}
	m.retry = newRetryMetrics()
	m.outlier = newOutlierMetrics()
	if err := m.fault.register(reg); err != nil {
		return nil, err
	}
	if err := m.transparent.register(reg); err != nil {
		return nil, err
	}
	m.accessLogs = newAccessLogs()
	m.tap = newTap()
	m.egressRefused = newEgressRefused()
	cs := []prometheus.Collector{m.tcpConnections, m.tcpOpened, m.tcpBytes, m.httpRejected, m.h2Abuse, m.jwtDecisions, m.authzDecisions, m.accessLogs, m.tap, m.egressRefused, m.retry, m.outlier.ejections, m.outlier.ejected}
	cs = append(cs, m.client.collectors()...)
	cs = append(cs, m.server.collectors()...)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	if err := m.route.register(reg); err != nil {
		return nil, err
	}
	if err := registerAll(reg, m.cors.register, m.extAuth.register); err != nil { // cors.go, extauth.go
		return nil, err
	}
	return m, nil
}

// TCPLabels identify the TCP series of one listener and destination.
type TCPLabels struct {
	Listener           string // "outbound" or "inbound"
	DestinationService string
}

// TCPOpened counts one opaque TCP connection as it opens.
func (m *Metrics) TCPOpened(l TCPLabels) {
	if m == nil {
		return
	}
	m.tcpChildren(l).opened.Inc()
}

type tcpChildren struct {
	opened     prometheus.Counter
	conns      prometheus.Counter
	upstream   prometheus.Counter
	downstream prometheus.Counter
}

// TCPConnection records one closed opaque TCP connection and the bytes it
// carried each way.
func (m *Metrics) TCPConnection(l TCPLabels, upstream, downstream int64) {
	if m == nil {
		return
	}
	tc := m.tcpChildren(l)
	tc.conns.Inc()
	tc.upstream.Add(float64(upstream))
	tc.downstream.Add(float64(downstream))
}

func (m *Metrics) tcpChildren(l TCPLabels) *tcpChildren {
	return m.tcpCache.get(l, func(l TCPLabels) *tcpChildren {
		return &tcpChildren{
			opened:     m.tcpOpened.WithLabelValues(l.Listener, l.DestinationService),
			conns:      m.tcpConnections.WithLabelValues(l.Listener, l.DestinationService),
			upstream:   m.tcpBytes.WithLabelValues(l.Listener, l.DestinationService, "upstream"),
			downstream: m.tcpBytes.WithLabelValues(l.Listener, l.DestinationService, "downstream"),
		}
	})
}

// method bounds the method label's cardinality as OpenTelemetry does: known
// methods as is, anything else as _OTHER.
func method(m string) string {
	switch m {
	case "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE":
		return m
	}
	return "_OTHER"
}
