package weftv1

import (
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestValidateObservability(t *testing.T) {
	tests := []struct {
		name string
		s    *Service
		want string // "" accepts
	}{
		{"defaults", &Service{}, ""},
		{"errors and bodies", &Service{AccessLog: AccessLogMode_ACCESS_LOG_ERRORS, TapBodies: true, TraceSampling: proto.Float64(0.5)}, ""},
		{"sampling 0", &Service{TraceSampling: proto.Float64(0)}, ""},
		{"unknown mode", &Service{AccessLog: 7}, "access_log: unknown mode 7"},
		{"sampling above 1", &Service{TraceSampling: proto.Float64(1.5)}, "trace_sampling: 1.5 is not a ratio"},
		{"sampling NaN", &Service{TraceSampling: proto.Float64(math.NaN())}, "trace_sampling: NaN"},
		{"collector", &Service{TraceOtlpEndpoint: "http://127.0.0.1:4317"}, ""},
		{"collector over TLS", &Service{TraceOtlpEndpoint: "https://otel.example:4317"}, ""},
		{"collector without scheme", &Service{TraceOtlpEndpoint: "otel:4317"}, "trace_otlp_endpoint: \"otel:4317\": want an http:// or https:// URL"},
		{"collector without port", &Service{TraceOtlpEndpoint: "http://otel"}, "want host:port"},
		{"collector port 0", &Service{TraceOtlpEndpoint: "http://otel:0"}, "port \"0\" out of range"},
		{"collector with credentials", &Service{TraceOtlpEndpoint: "http://u:p@otel:4317"}, "want only scheme, host and port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.s.Name, tt.s.Namespace = "a", "default"
			err := ValidateService(tt.s)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("ValidateService: %v, want %q", err, tt.want)
			}
		})
	}
}
