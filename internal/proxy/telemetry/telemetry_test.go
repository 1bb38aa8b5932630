package telemetry

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

func newMetrics(t testing.TB) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// series returns the samples of the histogram name, by the values of the
// given labels joined with "|".
func series(t testing.TB, reg *prometheus.Registry, name string, labels ...string) map[string]*dto.Histogram {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.Histogram{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, metric := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range metric.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			var key []string
			for _, l := range labels {
				key = append(key, got[l])
			}
			out[strings.Join(key, "|")] = metric.GetHistogram()
		}
	}
	return out
}

func TestRecord(t *testing.T) {
	m, reg := newMetrics(t)
	ok := RequestLabels{SourceService: "web.default", SourceNamespace: "default", SourceIdentity: "spiffe://cluster.local/ns/default/sa/web",
		DestinationService: "orders.default", DestinationNamespace: "default", DestinationVersion: "v2", Route: "r1", Method: "GET", Status: 200, TLS: true}
	m.ClientRequest(ok, 10*time.Millisecond, 0, 100)
	m.ClientRequest(ok, 20*time.Millisecond, 0, 5000)
	m.ClientRequest(RequestLabels{SourceService: "web.default", DestinationService: "orders.default", Method: "BREW", Status: 503}, time.Millisecond, -1, 10)
	m.ServerRequest(RequestLabels{SourceIdentity: "spiffe://cluster.local/ns/default/sa/web", DestinationService: "orders.default", Method: "POST", Status: 201}, time.Millisecond, 300, 0)
	m.TCPOpened(TCPLabels{Listener: "outbound", DestinationService: "db.default"})
	m.TCPOpened(TCPLabels{Listener: "outbound", DestinationService: "db.default"})
	m.TCPConnection(TCPLabels{Listener: "outbound", DestinationService: "db.default"}, 10, 20)
	m.TCPConnection(TCPLabels{Listener: "outbound", DestinationService: "db.default"}, 1, 2)

	want := `
# HELP weft_tcp_bytes_total Bytes of opaque TCP connections proxied, counted when the connection closes; direction is upstream (sent by the connecting side) or downstream (received by it).
# TYPE weft_tcp_bytes_total counter
weft_tcp_bytes_total{destination_service="db.default",direction="downstream",listener="outbound"} 22
weft_tcp_bytes_total{destination_service="db.default",direction="upstream",listener="outbound"} 11
# HELP weft_tcp_connections_opened_total Opaque TCP connections proxied that have opened, by listener (outbound or inbound) and destination service; opened minus weft_tcp_connections_total is the number open now.
# TYPE weft_tcp_connections_opened_total counter
weft_tcp_connections_opened_total{destination_service="db.default",listener="outbound"} 2
# HELP weft_tcp_connections_total Opaque TCP connections proxied that have closed, by listener (outbound or inbound) and destination service.
# TYPE weft_tcp_connections_total counter
weft_tcp_connections_total{destination_service="db.default",listener="outbound"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "weft_tcp_bytes_total", "weft_tcp_connections_total", "weft_tcp_connections_opened_total"); err != nil {
		t.Error(err)
	}
	dur := series(t, reg, "http_client_request_duration_seconds", "http_response_status_code", "http_request_method", "destination_version", "source_namespace", "destination_namespace")
	if h := dur["200|GET|v2|default|default"]; h.GetSampleCount() != 2 {
		t.Errorf("200 series: %v, want 2 samples (all: %v)", h, dur)
	}
	if h := dur["503|_OTHER|||"]; h.GetSampleCount() != 1 {
		t.Errorf("503 series with method _OTHER: %v (all: %v)", h, dur)
	}
	resp := series(t, reg, "http_client_response_body_size_bytes", "http_response_status_code")
	if h := resp["200"]; h.GetSampleCount() != 2 || h.GetSampleSum() != 5100 {
		t.Errorf("response sizes of 200: %v, want 2 samples summing to 5100", h)
	}
	req := series(t, reg, "http_client_request_body_size_bytes", "http_response_status_code")
	if h := req["503"]; h != nil && h.GetSampleCount() != 0 {
		t.Errorf("request size -1 (unknown) was recorded: %v", h)
	}
	srv := series(t, reg, "http_server_request_body_size_bytes", "http_response_status_code")
	if h := srv["201"]; h.GetSampleCount() != 1 || h.GetSampleSum() != 300 {
		t.Errorf("server request size: %v, want one of 300", h)
	}
}

// TestGRPCStatusLabel is the regression test for a gRPC error counted as a
// plain 200: the grpc-status of a trailers-only reply (header) or of the
// trailers becomes rpc_grpc_status_code.
func TestGRPCStatusLabel(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.Header
		want string
	}{
		{"trailers-only UNIMPLEMENTED", http.Header{"Grpc-Status": {"12"}}, "12"},
		{"trailer OK", http.Header{http.TrailerPrefix + "Grpc-Status": {"0"}}, "0"},
		{"trailer UNAVAILABLE", http.Header{http.TrailerPrefix + "Grpc-Status": {"14"}}, "14"},
		{"not gRPC", http.Header{"Content-Type": {"text/plain"}}, ""},
		{"out of range", http.Header{"Grpc-Status": {"99"}}, "_OTHER"},
		{"garbage", http.Header{"Grpc-Status": {"x12"}}, "_OTHER"},
		{"leading zero", http.Header{"Grpc-Status": {"012"}}, "_OTHER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := GRPCStatus(tc.h); got != tc.want {
				t.Errorf("GRPCStatus = %q, want %q", got, tc.want)
			}
		})
	}
	m, reg := newMetrics(t)
	l := RequestLabels{DestinationService: "greeter.default", Method: "POST", Status: 200, GRPCStatus: GRPCStatus(http.Header{"Grpc-Status": {"12"}}), TLS: true}
	m.ClientRequest(l, time.Millisecond, 5, 0)
	m.ServerRequest(l, time.Millisecond, 5, 0)
	for _, name := range []string{"http_client_request_duration_seconds", "http_server_request_duration_seconds"} {
		got := series(t, reg, name, "http_response_status_code", "rpc_grpc_status_code")
		if h := got["200|12"]; h.GetSampleCount() != 1 {
			t.Errorf("%s: want one sample with status 200 and rpc_grpc_status_code 12, got %v", name, got)
		}
	}
}

// TestCardinalityBounded feeds 10,000 distinct methods and status codes
// (paths are never labels) and checks the series stay within the fixed
// sets: the known methods plus _OTHER, the valid codes plus _OTHER.
func TestCardinalityBounded(t *testing.T) {
	m, reg := newMetrics(t)
	for i := range 10000 {
		m.ClientRequest(RequestLabels{DestinationService: "orders.default", Method: fmt.Sprintf("M%d", i), Status: 1000 + i, GRPCStatus: fmt.Sprint(i)}, time.Millisecond, 0, 0)
		m.ServerRequest(RequestLabels{DestinationService: "orders.default", Method: fmt.Sprintf("X-%d", i), Status: 200}, time.Millisecond, 0, 0)
	}
	for _, method := range []string{"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE"} {
		m.ClientRequest(RequestLabels{DestinationService: "orders.default", Method: method, Status: 200}, time.Millisecond, 0, 0)
	}
	client := series(t, reg, "http_client_request_duration_seconds", "http_request_method", "http_response_status_code", "rpc_grpc_status_code")
	// _OTHER method: 17 valid gRPC codes + _OTHER, all with status _OTHER;
	// plus the 9 known methods with 200 and no gRPC code.
	if len(client) != 18+9 {
		t.Errorf("client series = %d, want 27: %v", len(client), keys(client))
	}
	if server := series(t, reg, "http_server_request_duration_seconds", "http_request_method"); len(server) != 1 {
		t.Errorf("server series = %d, want 1", len(server))
	}
	if n := testutil.CollectAndCount(m.client.duration); n != 27 {
		t.Errorf("collected %d client series, want 27", n)
	}
}

func keys(m map[string]*dto.Histogram) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestHealth(t *testing.T) {
	reg := prometheus.NewRegistry()
	expiry := time.Unix(1700000000, 0)
	connected := false
	if err := RegisterHealth(reg, HealthSource{
		ConfigVersion: func() string { return "v42" },
		XDSConnected:  func() bool { return connected },
		CertExpiry:    func() time.Time { return expiry },
	}); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP weft_proxy_certificate_expiry_timestamp_seconds When the proxy's workload certificate expires, in seconds since the Unix epoch (time() subtracted from it is the time left).
# TYPE weft_proxy_certificate_expiry_timestamp_seconds gauge
weft_proxy_certificate_expiry_timestamp_seconds 1.7e+09
# HELP weft_proxy_config_info Always 1; version is the version of the xDS configuration the proxy runs with.
# TYPE weft_proxy_config_info gauge
weft_proxy_config_info{version="v42"} 1
# HELP weft_proxy_xds_connected 1 while the proxy's xDS stream to the control plane is connected, 0 otherwise.
# TYPE weft_proxy_xds_connected gauge
weft_proxy_xds_connected 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	connected = true
	if err := testutil.GatherAndCompare(reg, strings.NewReader(strings.Replace(want, "weft_proxy_xds_connected 0", "weft_proxy_xds_connected 1", 1))); err != nil {
		t.Error(err)
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.ClientRequest(RequestLabels{}, 0, 0, 0)
	m.ServerRequest(RequestLabels{}, 0, 0, 0)
	m.TCPOpened(TCPLabels{})
	m.TCPConnection(TCPLabels{}, 0, 0)
	m.AccessLogLine(true)
	m.TapEvent(false)
}

func TestDuplicateRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg); err == nil {
		t.Fatal("second New on one registry: want error")
	}
}

var benchLabels = RequestLabels{SourceService: "web.default", SourceNamespace: "default", SourceIdentity: "spiffe://cluster.local/ns/default/sa/web",
	DestinationService: "orders.default", DestinationNamespace: "default", DestinationVersion: "v1", Route: "default/orders/0", Method: "GET", Status: 200, TLS: true}

// BenchmarkMetricsRecord is the per-request recording cost: one duration
// and two size observations through the cached observers.
func BenchmarkMetricsRecord(b *testing.B) {
	m, _ := newMetrics(b)
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.ClientRequest(benchLabels, time.Millisecond, 0, 512)
		}
	})
	b.Run("cached-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.ClientRequest(benchLabels, time.Millisecond, 0, 512)
			}
		})
	})
	b.Run("WithLabelValues", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l := benchLabels
			m.client.duration.WithLabelValues(l.SourceService, l.SourceNamespace, l.SourceIdentity, l.DestinationService, l.DestinationNamespace,
				l.DestinationVersion, l.Route, l.Method, "200", "", "true").Observe(0.001)
		}
	})
}

// TestCacheBounded checks hostile label values do not grow the observer
// cache: it is keyed by the normalized values.
func TestCacheBounded(t *testing.T) {
	m, _ := newMetrics(t)
	for i := range 5000 {
		m.ClientRequest(RequestLabels{Method: "M" + fmt.Sprint(i), Status: 600 + i, GRPCStatus: "x" + fmt.Sprint(i)}, 0, 0, 0)
	}
	if n := len(*m.clientCache.m.Load()); n != 1 {
		t.Errorf("cache holds %d entries, want 1", n)
	}
}
