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
