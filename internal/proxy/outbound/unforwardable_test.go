package outbound

import (
	"strings"
	"testing"
	"time"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestUnforwardableRules: a rule without backendRefs (compiled to a failing
// backend) and a rule whose backend is no mesh service answer 500 at once,
// for the requests they match only; the other rules keep working, and a
// split between a missing and a real backend fails only the missing
// backend's share.
func TestUnforwardableRules(t *testing.T) {
	m := newMesh(t)
	prefix := func(p string) []*weftv1.RouteMatch {
		return []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Kind: weftv1.PathMatch_PREFIX, Value: p}}}
	}
	m.addService(svc("orders",
		&weftv1.Route{Name: "default/r/0", Matches: prefix("/empty"),
			Backends: []*weftv1.Backend{{Weight: 1, FailStatus: 500, FailReason: "the rule has no backendRefs"}}},
		&weftv1.Route{Name: "default/r/1", Matches: prefix("/missing"), Backends: []*weftv1.Backend{backend("nosuch", 1)}},
		&weftv1.Route{Name: "default/r/2", Matches: prefix("/half"), Backends: []*weftv1.Backend{backend("nosuch", 1), backend("orders", 1)}},
		&weftv1.Route{Name: "default/r/3", Matches: prefix("/zero"), Backends: []*weftv1.Backend{backend("orders", 0)}},
		&weftv1.Route{Name: "default/r/4", Backends: []*weftv1.Backend{backend("orders", 1)}},
	))
	m.addWorkload(t, "orders", startApp(t, echoApp("orders")))
	m.commit(t)
	m.startOutbound(t, nil)

	for _, tc := range []struct {
		path, body string
		code       int
	}{
		{"/empty/x", "has no backendRefs", 500},
		{"/missing", "nosuch.default is not a mesh service", 500},
		{"/zero", "no backend with weight", 500},
		{"/other", "app=orders", 200},
		{"/", "app=orders", 200},
	} {
		start := time.Now()
		code, body, _ := m.get(t, "http://orders"+tc.path)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, code, body, tc.code, tc.body)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("GET %s took %s, want an answer at once", tc.path, d)
		}
	}
	counts := map[int]int{}
	for range 100 {
		code, _, _ := m.get(t, "http://orders/half")
		counts[code]++
	}
	if counts[200] < 20 || counts[500] < 20 || counts[200]+counts[500] != 100 {
		t.Errorf("split between a missing and a real backend: %v, want about half 200 and half 500", counts)
	}
}
