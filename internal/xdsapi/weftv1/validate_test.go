package weftv1

import (
	"strings"
	"testing"
)

// TestValidateServiceMTLSMode checks that both modes are valid and an
// unknown one is refused naming the field.
func TestValidateServiceMTLSMode(t *testing.T) {
	tests := []struct {
		mode MTLSMode
		want string // error substring; "" means valid
	}{
		{MTLSMode_MTLS_STRICT, ""},
		{MTLSMode_MTLS_PERMISSIVE, ""},
		{MTLSMode(7), "mtls_mode: unknown mode 7"},
	}
	for _, tt := range tests {
		err := ValidateService(&Service{Name: "web", Namespace: "default", MtlsMode: tt.mode})
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("mode %d: err %v, want %q", tt.mode, err, tt.want)
		}
	}
}
