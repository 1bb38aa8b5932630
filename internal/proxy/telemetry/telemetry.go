// Package telemetry holds the proxy's Prometheus metrics, named after the
// OpenTelemetry HTTP semantic conventions plus mesh labels. Metrics live in a
// caller-supplied registry (no globals). Recording on the request path
// resolves label children once and caches them, so a steady-state Observe
// costs one map read and no allocation.
package telemetry

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// durationBuckets are the OpenTelemetry-recommended HTTP duration buckets
// (seconds).
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// Metrics records what the proxy's listeners observe. A nil *Metrics records
// nothing, so components can run without telemetry.
type Metrics struct {
	clientDuration *prometheus.HistogramVec
	serverDuration *prometheus.HistogramVec
	tcpConnections *prometheus.CounterVec
	tcpBytes       *prometheus.CounterVec
	httpRejected   *prometheus.CounterVec // http_reject.go
	h2Abuse        *prometheus.CounterVec
	jwtDecisions   *prometheus.CounterVec // jwt.go
	authzDecisions *prometheus.CounterVec
	breaker        breakerMetrics // breaker.go
	retry          *retryMetrics  // retry.go
	outlier        outlierMetrics // outlier.go
	route          routeMetrics   // route.go
	fault          faultMetrics   // fault.go

	clientCache sync.Map // ClientLabels -> prometheus.Observer
	serverCache sync.Map // ServerLabels -> prometheus.Observer
	tcpCache    sync.Map // TCPLabels -> *tcpChildren
}

// New creates the proxy's metrics and registers them with reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		clientDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_client_request_duration_seconds",
			Help:    "Duration of HTTP requests sent by the outbound listener to mesh services.",
			Buckets: durationBuckets,
		}, []string{"source_service", "destination_service", "route", "http_request_method", "http_response_status_code", "tls"}),
		serverDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_server_request_duration_seconds",
			Help:    "Duration of HTTP requests received by the inbound listener: from mesh peers over mutual TLS (tls=\"true\") or, in mTLS mode PERMISSIVE, plaintext with no source identity (tls=\"false\").",
			Buckets: durationBuckets,
		}, []string{"source_identity", "destination_service", "http_request_method", "http_response_status_code", "tls"}),
		tcpConnections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_tcp_connections_total",
			Help: "Opaque TCP connections proxied, by listener (outbound or inbound) and destination service.",
		}, []string{"listener", "destination_service"}),
		tcpBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_tcp_bytes_total",
			Help: "Bytes of opaque TCP connections proxied; direction is upstream (from the connecting side) or downstream (back to it).",
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
	for _, c := range []prometheus.Collector{m.clientDuration, m.serverDuration, m.tcpConnections, m.tcpBytes, m.httpRejected, m.h2Abuse, m.jwtDecisions, m.authzDecisions, m.retry, m.outlier.ejections, m.outlier.ejected} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	if err := m.route.register(reg); err != nil {
		return nil, err
	}
	return m, nil
}

// ClientLabels identify one series of http_client_request_duration_seconds.
type ClientLabels struct {
	SourceService      string
	DestinationService string
	Route              string
	Method             string
	Status             int
	TLS                bool
}

// ServerLabels identify one series of http_server_request_duration_seconds.
type ServerLabels struct {
	SourceIdentity     string
	DestinationService string
	Method             string
	Status             int
	// TLS is false for a plaintext request (mTLS mode PERMISSIVE), whose
	// SourceIdentity is "".
	TLS bool
}

// TCPLabels identify the TCP series of one listener and destination.
type TCPLabels struct {
	Listener           string // "outbound" or "inbound"
	DestinationService string
}

// ClientRequest records one outbound HTTP request.
func (m *Metrics) ClientRequest(l ClientLabels, d time.Duration) {
	if m == nil {
		return
	}
	l.Method = method(l.Method)
	o, ok := m.clientCache.Load(l)
	if !ok {
		o, _ = m.clientCache.LoadOrStore(l, m.clientDuration.WithLabelValues(
			l.SourceService, l.DestinationService, l.Route, l.Method, strconv.Itoa(l.Status), strconv.FormatBool(l.TLS)))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

// ServerRequest records one inbound HTTP request.
func (m *Metrics) ServerRequest(l ServerLabels, d time.Duration) {
	if m == nil {
		return
	}
	l.Method = method(l.Method)
	o, ok := m.serverCache.Load(l)
	if !ok {
		o, _ = m.serverCache.LoadOrStore(l, m.serverDuration.WithLabelValues(
			l.SourceIdentity, l.DestinationService, l.Method, strconv.Itoa(l.Status), strconv.FormatBool(l.TLS)))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

type tcpChildren struct {
	conns      prometheus.Counter
	upstream   prometheus.Counter
	downstream prometheus.Counter
}

// TCPConnection records one finished opaque TCP connection and the bytes it
// carried each way.
func (m *Metrics) TCPConnection(l TCPLabels, upstream, downstream int64) {
	if m == nil {
		return
	}
	c, ok := m.tcpCache.Load(l)
	if !ok {
		c, _ = m.tcpCache.LoadOrStore(l, &tcpChildren{
			conns:      m.tcpConnections.WithLabelValues(l.Listener, l.DestinationService),
			upstream:   m.tcpBytes.WithLabelValues(l.Listener, l.DestinationService, "upstream"),
			downstream: m.tcpBytes.WithLabelValues(l.Listener, l.DestinationService, "downstream"),
		})
	}
	tc := c.(*tcpChildren)
	tc.conns.Inc()
	tc.upstream.Add(float64(upstream))
	tc.downstream.Add(float64(downstream))
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
