package outbound

import (
	"io"
	"net/http"
	"testing"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// BenchmarkProxyRoundTripRouted is BenchmarkProxyRoundTrip through a
// route: route match, backend pick and the unforwardable check.
func BenchmarkProxyRoundTripRouted(b *testing.B) {
	m := newMesh(b)
	m.addService(svc("orders", &weftv1.Route{Name: "default/r/0",
		Matches:  []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Value: "/bench"}}},
		Backends: []*weftv1.Backend{backend("orders", 1)}}))
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
