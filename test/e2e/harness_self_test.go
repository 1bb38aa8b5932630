package e2e

import "testing"

// TestParseMetrics checks the harness's Prometheus text parser, on which the
// metrics assertions rely.
func TestParseMetrics(t *testing.T) {
	const text = `# HELP x help
# TYPE http_client_request_duration_seconds histogram
http_client_request_duration_seconds_bucket{destination_service="backend",le="0.1"} 3
http_client_request_duration_seconds_count{destination_service="backend",http_response_status_code="200",route="a\"b,c}"} 3
http_client_request_duration_seconds_count{destination_service="backend",http_response_status_code="503"} 2
http_client_request_duration_seconds_count{destination_service="other",http_response_status_code="200"} 7
up 1
`
	ms, err := parseMetrics(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 5 {
		t.Fatalf("parsed %d samples, want 5", len(ms))
	}
	if got := ms[1].labels["route"]; got != `a"b,c}` {
		t.Errorf("route label = %q", got)
	}
	for _, tc := range []struct {
		want map[string]string
		sum  float64
	}{
		{map[string]string{"destination_service": "backend"}, 5},
		{map[string]string{"destination_service": "backend", "http_response_status_code": "200"}, 3},
		{nil, 12},
		{map[string]string{"destination_service": "backend|other", "http_response_status_code": "200"}, 10},
	} {
		if got := sum(ms, "http_client_request_duration_seconds_count", tc.want); got != tc.sum {
			t.Errorf("sum(%v) = %v, want %v", tc.want, got, tc.sum)
		}
	}
}
