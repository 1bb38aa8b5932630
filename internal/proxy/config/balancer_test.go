package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"weft.dev/weft/internal/proxy/outlier"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

func TestBuildBalancer(t *testing.T) {
	od := &weftv1.OutlierDetection{Consecutive_5Xx: 3, ConsecutiveGatewayErrors: 4, ConsecutiveConnectFailures: 5, BaseEjectionMs: 2000, MaxEjectionMs: 20000, MaxEjectionPercent: 30, IntervalMs: 10000}
	wantOD := outlier.Policy{Consecutive5xx: 3, ConsecutiveGatewayErrors: 4, ConsecutiveConnectFailures: 5, BaseEjection: 2 * time.Second, MaxEjection: 20 * time.Second, MaxEjectionPercent: 30, Interval: 10 * time.Second}
	for _, tc := range []struct {
		name string
		s    *weftv1.Service
		lb   LoadBalancer
		want *Balancer
	}{
		{"plain", &weftv1.Service{}, RoundRobin, nil},
		{"p2c with outlier", &weftv1.Service{LoadBalancer: weftv1.LoadBalancer_P2C_EWMA, OutlierDetection: od}, P2CEWMA, &Balancer{Outlier: wantOD}},
		{"ring by header", &weftv1.Service{LoadBalancer: weftv1.LoadBalancer_RING_HASH, ConsistentHash: &weftv1.ConsistentHash{Header: "x-user"}},
			RingHash, &Balancer{Hash: &HashKey{Header: "X-User"}, TableSize: DefaultVirtualNodes}},
		{"maglev by cookie", &weftv1.Service{LoadBalancer: weftv1.LoadBalancer_MAGLEV, ConsistentHash: &weftv1.ConsistentHash{Cookie: "sid"}},
			Maglev, &Balancer{Hash: &HashKey{Cookie: "sid"}, TableSize: DefaultMaglevTable}},
		{"maglev by identity, sized", &weftv1.Service{LoadBalancer: weftv1.LoadBalancer_MAGLEV, ConsistentHash: &weftv1.ConsistentHash{SourceIdentity: true, TableSize: 251}},
			Maglev, &Balancer{Hash: &HashKey{SourceIdentity: true}, TableSize: 251}},
		{"ring by query", &weftv1.Service{LoadBalancer: weftv1.LoadBalancer_RING_HASH, ConsistentHash: &weftv1.ConsistentHash{QueryParameter: "u", TableSize: 8}},
			RingHash, &Balancer{Hash: &HashKey{QueryParameter: "u"}, TableSize: 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.Name, tc.s.Namespace = "a", "x"
			svc, err := buildService(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			if svc.LoadBalancer != tc.lb {
				t.Errorf("algorithm %d, want %d", svc.LoadBalancer, tc.lb)
			}
			if diff := cmp.Diff(tc.want, svc.Balancer); diff != "" {
				t.Errorf("balancer (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildSession(t *testing.T) {
	s := &weftv1.Service{Name: "a", Namespace: "x", Routes: []*weftv1.Route{
		{Name: "r0", Backends: []*weftv1.Backend{{Service: "a", Namespace: "x", Weight: 1}},
			SessionPersistence: &weftv1.SessionPersistence{Name: "sid", AbsoluteTimeoutMs: 60000, Permanent: true}},
		{Name: "r1", Backends: []*weftv1.Backend{{Service: "a", Namespace: "x", Weight: 1}},
			SessionPersistence: &weftv1.SessionPersistence{Type: weftv1.SessionPersistence_HEADER, Name: "x-session"}},
		{Name: "r2", Backends: []*weftv1.Backend{{Service: "a", Namespace: "x", Weight: 1}}},
	}}
	svc, err := buildService(s)
	if err != nil {
		t.Fatal(err)
	}
	want := []*SessionPersistence{{Name: "sid", Absolute: time.Minute, Permanent: true}, {Header: true, Name: "x-session"}, nil}
	for i, r := range svc.Routes {
		if diff := cmp.Diff(want[i], r.Session); diff != "" {
			t.Errorf("route %d session (-want +got):\n%s", i, diff)
		}
	}
}
