package weftv1

import (
	"strings"
	"testing"
)

func TestValidateBalancer(t *testing.T) {
	od := func(f func(*OutlierDetection)) *OutlierDetection {
		o := &OutlierDetection{ConsecutiveGatewayErrors: 5, BaseEjectionMs: 30000, MaxEjectionMs: 300000, MaxEjectionPercent: 50, IntervalMs: 10000}
		if f != nil {
			f(o)
		}
		return o
	}
	route := func(sp *SessionPersistence) []*Route {
		return []*Route{{Name: "r", Backends: []*Backend{{Service: "a", Namespace: "x", Weight: 1}}, SessionPersistence: sp}}
	}
	for _, tc := range []struct {
		name string
		s    *Service
		want string // "" valid
	}{
		{"defaults", &Service{LoadBalancer: LoadBalancer_P2C_EWMA, OutlierDetection: od(nil)}, ""},
		{"ring", &Service{LoadBalancer: LoadBalancer_RING_HASH, ConsistentHash: &ConsistentHash{Header: "x-user", TableSize: 64}}, ""},
		{"maglev", &Service{LoadBalancer: LoadBalancer_MAGLEV, ConsistentHash: &ConsistentHash{SourceIdentity: true, TableSize: 251}}, ""},
		{"unknown lb", &Service{LoadBalancer: 9}, "load_balancer: unknown algorithm 9"},
		{"hash missing", &Service{LoadBalancer: LoadBalancer_MAGLEV}, "consistent_hash: required by load_balancer MAGLEV"},
		{"hash unused", &Service{ConsistentHash: &ConsistentHash{Header: "x"}}, "consistent_hash: set, but load_balancer ROUND_ROBIN does not hash"},
		{"two keys", &Service{LoadBalancer: LoadBalancer_RING_HASH, ConsistentHash: &ConsistentHash{Header: "x", Cookie: "c"}}, "exactly one of header, cookie, query_parameter and source_identity must be set, got 2"},
		{"ring size", &Service{LoadBalancer: LoadBalancer_RING_HASH, ConsistentHash: &ConsistentHash{Header: "x", TableSize: 5000}}, "consistent_hash.table_size: 5000 virtual nodes per endpoint not in 1..4096"},
		{"maglev not prime", &Service{LoadBalancer: LoadBalancer_MAGLEV, ConsistentHash: &ConsistentHash{Header: "x", TableSize: 1000}}, "consistent_hash.table_size: Maglev table size 1000 must be a prime"},
		{"percent", &Service{OutlierDetection: od(func(o *OutlierDetection) { o.MaxEjectionPercent = 101 })}, "outlier_detection.max_ejection_percent: 101 exceeds 100"},
		{"no base", &Service{OutlierDetection: od(func(o *OutlierDetection) { o.BaseEjectionMs = 0 })}, "outlier_detection.base_ejection_ms: 0 not in 1..3600000"},
		{"max below base", &Service{OutlierDetection: od(func(o *OutlierDetection) { o.MaxEjectionMs = 1000 })}, "outlier_detection.max_ejection_ms: 1000 not in base_ejection_ms..3600000"},
		{"no interval", &Service{OutlierDetection: od(func(o *OutlierDetection) { o.IntervalMs = 0 })}, "outlier_detection.interval_ms: 0 not in 1..3600000"},
		{"session", &Service{Routes: route(&SessionPersistence{Name: "sid", AbsoluteTimeoutMs: 1000, Permanent: true})}, ""},
		{"session type", &Service{Routes: route(&SessionPersistence{Type: 7, Name: "sid"})}, "routes[0].session_persistence.type: unknown type 7"},
		{"session name", &Service{Routes: route(&SessionPersistence{Name: "a=b"})}, `routes[0].session_persistence.name: "a=b" is not a valid cookie or header name`},
		{"session no name", &Service{Routes: route(&SessionPersistence{})}, `routes[0].session_persistence.name: "" is not a valid`},
		{"permanent without timeout", &Service{Routes: route(&SessionPersistence{Name: "s", Permanent: true})}, "routes[0].session_persistence.permanent: needs absolute_timeout_ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.Name, tc.s.Namespace = "svc", "x"
			err := ValidateService(tc.s)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
