package telemetry

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRecord(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.ClientRequest(ClientLabels{SourceService: "web.default", DestinationService: "orders.default", Route: "r1", Method: "GET", Status: 200, TLS: true}, 10*time.Millisecond)
	m.ClientRequest(ClientLabels{SourceService: "web.default", DestinationService: "orders.default", Route: "r1", Method: "GET", Status: 200, TLS: true}, 20*time.Millisecond)
	m.ClientRequest(ClientLabels{SourceService: "web.default", DestinationService: "orders.default", Method: "BREW", Status: 503}, time.Millisecond)
	m.ServerRequest(ServerLabels{SourceIdentity: "spiffe://cluster.local/ns/default/sa/web", DestinationService: "orders.default", Method: "POST", Status: 201}, time.Millisecond)
	m.TCPConnection(TCPLabels{Listener: "outbound", DestinationService: "db.default"}, 10, 20)
	m.TCPConnection(TCPLabels{Listener: "outbound", DestinationService: "db.default"}, 1, 2)

	want := `
# HELP weft_tcp_bytes_total Bytes of opaque TCP connections proxied; direction is upstream (from the connecting side) or downstream (back to it).
# TYPE weft_tcp_bytes_total counter
weft_tcp_bytes_total{destination_service="db.default",direction="downstream",listener="outbound"} 22
weft_tcp_bytes_total{destination_service="db.default",direction="upstream",listener="outbound"} 11
# HELP weft_tcp_connections_total Opaque TCP connections proxied, by listener (outbound or inbound) and destination service.
# TYPE weft_tcp_connections_total counter
weft_tcp_connections_total{destination_service="db.default",listener="outbound"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "weft_tcp_bytes_total", "weft_tcp_connections_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.clientDuration); n != 2 {
		t.Errorf("client series = %d, want 2", n)
	}
	if n := testutil.CollectAndCount(m.serverDuration); n != 1 {
		t.Errorf("server series = %d, want 1", n)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "http_client_request_duration_seconds" {
			continue
		}
		for _, metric := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range metric.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["http_response_status_code"] == "200" && metric.GetHistogram().GetSampleCount() != 2 {
				t.Errorf("200 series count = %d, want 2", metric.GetHistogram().GetSampleCount())
			}
			if labels["http_response_status_code"] == "503" && labels["http_request_method"] != "_OTHER" {
				t.Errorf("unknown method label = %q, want _OTHER", labels["http_request_method"])
			}
		}
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.ClientRequest(ClientLabels{}, 0)
	m.ServerRequest(ServerLabels{}, 0)
	m.TCPConnection(TCPLabels{}, 0, 0)
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

var benchLabels = ClientLabels{SourceService: "web.default", DestinationService: "orders.default", Route: "canary", Method: "GET", Status: 200, TLS: true}

func BenchmarkMetricsRecord(b *testing.B) {
	m, _ := New(prometheus.NewRegistry())
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.ClientRequest(benchLabels, time.Millisecond)
		}
	})
	b.Run("cached-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.ClientRequest(benchLabels, time.Millisecond)
			}
		})
	})
	b.Run("WithLabelValues", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l := benchLabels
			m.clientDuration.WithLabelValues(l.SourceService, l.DestinationService, l.Route, l.Method, "200", "true").Observe(0.001)
		}
	})
}

// TestServerTLSLabel checks that plaintext and mTLS requests to the inbound
// are separate series, told apart by tls.
func TestServerTLSLabel(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.ServerRequest(ServerLabels{SourceIdentity: "spiffe://cluster.local/ns/default/sa/web", DestinationService: "orders.default", Method: "GET", Status: 200, TLS: true}, time.Millisecond)
	m.ServerRequest(ServerLabels{DestinationService: "orders.default", Method: "GET", Status: 200}, time.Millisecond)
	m.ServerRequest(ServerLabels{DestinationService: "orders.default", Method: "GET", Status: 200}, time.Millisecond)
	want := map[string]uint64{
		`spiffe://cluster.local/ns/default/sa/web|true`: 1,
		`|false`: 2,
	}
	mfs, _ := reg.Gather()
	got := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "http_server_request_duration_seconds" {
			continue
		}
		for _, metric := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range metric.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			got[labels["source_identity"]+"|"+labels["tls"]] = metric.GetHistogram().GetSampleCount()
		}
	}
	if len(got) != len(want) {
		t.Fatalf("series %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("series %q: %d samples, want %d (all: %v)", k, got[k], n, got)
		}
	}
}
