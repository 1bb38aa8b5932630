package api

import (
	"strings"
	"testing"
)

// TestValidateBreaker checks that every connectionPool and
// adaptiveConcurrency field is range-checked by name, and that good values
// are accepted (and not refused as unsupported).
func TestValidateBreaker(t *testing.T) {
	const dp = "apiVersion: weft.dev/v1alpha1\nkind: DestinationPolicy\nmetadata: {name: p}\nspec:\n  targetRef: {name: web}\n"
	tests := []struct {
		name, in, want string // want "" means valid
	}{
		{"pool ok", dp + "  connectionPool: {maxConnections: 4, maxPendingRequests: 5, maxConcurrentRequests: 10}\n", ""},
		{"pool concurrent only", dp + "  connectionPool: {maxConcurrentRequests: 10}\n", ""},
		{"pool connections only", dp + "  connectionPool: {maxConnections: 2}\n", ""},
		{"max conns negative", dp + "  connectionPool: {maxConnections: -1}\n", `spec.connectionPool.maxConnections: must be between 0 and 1000000, got -1`},
		{"max conns huge", dp + "  connectionPool: {maxConnections: 1000001}\n", `spec.connectionPool.maxConnections: must be between 0 and 1000000`},
		{"pending negative", dp + "  connectionPool: {maxConcurrentRequests: 1, maxPendingRequests: -1}\n", `spec.connectionPool.maxPendingRequests: must be between 0 and 1000000, got -1`},
		{"concurrent negative", dp + "  connectionPool: {maxConcurrentRequests: -5}\n", `spec.connectionPool.maxConcurrentRequests: must be between 0 and 1000000, got -5`},
		{"pending alone", dp + "  connectionPool: {maxConnections: 1, maxPendingRequests: 3}\n", `spec.connectionPool.maxPendingRequests: has no effect without maxConcurrentRequests`},
		{"pool unknown field", dp + "  connectionPool: {maxRequests: 3}\n", `spec.connectionPool.maxRequests: unknown field`},
		{"adaptive defaults", dp + "  adaptiveConcurrency: {}\n", ""},
		{"adaptive tuned", dp + "  adaptiveConcurrency: {updateInterval: 50ms, minRTTInterval: 10s, minLimit: 2, maxLimit: 50, initialLimit: 10, latencyBufferPercent: 50}\n", ""},
		{"adaptive update format", dp + "  adaptiveConcurrency: {updateInterval: fast}\n", `spec.adaptiveConcurrency.updateInterval: invalid duration "fast"`},
		{"adaptive update short", dp + "  adaptiveConcurrency: {updateInterval: 1ms}\n", `spec.adaptiveConcurrency.updateInterval: must be between 10ms and 10s, got 1ms`},
		{"adaptive minrtt long", dp + "  adaptiveConcurrency: {minRTTInterval: 2h}\n", `spec.adaptiveConcurrency.minRTTInterval: must be between 1s and 1h0m0s`},
		{"adaptive minrtt below update", dp + "  adaptiveConcurrency: {updateInterval: 5s, minRTTInterval: 2s}\n", `spec.adaptiveConcurrency.minRTTInterval: must be longer than updateInterval (5s), got 2s`},
		{"adaptive minrtt same ms", dp + "  adaptiveConcurrency: {updateInterval: 10s, minRTTInterval: 10000100us}\n", `spec.adaptiveConcurrency.minRTTInterval: must be longer than updateInterval`},
		{"adaptive min limit", dp + "  adaptiveConcurrency: {minLimit: -1}\n", `spec.adaptiveConcurrency.minLimit: must be between 1 and 100000, got -1`},
		{"adaptive max below min", dp + "  adaptiveConcurrency: {minLimit: 10, maxLimit: 5}\n", `spec.adaptiveConcurrency.maxLimit: must be between 10 and 100000, got 5`},
		{"adaptive initial above max", dp + "  adaptiveConcurrency: {maxLimit: 50, initialLimit: 60}\n", `spec.adaptiveConcurrency.initialLimit: must be between 1 and 50, got 60`},
		{"adaptive buffer", dp + "  adaptiveConcurrency: {latencyBufferPercent: 1001}\n", `spec.adaptiveConcurrency.latencyBufferPercent: must be between 1 and 1000, got 1001`},
		{"adaptive unknown", dp + "  adaptiveConcurrency: {limit: 3}\n", `spec.adaptiveConcurrency.limit: unknown field`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Decode([]byte(tt.in))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if err := CheckSupported(objs[0]); err != nil {
					t.Fatalf("CheckSupported: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Decode succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
		})
	}
}
