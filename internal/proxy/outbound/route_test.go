package outbound

import (
	"strings"
	"testing"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestRouteFilters: the route stage's filters run in the request path — a
// redirect is answered by the proxy (the client follows it here), a rewrite
// and header modifiers of the rule and of the backend change what the app
// sees, and the response header modifier applies to the app's answers and
// to weft's own errors alike.
func TestRouteFilters(t *testing.T) {
	m := newMesh(t)
	prefix := func(p string) []*weftv1.RouteMatch {
		return []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Kind: weftv1.PathMatch_PREFIX, Value: p}}}
	}
	tag := &weftv1.HeaderModifier{Set: []*weftv1.HeaderValue{{Name: "x-rule", Value: "tagged"}}, Remove: []string{"x-app"}}
	rewritten := backend("orders", 1)
	rewritten.ResponseHeaders = &weftv1.HeaderModifier{Add: []*weftv1.HeaderValue{{Name: "x-rule", Value: "backend"}}}
	m.addService(svc("orders",
		&weftv1.Route{Name: "default/r/0", Matches: prefix("/old"), Backends: []*weftv1.Backend{{Weight: 1, FailStatus: 500, FailReason: "the rule has no backendRefs"}},
			Redirect: &weftv1.RequestRedirect{Path: &weftv1.PathModifier{Kind: weftv1.PathModifier_PREFIX, Value: "/new", MatchedPrefix: "/old"}}},
		&weftv1.Route{Name: "default/r/1", Matches: prefix("/api"), Backends: []*weftv1.Backend{rewritten},
			Rewrite:         &weftv1.URLRewrite{Hostname: "inner", Path: &weftv1.PathModifier{Kind: weftv1.PathModifier_PREFIX, Value: "/v1", MatchedPrefix: "/api"}},
			ResponseHeaders: tag},
		&weftv1.Route{Name: "default/r/2", Matches: prefix("/missing"), Backends: []*weftv1.Backend{backend("nosuch", 1)}, ResponseHeaders: tag},
		&weftv1.Route{Name: "default/r/3", Backends: []*weftv1.Backend{backend("orders", 1)}},
	))
	m.addWorkload(t, "orders", startApp(t, echoApp("orders")))
	m.commit(t)
	m.startOutbound(t, nil)

	for _, tc := range []struct {
		path, body, rule string
		code             int
	}{
		{"/old/x", "path=/new/x", "", 200},
		{"/api/items", "host=inner path=/v1/items", "tagged,backend", 200},
		{"/missing", "not a mesh service", "tagged", 500},
		{"/other", "path=/other", "", 200},
	} {
		code, body, h := m.get(t, "http://orders"+tc.path)
		if code != tc.code || !strings.Contains(body, tc.body) || strings.Join(h.Values("X-Rule"), ",") != tc.rule {
			t.Errorf("GET %s = %d %q x-rule %q, want %d containing %q, x-rule %q", tc.path, code, body, h.Get("X-Rule"), tc.code, tc.body, tc.rule)
		}
		if tc.rule != "" && h.Get("X-App") != "" {
			t.Errorf("GET %s: x-app %q not removed", tc.path, h.Get("X-App"))
		}
	}
}
