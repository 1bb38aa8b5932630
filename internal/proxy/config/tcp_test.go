package config

import (
	"testing"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestTCPRouteFor: a consumer route of the caller's namespace wins over a
// producer route, a route on a port applies to that port only, and with
// no matching route there is none.
func TestTCPRouteFor(t *testing.T) {
	be := []*weftv1.Backend{{Service: "x", Namespace: "default", Weight: 1}}
	svc, err := buildService(&weftv1.Service{Name: "db", Namespace: "default", TcpRoutes: []*weftv1.TcpRoute{
		{Name: "default/pg", Port: 5432, Backends: be},
		{Name: "shop/mine", ConsumerNamespace: "shop", Backends: be},
		{Name: "default/any", Backends: be},
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		port uint32
		ns   string
		want string
	}{
		{5432, "default", "default/pg"},
		{9000, "default", "default/any"},
		{0, "default", "default/any"},
		{5432, "shop", "shop/mine"}, // a consumer route replaces the producer routes for its namespace
		{9000, "shop", "shop/mine"},
	}
	for _, tt := range tests {
		got := ""
		if r := svc.TCPRouteFor(tt.port, tt.ns); r != nil {
			got = r.Name
		}
		if got != tt.want {
			t.Errorf("TCPRouteFor(%d, %q) = %q, want %q", tt.port, tt.ns, got, tt.want)
		}
	}
	none, err := buildService(&weftv1.Service{Name: "db", Namespace: "default", TcpRoutes: []*weftv1.TcpRoute{{Name: "default/pg", Port: 5432, Backends: be}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := none.TCPRouteFor(9000, "default"); r != nil {
		t.Errorf("TCPRouteFor(9000) = %q, want none", r.Name)
	}
}
