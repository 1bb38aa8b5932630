package telemetry

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// sizeBuckets are the body-size buckets (bytes): empty, then powers of 4
// from 64 B to 16 MiB.
var sizeBuckets = []float64{0, 64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20}

// requestLabelNames are the labels of every HTTP request series, client
// and server side alike.
var requestLabelNames = []string{
	"source_service", "source_namespace", "source_identity",
	"destination_service", "destination_namespace", "destination_version",
	"route", "http_request_method", "http_response_status_code", "rpc_grpc_status_code", "tls",
}

// httpVecs are the three histograms of one side (client or server).
type httpVecs struct {
	duration, requestSize, responseSize *prometheus.HistogramVec
}

func newHTTPVecs(side, what string) httpVecs {
	return httpVecs{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_" + side + "_request_duration_seconds",
			Help:    "Duration of HTTP requests " + what + ".",
			Buckets: durationBuckets,
		}, requestLabelNames),
		requestSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_" + side + "_request_body_size_bytes",
			Help:    "Body sizes of HTTP requests " + what + ".",
			Buckets: sizeBuckets,
		}, requestLabelNames),
		responseSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_" + side + "_response_body_size_bytes",
			Help:    "Body sizes of the responses to HTTP requests " + what + ".",
			Buckets: sizeBuckets,
		}, requestLabelNames),
	}
}

func (v httpVecs) collectors() []prometheus.Collector {
	return []prometheus.Collector{v.duration, v.requestSize, v.responseSize}
}

// RequestLabels identify the series of one HTTP request, on either side.
// Every value comes from a bounded set: service names, namespaces,
// versions, identities and route names from the mesh configuration, the
// method, status codes and gRPC codes from fixed sets (see the functions
// below); a path never becomes a label.
type RequestLabels struct {
	SourceService        string // "<name>.<namespace>"
	SourceNamespace      string
	SourceIdentity       string // SPIFFE ID; "" for plaintext callers
	DestinationService   string // "<name>.<namespace>"
	DestinationNamespace string
	DestinationVersion   string // the endpoint's "version" label
	Route                string // route name, "" when no route matched
	Method               string
	Status               int
	// GRPCStatus is the reply's grpc-status, "" for a non-gRPC response
	// (see GRPCStatus).
	GRPCStatus string
	TLS        bool
}

// httpChildren are the observers of one label set.
type httpChildren struct {
	duration, requestSize, responseSize prometheus.Observer
}

// ClientRequest records one outbound HTTP request: its duration and body
// sizes (bytes; -1 when unknown, which records no size).
func (m *Metrics) ClientRequest(l RequestLabels, d time.Duration, reqBytes, respBytes int64) {
	if m == nil {
		return
	}
	m.client.observe(&m.clientCache, l, d, reqBytes, respBytes)
}

// ServerRequest records one inbound HTTP request, like ClientRequest.
func (m *Metrics) ServerRequest(l RequestLabels, d time.Duration, reqBytes, respBytes int64) {
	if m == nil {
		return
	}
	m.server.observe(&m.serverCache, l, d, reqBytes, respBytes)
}

// observe records one request, resolving the label set's observers once:
// a steady-state call is one map read of the labels and three
// observations.
func (v httpVecs) observe(c *cache[RequestLabels, *httpChildren], l RequestLabels, d time.Duration, reqBytes, respBytes int64) {
	// Normalize first: the cache is keyed by label values, so it is as
	// bounded as they are.
	l.Method = method(l.Method)
	if !validStatus(l.Status) {
		l.Status = -1
	}
	if l.GRPCStatus != "" && !validGRPC(l.GRPCStatus) {
		l.GRPCStatus = "_OTHER"
	}
	hc := c.get(l, v.children)
	hc.duration.Observe(d.Seconds())
	if reqBytes >= 0 {
		hc.requestSize.Observe(float64(reqBytes))
	}
	if respBytes >= 0 {
		hc.responseSize.Observe(float64(respBytes))
	}
}

// children resolves the observers of l.
func (v httpVecs) children(l RequestLabels) *httpChildren {
	values := []string{
		l.SourceService, l.SourceNamespace, l.SourceIdentity,
		l.DestinationService, l.DestinationNamespace, l.DestinationVersion,
		l.Route, l.Method, statusLabel(l.Status), grpcLabel(l.GRPCStatus), strconv.FormatBool(l.TLS),
	}
	return &httpChildren{
		duration:     v.duration.WithLabelValues(values...),
		requestSize:  v.requestSize.WithLabelValues(values...),
		responseSize: v.responseSize.WithLabelValues(values...),
	}
}

// statusLabel bounds the status label: 0 (no response) and 100-599 as
// is, anything else (a peer may send any three digits; observe maps it to
// -1) as _OTHER.
func statusLabel(code int) string {
	if validStatus(code) {
		return strconv.Itoa(code)
	}
	return "_OTHER"
}

func validStatus(code int) bool { return code == 0 || code >= 100 && code <= 599 }

// grpcLabel bounds the gRPC status label: "" (not gRPC) and the codes
// 0-16 as is, anything else as _OTHER. GRPCStatus already returns only
// those; this guards values from elsewhere.
func grpcLabel(s string) string {
	if s == "" {
		return ""
	}
	if validGRPC(s) {
		return s
	}
	return "_OTHER"
}

// validGRPC reports whether s is a gRPC code 0-16 in decimal, without
// leading zeros (and without allocating: this runs per request).
func validGRPC(s string) bool {
	switch len(s) {
	case 1:
		return s[0] >= '0' && s[0] <= '9'
	case 2:
		return s[0] == '1' && s[1] >= '0' && s[1] <= '6'
	}
	return false
}

// GRPCStatus returns the grpc-status of a response from its header h
// after the handler ran: in the header of a trailers-only reply, or in the
// trailers (announced, or sent with http.TrailerPrefix, as
// upstream.Forwarder does). It returns "" when there is none, a code 0-16
// as its decimal string, and "_OTHER" for anything else.
func GRPCStatus(h http.Header) string {
	v, ok := h["Grpc-Status"]
	if !ok {
		v, ok = h[http.TrailerPrefix+"Grpc-Status"]
	}
	if !ok || len(v) == 0 {
		return ""
	}
	return grpcLabel(v[0])
}

// ServiceNamespace is the namespace of a "<name>.<namespace>" service
// key; "" for a key without a dot (e.g. "passthrough").
func ServiceNamespace(key string) string {
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == '.' {
			return key[i+1:]
		}
	}
	return ""
}
