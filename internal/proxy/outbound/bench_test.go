package outbound

import (
	"io"
	"net/http"
	"testing"

	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

func BenchmarkProxyRoundTrip(b *testing.B) { benchRoundTrip(b) }

// BenchmarkProxyRoundTripRouted is BenchmarkProxyRoundTrip through a
// route: route match, backend pick and the unforwardable check.
func BenchmarkProxyRoundTripRouted(b *testing.B) {
	benchRoundTrip(b, &weftv1.Route{Name: "default/r/0",
		Matches:  []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Value: "/bench"}}},
		Backends: []*weftv1.Backend{backend("orders", 1)}})
}

// benchRoundTrip measures GET http://orders/bench through the outbound, a
// peer inbound and an app, with the service's routes.
func benchRoundTrip(b *testing.B, routes ...*weftv1.Route) {
	m := newMesh(b)
	m.addService(svc("orders", routes...))
	m.addWorkload(b, "orders", startApp(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok"))
	})))
	m.commit(b)
	m.startOutbound(b, nil)
	req, _ := http.NewRequest("GET", "http://orders/bench", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := m.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
}

func BenchmarkRouteMatch(b *testing.B) {
	cfg, err := config.Build("bench", []*weftv1.Service{svc("orders",
		&weftv1.Route{Name: "canary", Matches: []*weftv1.RouteMatch{{Headers: []*weftv1.HeaderMatch{{Name: "x-canary", Value: "1"}}}},
			Backends: []*weftv1.Backend{backend("orders-v2", 1)}},
		&weftv1.Route{Name: "api", Matches: []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Value: "/api"}, Method: "GET"}},
			Backends: []*weftv1.Backend{backend("orders", 90), backend("orders-v2", 10)}},
	)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://orders/api/v1/items", nil)
	b.ReportAllocs()
	for b.Loop() {
		s := cfg.Resolve(req.Host, "default")
		r := s.Match(req, "default")
		if r.PickBackend(7) == "" {
			b.Fatal("no backend")
		}
	}
}
