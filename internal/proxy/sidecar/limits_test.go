package sidecar

import (
	"strings"
	"testing"
	"time"
)

func TestHTTPLimitsValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits HTTPLimits
		field  string // "" = valid
	}{
		{"defaults", HTTPLimits{}, ""},
		{"set", HTTPLimits{MaxHeaderBytes: 16 << 10, MaxHeaders: 50, HeaderTimeout: time.Second, MaxOutboundConns: 10, MaxInboundConns: 10}, ""},
		{"negative headers", HTTPLimits{MaxHeaders: -1}, "MaxHeaders"},
		{"negative timeout", HTTPLimits{HeaderTimeout: -time.Second}, "HeaderTimeout"},
		{"negative conns", HTTPLimits{MaxInboundConns: -5}, "MaxInboundConns"},
		{"tiny head", HTTPLimits{MaxHeaderBytes: 100}, "MaxHeaderBytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.limits.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.field)
			}
		})
	}
}
