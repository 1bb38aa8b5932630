package xdsgen

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

const tcpDBService = `apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  selector: {app: db}
  ports:
  - {name: pg, port: 5432}
  - {name: admin, port: 9000}
`

// TestTCPRouteTranslation translates TCPRoutes attached to a Service:
// port, sectionName, weights (default 1, 0 kept), backend namespaces,
// consumer routes, the order of routes, and parents that attach nothing.
func TestTCPRouteTranslation(t *testing.T) {
	b := func(svc, ns string, w uint32) *weftv1.Backend {
		return &weftv1.Backend{Service: svc, Namespace: ns, Weight: w}
	}
	tests := []struct {
		name string
		doc  string
		want []*weftv1.TcpRoute
	}{
		{"weighted, any port", `apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: split, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: db}]
  rules:
  - backendRefs:
    - {name: db-v1, port: 5432, weight: 80}
    - {name: db-v2, namespace: other, port: 5432, weight: 20}
    - {name: db-v3, port: 5432, weight: 0}
    - {name: db-v4, port: 5432}
`, []*weftv1.TcpRoute{{Name: "default/split", Backends: []*weftv1.Backend{b("db-v1", "default", 80), b("db-v2", "other", 20), b("db-v3", "default", 0), b("db-v4", "default", 1)}}}},
		{"port and sectionName, ported routes first", `apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: a-any, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: db}]
  rules: [{backendRefs: [{name: any, port: 1}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: b-port, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: db, port: 5432}]
  rules: [{backendRefs: [{name: pg, port: 1}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: c-section, namespace: default}
spec:
  parentRefs:
  - {group: "", kind: Service, name: db, sectionName: admin}
  - {group: "", kind: Service, name: db, sectionName: nosuchport}
  rules: [{backendRefs: [{name: adm, port: 1}]}]
`, []*weftv1.TcpRoute{
			{Name: "default/b-port", Port: 5432, Backends: []*weftv1.Backend{b("pg", "default", 1)}},
			{Name: "default/c-section", Port: 9000, Backends: []*weftv1.Backend{b("adm", "default", 1)}},
			{Name: "default/a-any", Backends: []*weftv1.Backend{b("any", "default", 1)}},
		}},
		{"consumer route", `apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: mine, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: db, namespace: default}]
  rules: [{backendRefs: [{name: db-canary, namespace: default, port: 5432}]}]
`, []*weftv1.TcpRoute{{Name: "shop/mine", ConsumerNamespace: "shop", Backends: []*weftv1.Backend{b("db-canary", "default", 1)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := decodeSet(t, tcpDBService+"---\n"+tt.doc)
			got := NewRouting(cfg).Service(&mesh.Service{Name: "db", Namespace: "default"})
			if diff := cmp.Diff(tt.want, got.GetTcpRoutes(), protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if err := weftv1.ValidateService(got); err != nil {
				t.Errorf("the proxy would refuse it: %v", err)
			}
		})
	}
}

// TestTCPRouteUpdate: adding, changing and removing a TCPRoute reports its
// parent and compiles what NewRouting would.
func TestTCPRouteUpdate(t *testing.T) {
	route := func(w int) string {
		return `apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: split, namespace: default, resourceVersion: "` + string(rune('0'+w)) + `"}
spec:
  parentRefs: [{group: "", kind: Service, name: db}]
  rules: [{backendRefs: [{name: db-v1, port: 1, weight: ` + string(rune('0'+w)) + `}]}]
`
	}
	steps := []string{tcpDBService, tcpDBService + "---\n" + route(1), tcpDBService + "---\n" + route(2), tcpDBService}
	r := NewRouting(decodeSet(t, steps[0]))
	for i, doc := range steps[1:] {
		cfg := decodeSet(t, doc)
		next, keys, all := r.Update(cfg)
		if all || !cmp.Equal(keys, []string{"db.default"}) {
			t.Fatalf("step %d: keys %v, all %v; want [db.default]", i+1, keys, all)
		}
		svc := &mesh.Service{Name: "db", Namespace: "default"}
		if diff := cmp.Diff(NewRouting(cfg).Service(svc), next.Service(svc), protocmp.Transform()); diff != "" {
			t.Fatalf("step %d: Update differs from NewRouting (-new +update):\n%s", i+1, diff)
		}
		r = next
	}
}
