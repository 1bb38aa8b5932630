package route

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

func mustCompile(t testing.TB, r *weftv1.Route) Route {
	t.Helper()
	if err := weftv1.ValidateService(&weftv1.Service{Name: "s", Namespace: "n", Routes: []*weftv1.Route{r}}); err != nil {
		t.Fatalf("ValidateService: %v", err)
	}
	rt, err := Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func backends() []*weftv1.Backend {
	return []*weftv1.Backend{{Service: "b", Namespace: "n", Weight: 1}}
}

func TestMatch(t *testing.T) {
	type req struct {
		method, target string
		headers        http.Header
		want           bool
	}
	tests := []struct {
		name  string
		match *weftv1.RouteMatch
		reqs  []req
	}{
		{"exact path", &weftv1.RouteMatch{Path: &weftv1.PathMatch{Kind: weftv1.PathMatch_EXACT, Value: "/abc"}}, []req{
			{"GET", "/abc", nil, true}, {"GET", "/abc/", nil, false}, {"GET", "/Abc", nil, false}, {"GET", "/abcd", nil, false}, {"GET", "/abc?x=1", nil, true},
		}},
		{"prefix path, element-wise", &weftv1.RouteMatch{Path: &weftv1.PathMatch{Value: "/abc/"}}, []req{
			{"GET", "/abc", nil, true}, {"GET", "/abc/", nil, true}, {"GET", "/abc/def", nil, true}, {"GET", "/abcd", nil, false}, {"GET", "/", nil, false},
		}},
		{"prefix /", &weftv1.RouteMatch{Path: &weftv1.PathMatch{Value: "/"}}, []req{{"GET", "/", nil, true}, {"GET", "/x/y", nil, true}}},
		{"regex path matches the whole path", &weftv1.RouteMatch{Path: &weftv1.PathMatch{Kind: weftv1.PathMatch_REGEX, Value: `/v[0-9]+/items`}}, []req{
			{"GET", "/v1/items", nil, true}, {"GET", "/v12/items", nil, true}, {"GET", "/v1/items/3", nil, false}, {"GET", "/x/v1/items", nil, false}, {"GET", "/vx/items", nil, false},
		}},
		{"regex alternation stays anchored", &weftv1.RouteMatch{Path: &weftv1.PathMatch{Kind: weftv1.PathMatch_REGEX, Value: `/a|/b`}}, []req{
			{"GET", "/a", nil, true}, {"GET", "/b", nil, true}, {"GET", "/ab", nil, false}, {"GET", "/a/b", nil, false},
		}},
		{"method", &weftv1.RouteMatch{Method: "POST"}, []req{{"POST", "/", nil, true}, {"GET", "/", nil, false}}},
		{"exact header, name case-insensitive", &weftv1.RouteMatch{Headers: []*weftv1.HeaderMatch{{Name: "x-canary", Value: "1"}}}, []req{
			{"GET", "/", http.Header{"X-Canary": {"1"}}, true}, {"GET", "/", http.Header{"X-Canary": {"2"}}, false}, {"GET", "/", nil, false},
			{"GET", "/", http.Header{"X-Canary": {"1", "2"}}, false},
		}},
		{"repeated header is matched joined", &weftv1.RouteMatch{Headers: []*weftv1.HeaderMatch{{Name: "X-Tags", Value: "a, b"}}}, []req{
			{"GET", "/", http.Header{"X-Tags": {"a", "b"}}, true}, {"GET", "/", http.Header{"X-Tags": {"a"}}, false},
		}},
		{"regex header", &weftv1.RouteMatch{Headers: []*weftv1.HeaderMatch{{Name: "user-agent", Value: `.*Firefox.*`, Regex: true}}}, []req{
			{"GET", "/", http.Header{"User-Agent": {"Mozilla Firefox/1"}}, true}, {"GET", "/", http.Header{"User-Agent": {"curl"}}, false},
		}},
		{"exact query, first value", &weftv1.RouteMatch{QueryParams: []*weftv1.QueryParamMatch{{Name: "v", Value: "2"}}}, []req{
			{"GET", "/?v=2", nil, true}, {"GET", "/?a=1&v=2", nil, true}, {"GET", "/?v=1&v=2", nil, false}, {"GET", "/?V=2", nil, false}, {"GET", "/?vv=2", nil, false}, {"GET", "/", nil, false},
		}},
		{"escaped query", &weftv1.RouteMatch{QueryParams: []*weftv1.QueryParamMatch{{Name: "q x", Value: "a b"}}}, []req{
			{"GET", "/?q%20x=a+b", nil, true}, {"GET", "/?q+x=a%20b", nil, true}, {"GET", "/?q=a", nil, false},
		}},
		{"regex query", &weftv1.RouteMatch{QueryParams: []*weftv1.QueryParamMatch{{Name: "id", Value: `[0-9]+`, Regex: true}}}, []req{
			{"GET", "/?id=42", nil, true}, {"GET", "/?id=4a", nil, false}, {"GET", "/?id=", nil, false},
		}},
		{"all ANDed", &weftv1.RouteMatch{Path: &weftv1.PathMatch{Value: "/api"}, Method: "GET", Headers: []*weftv1.HeaderMatch{{Name: "x", Value: "1"}}, QueryParams: []*weftv1.QueryParamMatch{{Name: "q", Value: "1"}}}, []req{
			{"GET", "/api/x?q=1", http.Header{"X": {"1"}}, true}, {"GET", "/api/x", http.Header{"X": {"1"}}, false}, {"POST", "/api/x?q=1", http.Header{"X": {"1"}}, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := mustCompile(t, &weftv1.Route{Name: "r", Matches: []*weftv1.RouteMatch{tt.match}, Backends: backends()})
			for _, rq := range tt.reqs {
				r := httptest.NewRequest(rq.method, rq.target, nil)
				for k, v := range rq.headers {
					r.Header[k] = v
				}
				if got := rt.Accepts(r); got != rq.want {
					t.Errorf("%s %s %v: Accepts = %v, want %v", rq.method, rq.target, rq.headers, got, rq.want)
				}
			}
		})
	}
}

func TestCompileRefusesBadRegex(t *testing.T) {
	for _, m := range []*weftv1.RouteMatch{
		{Path: &weftv1.PathMatch{Kind: weftv1.PathMatch_REGEX, Value: "/a("}},
		{Path: &weftv1.PathMatch{Kind: weftv1.PathMatch_REGEX, Value: "a)|(b"}},
		{Headers: []*weftv1.HeaderMatch{{Name: "x", Value: "[", Regex: true}}},
		{QueryParams: []*weftv1.QueryParamMatch{{Name: "x", Value: "*", Regex: true}}},
	} {
		r := &weftv1.Route{Name: "r", Matches: []*weftv1.RouteMatch{m}, Backends: backends()}
		if err := weftv1.ValidateService(&weftv1.Service{Name: "s", Namespace: "n", Routes: []*weftv1.Route{r}}); err == nil {
			t.Errorf("ValidateService accepted %v", m)
		}
		if _, err := Compile(r); err == nil {
			t.Errorf("Compile accepted %v", m)
		}
	}
}

func TestPickWeights(t *testing.T) {
	rt := mustCompile(t, &weftv1.Route{Name: "r", Backends: []*weftv1.Backend{
		{Service: "a", Namespace: "n", Weight: 90}, {Service: "b", Namespace: "n", Weight: 10}, {Service: "c", Namespace: "n", Weight: 0},
	}})
	counts := map[string]int{}
	for n := range uint32(1000) {
		counts[rt.PickBackend(n)]++
	}
	if counts["a.n"] != 900 || counts["b.n"] != 100 || counts["c.n"] != 0 {
		t.Errorf("counts = %v, want 900/100/0", counts)
	}
	zero := mustCompile(t, &weftv1.Route{Name: "r", Backends: []*weftv1.Backend{{Service: "a", Namespace: "n"}}})
	if b := zero.Pick(7); b != nil {
		t.Errorf("Pick with every weight zero = %v, want nil", b)
	}
	var keys []string
	rt.BackendKeys(func(k string) { keys = append(keys, k) })
	if fmt.Sprint(keys) != "[a.n b.n]" {
		t.Errorf("BackendKeys = %v", keys)
	}
}

// BenchmarkMatch measures the match cost of the route stage: a service
// without routes, the last of ten exact/prefix/header rules, and a regex
// rule.
func BenchmarkMatch(b *testing.B) {
	var ten []Route
	for i := range 10 {
		ten = append(ten, mustCompile(b, &weftv1.Route{Name: "r", Matches: []*weftv1.RouteMatch{{
			Path:    &weftv1.PathMatch{Value: fmt.Sprintf("/api/v%d", i)},
			Headers: []*weftv1.HeaderMatch{{Name: "x-tenant", Value: "t1"}},
		}}, Backends: backends()}))
	}
	regex := []Route{mustCompile(b, &weftv1.Route{Name: "r", Matches: []*weftv1.RouteMatch{{
		Path: &weftv1.PathMatch{Kind: weftv1.PathMatch_REGEX, Value: `/api/v[0-9]+/items/[0-9]+`},
	}}, Backends: backends()})}
	r := httptest.NewRequest("GET", "/api/v9/items/42", nil)
	r.Header.Set("X-Tenant", "t1")
	for _, bc := range []struct {
		name   string
		routes []Route
	}{{"unconfigured", nil}, {"10rules", ten}, {"regex", regex}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				matched := false
				for i := range bc.routes {
					if bc.routes[i].Accepts(r) {
						matched = true
						break
					}
				}
				if len(bc.routes) > 0 && !matched {
					b.Fatal("no match")
				}
			}
		})
	}
}
