package config

import (
	"net/http/httptest"
	"strings"
	"testing"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

func svc(name string, routes ...*weftv1.Route) *weftv1.Service {
	return &weftv1.Service{Name: name, Namespace: "default", Routes: routes}
}

func TestBuildRejectsBadResources(t *testing.T) {
	tests := []struct {
		name      string
		services  []*weftv1.Service
		endpoints []*weftv1.Endpoints
		wantErr   string
	}{
		{"empty name", []*weftv1.Service{{Namespace: "default"}}, nil, `Service ".default": name: must not be empty`},
		{"bad port", []*weftv1.Service{{Name: "a", Namespace: "default", Ports: []*weftv1.ServicePort{{Port: 70000}}}}, nil, `Service "a.default": ports[0].port: 70000 out of range`},
		{"bad protocol", []*weftv1.Service{{Name: "a", Namespace: "default", Ports: []*weftv1.ServicePort{{Port: 80, Protocol: "smtp"}}}}, nil, `ports[0].protocol: unknown protocol "smtp"`},
		{"path without slash", []*weftv1.Service{svc("a", &weftv1.Route{Matches: []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Value: "x"}}}, Backends: []*weftv1.Backend{{Service: "a", Namespace: "default", Weight: 1}}})}, nil, `routes[0]: matches[0].path.value: "x" must start with /`},
		{"route without backends", []*weftv1.Service{svc("a", &weftv1.Route{})}, nil, `routes[0]: backends: must not be empty`},
		{"bad endpoint address", nil, []*weftv1.Endpoints{{Service: "a", Namespace: "default", Endpoints: []*weftv1.Endpoint{{Address: "nope", Identity: "spiffe://cluster.local/ns/default/sa/a"}}}}, `Endpoints "a.default": endpoints[0].address`},
		{"bad identity", nil, []*weftv1.Endpoints{{Service: "a", Namespace: "default", Endpoints: []*weftv1.Endpoint{{Address: "127.0.0.1:1", Identity: "http://x"}}}}, `endpoints[0].identity`},
		{"duplicate service", []*weftv1.Service{svc("a"), svc("a")}, nil, `Service "a.default": duplicate`},
		{"consumer route of the service's own namespace", []*weftv1.Service{svc("a", &weftv1.Route{ConsumerNamespace: "default", Backends: []*weftv1.Backend{{Service: "a", Namespace: "default", Weight: 1}}})}, nil, `routes[0].consumer_namespace: "default" is the service's own namespace`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build("1", tt.services, tt.endpoints)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Build error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	c, err := Build("1", []*weftv1.Service{
		svc("orders"),
		{Name: "pay", Namespace: "shop", Ports: []*weftv1.ServicePort{{Port: 8080}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		authority string
		want      string
	}{
		{"orders", "orders.default"},
		{"orders:80", "orders.default"},
		{"ORDERS.default", "orders.default"},
		{"orders.default.svc.cluster.local:9000", "orders.default"},
		{"pay.shop:8080", "pay.shop"},
		{"pay.shop:9090", ""},
		{"pay", ""},
		{"example.com", ""},
		{"127.0.0.1:8080", ""},
		{"a.b.c.d", ""},
	}
	for _, tt := range tests {
		t.Run(tt.authority, func(t *testing.T) {
			got := ""
			if s := c.Resolve(tt.authority, "default"); s != nil {
				got = s.Key
			}
			if got != tt.want {
				t.Errorf("Resolve(%q) = %q, want %q", tt.authority, got, tt.want)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	be := []*weftv1.Backend{{Service: "x", Namespace: "default", Weight: 1}}
	c, err := Build("1", []*weftv1.Service{svc("a",
		&weftv1.Route{Name: "exact", Matches: []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Kind: weftv1.PathMatch_EXACT, Value: "/exact"}}}, Backends: be},
		&weftv1.Route{Name: "hdr", Matches: []*weftv1.RouteMatch{{Headers: []*weftv1.HeaderMatch{{Name: "x-canary", Value: "1"}}}}, Backends: be},
		&weftv1.Route{Name: "api", Matches: []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Value: "/api/"}, Method: "POST"}}, Backends: be},
	)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Services["a.default"]
	tests := []struct {
		method, path string
		header       string
		want         string
	}{
		{"GET", "/exact", "", "exact"},
		{"GET", "/exact/more", "", ""},
		{"GET", "/", "1", "hdr"},
		{"POST", "/api", "", "api"},
		{"POST", "/api/v1", "", "api"},
		{"POST", "/apiv1", "", ""},
		{"GET", "/api/v1", "", ""},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, "http://a"+tt.path, nil)
		if tt.header != "" {
			r.Header.Set("X-Canary", tt.header)
		}
		got := ""
		if rt := s.Match(r, "default"); rt != nil {
			got = rt.Name
		}
		if got != tt.want {
			t.Errorf("%s %s (canary=%q) matched %q, want %q", tt.method, tt.path, tt.header, got, tt.want)
		}
	}
}

// TestRoutesForCaller: a caller uses its namespace's consumer routes when
// there are any, the producer routes otherwise, whatever their order in the
// resource.
func TestRoutesForCaller(t *testing.T) {
	be := func(name string) []*weftv1.Backend {
		return []*weftv1.Backend{{Service: name, Namespace: "default", Weight: 1}}
	}
	c, err := Build("1", []*weftv1.Service{
		svc("a",
			&weftv1.Route{Name: "shop/x/0", ConsumerNamespace: "shop", Matches: []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Value: "/admin"}}}, Backends: be("admin")},
			&weftv1.Route{Name: "default/p/0", Backends: be("producer")},
			&weftv1.Route{Name: "evil/y/0", ConsumerNamespace: "evil", Backends: be("sink")},
		),
		svc("b", &weftv1.Route{Name: "evil/z/0", ConsumerNamespace: "evil", Backends: be("sink")}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		service, caller, path string
		want                  string // route name; "" for none
		routes                int    // len(RoutesFor(caller))
	}{
		{"a.default", "default", "/", "default/p/0", 1},
		{"a.default", "other", "/admin", "default/p/0", 1},
		{"a.default", "evil", "/", "evil/y/0", 1},
		{"a.default", "shop", "/admin/x", "shop/x/0", 1},
		{"a.default", "shop", "/", "", 1},
		{"b.default", "default", "/", "", 0},
		{"b.default", "evil", "/", "evil/z/0", 1},
	}
	for _, tt := range tests {
		s := c.Services[tt.service]
		r := httptest.NewRequest("GET", "http://x"+tt.path, nil)
		got := ""
		if rt := s.Match(r, tt.caller); rt != nil {
			got = rt.Name
		}
		if n := len(s.RoutesFor(tt.caller)); got != tt.want || n != tt.routes {
			t.Errorf("%s from %s, %s: route %q of %d, want %q of %d", tt.service, tt.caller, tt.path, got, n, tt.want, tt.routes)
		}
	}
}

func TestPickBackendWeights(t *testing.T) {
	c, err := Build("1", []*weftv1.Service{svc("a", &weftv1.Route{Backends: []*weftv1.Backend{
		{Service: "v1", Namespace: "default", Weight: 90},
		{Service: "v2", Namespace: "default", Weight: 10},
		{Service: "v3", Namespace: "default", Weight: 0},
	}})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rt := &c.Services["a.default"].Routes[0]
	counts := map[string]int{}
	for n := uint32(0); n < 100; n++ {
		counts[rt.PickBackend(n)]++
	}
	if counts["v1.default"] != 90 || counts["v2.default"] != 10 || counts["v3.default"] != 0 {
		t.Errorf("split = %v, want v1 90, v2 10, v3 0", counts)
	}
}

func BenchmarkRouteMatch(b *testing.B) {
	be := []*weftv1.Backend{{Service: "x", Namespace: "default", Weight: 1}}
	var routes []*weftv1.Route
	for _, p := range []string{"/a", "/b", "/c", "/d", "/api"} {
		routes = append(routes, &weftv1.Route{Matches: []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Value: p}}}, Backends: be})
	}
	c, err := Build("1", []*weftv1.Service{svc("a", routes...)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "http://a/api/v1/items", nil)
	b.ReportAllocs()
	for b.Loop() {
		s := c.Resolve("a", "default")
		if s.Match(r, "default") == nil {
			b.Fatal("no match")
		}
	}
}

func TestMeshName(t *testing.T) {
	c, err := Build("1", []*weftv1.Service{svc("orders"), {Name: "pay", Namespace: "shop"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		authority string
		want      string
		ok        bool
	}{
		{"nosuch.default", "nosuch.default", true},
		{"nosuch.shop:8080", "nosuch.shop", true},
		{"nosuch.other.svc.cluster.local", "nosuch.other", true},
		{"nosuch.other.svc", "nosuch.other", true},
		{"nosuch.other", "", false},
		{"example.com", "", false},
		{"nosuch", "", false},
		{"a.b.c", "", false},
	}
	for _, tt := range tests {
		got, ok := c.MeshName(tt.authority)
		if got != tt.want || ok != tt.ok {
			t.Errorf("MeshName(%q) = %q, %v; want %q, %v", tt.authority, got, ok, tt.want, tt.ok)
		}
	}
}
