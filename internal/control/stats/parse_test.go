package stats

import (
	"strings"
	"testing"
)

func TestFailed(t *testing.T) {
	for _, tt := range []struct {
		http, grpc string
		want       bool
	}{
		{"200", "", false},
		{"404", "", false},
		{"499", "", false},
		{"500", "", true},
		{"503", "", true},
		{"0", "", true},
		{"", "", true},
		{"200", "0", false},
		{"200", "5", false},  // NOT_FOUND: the caller's problem
		{"200", "12", true},  // UNIMPLEMENTED answered with HTTP 200
		{"200", "14", true},  // UNAVAILABLE
		{"200", "4", true},   // DEADLINE_EXCEEDED
		{"200", "16", false}, // UNAUTHENTICATED
	} {
		if got := Failed(tt.http, tt.grpc); got != tt.want {
			t.Errorf("Failed(%q, %q) = %v, want %v", tt.http, tt.grpc, got, tt.want)
		}
	}
}

func TestParseLabels(t *testing.T) {
	text := `# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_bucket{destination_service="greeter.default",http_response_status_code="200",rpc_grpc_status_code="12",source_identity="spiffe://x/ns/default/sa/f",source_service="frontend.default",le="0.005"} 2
http_server_request_duration_seconds_bucket{destination_service="greeter.default",http_response_status_code="200",rpc_grpc_status_code="12",source_identity="spiffe://x/ns/default/sa/f",source_service="frontend.default",le="+Inf"} 2
http_server_request_duration_seconds_sum{destination_service="greeter.default",http_response_status_code="200",rpc_grpc_status_code="12",source_identity="spiffe://x/ns/default/sa/f",source_service="frontend.default"} 0.002
http_server_request_duration_seconds_count{destination_service="greeter.default",http_response_status_code="200",rpc_grpc_status_code="12",source_identity="spiffe://x/ns/default/sa/f",source_service="frontend.default"} 2
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1.7e+09
`
	sc, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	c := sc.Series[Key{Side: Inbound, Source: "frontend.default", Destination: "greeter.default"}]
	if c.Requests != 2 || c.Failures != 2 || c.Buckets[0] != 2 {
		t.Errorf("gRPC UNIMPLEMENTED over HTTP 200: %+v, want 2 failed requests in the first bucket", c)
	}
	if sc.Started.Unix() != 1_700_000_000 {
		t.Errorf("started = %v", sc.Started)
	}
}

// FuzzParse: any input parses or fails cleanly, and what parses has no
// negative count.
func FuzzParse(f *testing.F) {
	f.Add(histogramText(3, 1))
	f.Add("# TYPE weft_tcp_connections_total counter\nweft_tcp_connections_total{listener=\"inbound\",destination_service=\"a\"} 2\n")
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := Parse(strings.NewReader(s))
		if err != nil {
			return
		}
		for k, c := range sc.Series {
			for _, b := range c.Buckets {
				if b < 0 {
					t.Fatalf("%v: negative bucket %v", k, c.Buckets)
				}
			}
		}
	})
}
