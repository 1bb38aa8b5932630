package inbound

import (
	"testing"

	"go.uber.org/goleak"

	"weft.dev/weft/internal/proxy/upstream/meshtest"
)

// The inbound listener's behaviour is tested end to end, together with the
// outbound listener, in package outbound.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewValidates(t *testing.T) {
	src := meshtest.NewCA(t, "cluster.local").Source(t, "default", "orders")
	for _, tc := range []struct {
		name string
		opts Options
		ok   bool
	}{
		{"valid", Options{Identity: src, ServiceName: "orders", Namespace: "default", AppPort: 8080}, true},
		{"no app port is valid", Options{Identity: src, ServiceName: "orders", Namespace: "default"}, true},
		{"no identity", Options{ServiceName: "orders", Namespace: "default"}, false},
		{"no service", Options{Identity: src, Namespace: "default"}, false},
		{"bad port", Options{Identity: src, ServiceName: "orders", Namespace: "default", AppPort: 70000}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			if (err == nil) != tc.ok {
				t.Fatalf("New: err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
