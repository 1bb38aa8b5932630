package demo

import (
	"strings"
	"testing"
	"time"
)

func TestTrafficLine(t *testing.T) {
	const metrics = `# HELP http_client_request_duration_seconds x
# TYPE http_client_request_duration_seconds histogram
http_client_request_duration_seconds_bucket{destination_service="backend.default",http_response_status_code="200",le="+Inf"} 8
http_client_request_duration_seconds_sum{destination_service="backend.default",http_response_status_code="200"} 0.1
http_client_request_duration_seconds_count{destination_service="backend.default",http_response_status_code="200"} 8
http_client_request_duration_seconds_bucket{destination_service="backend.default",http_response_status_code="503",le="+Inf"} 2
http_client_request_duration_seconds_sum{destination_service="backend.default",http_response_status_code="503"} 0.1
http_client_request_duration_seconds_count{destination_service="backend.default",http_response_status_code="503"} 2
http_client_request_duration_seconds_bucket{destination_service="greeter.default",http_response_status_code="200",le="+Inf"} 4
http_client_request_duration_seconds_sum{destination_service="greeter.default",http_response_status_code="200"} 0.1
http_client_request_duration_seconds_count{destination_service="greeter.default",http_response_status_code="200"} 4
`
	cur, err := parseOutbound(strings.NewReader(metrics))
	if err != nil {
		t.Fatal(err)
	}
	prev := counts{"greeter.default": {total: 4}}
	got := trafficLine(prev, cur, 5*time.Second)
	if want := "last 5s: backend 10 calls, 20% 5xx"; got != want {
		t.Errorf("trafficLine = %q, want %q (greeter made no new calls)", got, want)
	}
	if got := trafficLine(cur, cur, 5*time.Second); got != "" {
		t.Errorf("no change printed %q", got)
	}
}
