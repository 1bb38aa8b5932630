package xdsgen_test

import (
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/control/xdsgen"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// regexQueryRoutes conflict on the criteria added by regular expression
// and query parameter matches, and on GRPCRoute regular expression and
// method-only matches.
const regexQueryRoutes = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: items, namespace: default, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /items}}]
    backendRefs: [{name: prefix}]
  - matches: [{path: {type: RegularExpression, value: "/items/[0-9]+"}}]
    backendRefs: [{name: regex}]
  - matches: [{path: {type: Exact, value: /items/42}}]
    backendRefs: [{name: exact}]
  - matches: [{path: {type: PathPrefix, value: /items}, queryParams: [{name: v, value: "2"}]}]
    backendRefs: [{name: query}]
  - matches: [{path: {type: PathPrefix, value: /items}, queryParams: [{name: v, value: "2"}, {type: RegularExpression, name: debug, value: "1|true"}]}]
    backendRefs: [{name: two-queries}]
  - matches: [{path: {type: PathPrefix, value: /items}, headers: [{name: x-a, value: "1"}, {name: X-A, value: "2"}]}]
    backendRefs: [{name: header}]
  - matches: [{path: {type: PathPrefix, value: /items}, method: DELETE}]
    backendRefs: [{name: delete}]
  - matches: [{path: {type: RegularExpression, value: "/items/.*"}}]
    backendRefs: [{name: short-regex}]
  - matches: [{path: {type: RegularExpression, value: "/items/[0-9]+/parts(/.*)?"}}]
    backendRefs: [{name: long-regex}]
  - matches: [{path: {type: PathPrefix, value: /items}, headers: [{type: RegularExpression, name: x-user, value: "admin-[a-z]+"}]}]
    backendRefs: [{name: header-regex}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: greeter, namespace: default, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: greeter}]
  rules:
  - matches: [{method: {method: Hello}}]
    backendRefs: [{name: any-hello}]
  - matches: [{method: {service: pkg.Greeter}}]
    backendRefs: [{name: service}]
  - matches: [{method: {type: RegularExpression, service: "pkg\\..*", method: "H.*"}}]
    backendRefs: [{name: regex}]
  - matches: [{method: {service: pkg.Greeter, method: Hello}}]
    backendRefs: [{name: exact}]
  - matches: [{method: {type: RegularExpression, service: "pkg\\.Greeter"}}]
    backendRefs: [{name: regex-service}]
  - backendRefs: [{name: rest}]
`

// TestRoutePrecedenceRegexQuery: exact path, then regular expressions
// (longest first), then prefixes (longest first); then method, header
// matches (a repeated name counts once and only its first entry applies),
// query parameter matches. GRPCRoute: exact before regular expression,
// then longest service, longest method, headers; a method alone matches
// it in every service.
func TestRoutePrecedenceRegexQuery(t *testing.T) {
	c := compiled(t, regexQueryRoutes, [2]string{"echo", "default"}, [2]string{"greeter", "default"})
	t.Run("HTTPRoute", func(t *testing.T) {
		checkRequests(t, c, "echo", []request{
			{method: "GET", path: "/items/42", want: "default/items/2", backend: "exact.default"},
			{method: "GET", path: "/items/43", want: "default/items/1", backend: "regex.default"},
			// A regular expression beats a prefix with more conditions.
			{method: "DELETE", path: "/items/43?v=2", headers: []string{"x-a", "1"}, want: "default/items/1", backend: "regex.default"},
			// Longest regular expression first; each matches the whole path.
			{method: "GET", path: "/items/43/parts", want: "default/items/8", backend: "long-regex.default"},
			{method: "GET", path: "/items/42/parts/9", want: "default/items/8", backend: "long-regex.default"},
			{method: "GET", path: "/items/x", want: "default/items/7", backend: "short-regex.default"},
			{method: "GET", path: "/items", want: "default/items/0", backend: "prefix.default"},
			{method: "GET", path: "/items?v=2", want: "default/items/3", backend: "query.default"},
			{method: "GET", path: "/items?v=3", want: "default/items/0", backend: "prefix.default"},
			{method: "GET", path: "/items?debug=true&v=2", want: "default/items/4", backend: "two-queries.default"},
			{method: "GET", path: "/items?v=2&debug=no", want: "default/items/3", backend: "query.default"},
			// Headers before query parameters, method before headers.
			{method: "GET", path: "/items?v=2&debug=1", headers: []string{"x-a", "1"}, want: "default/items/5", backend: "header.default"},
			{method: "DELETE", path: "/items?v=2", headers: []string{"x-a", "1"}, want: "default/items/6", backend: "delete.default"},
			// Only the first x-a entry applies.
			{method: "GET", path: "/items", headers: []string{"x-a", "2"}, want: "default/items/0", backend: "prefix.default"},
			// Both one-header rules tie: the first rule wins.
			{method: "GET", path: "/items", headers: []string{"x-a", "1", "x-user", "admin-bob"}, want: "default/items/5", backend: "header.default"},
			{method: "GET", path: "/items", headers: []string{"x-user", "admin-bob"}, want: "default/items/9", backend: "header-regex.default"},
			{method: "GET", path: "/items", headers: []string{"x-user", "admin-bob2"}, want: "default/items/0", backend: "prefix.default"},
		})
	})
	t.Run("GRPCRoute", func(t *testing.T) {
		checkRequests(t, c, "greeter", []request{
			{method: "POST", path: "/pkg.Greeter/Hello", want: "default/greeter/3", backend: "exact.default"},
			// Exact before regular expressions, whatever their length.
			{method: "POST", path: "/pkg.Greeter/Hi", want: "default/greeter/1", backend: "service.default"},
			{method: "POST", path: "/pkg.Other/Hi", want: "default/greeter/2", backend: "regex.default"},
			{method: "POST", path: "/other.Svc/Hello", want: "default/greeter/0", backend: "any-hello.default"},
			// A rule without matches comes after every method match.
			{method: "POST", path: "/pkg.Other/Bye", want: "default/greeter/5", backend: "rest.default"},
		})
	})
}

// TestRouteFiltersTranslation checks the translation of every filter
// field, on a rule and on a backendRef.
func TestRouteFiltersTranslation(t *testing.T) {
	const cfg = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: f, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - {type: RequestRedirect, requestRedirect: {scheme: https, hostname: shop.example, port: 8443, statusCode: 301, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}}
  - matches: [{path: {type: PathPrefix, value: /api/}}]
    filters:
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-s, value: "1"}], add: [{name: x-a, value: "2"}], remove: [x-r]}}
    - {type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-resp, value: "3"}]}}
    - {type: URLRewrite, urlRewrite: {hostname: inner, path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}
    backendRefs:
    - name: v1
      weight: 3
      filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-backend, value: v1}]}}]
    - name: v2
      weight: 0
      filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: x-v, value: "2"}]}}]
  - matches: [{path: {type: Exact, value: /v2}}]
    backendRefs:
    - name: v2
      filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /v2}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: g, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: greeter}]
  rules:
  - filters: [{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: x-g, value: "1"}]}}]
    backendRefs:
    - name: greeter-v2
      filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {remove: [x-internal]}}]
`
	objs, err := api.Decode([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := api.Validate(o); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		if err := api.CheckSupported(o); err != nil {
			t.Fatalf("CheckSupported: %v", err)
		}
	}
	set, err := api.NewSet(objs)
	if err != nil {
		t.Fatal(err)
	}
	routing := xdsgen.NewRouting(set)
	echo := routing.Service(&mesh.Service{Name: "echo", Namespace: "default"})
	greeter := routing.Service(&mesh.Service{Name: "greeter", Namespace: "default"})
	for _, s := range []*weftv1.Service{echo, greeter} {
		if err := weftv1.ValidateService(s); err != nil {
			t.Fatalf("ValidateService(%s): %v", s.Name, err)
		}
	}
	want := []string{
		`name:"default/f/2" matches:{path:{kind:EXACT value:"/v2"}} backends:{service:"v2" namespace:"default" weight:1 rewrite:{path:{kind:FULL value:"/v2"}}}`,
		`name:"default/f/1" matches:{path:{value:"/api/"}} ` +
			`backends:{service:"v1" namespace:"default" weight:3 request_headers:{set:{name:"x-backend" value:"v1"}}} ` +
			`backends:{service:"v2" namespace:"default" response_headers:{add:{name:"x-v" value:"2"}}} ` +
			`request_headers:{set:{name:"x-s" value:"1"} add:{name:"x-a" value:"2"} remove:"x-r"} response_headers:{set:{name:"x-resp" value:"3"}} ` +
			`rewrite:{hostname:"inner" path:{kind:PREFIX value:"/" matched_prefix:"/api/"}}`,
		// The redirect rule has no backendRefs: its fail backend is never used.
		`name:"default/f/0" matches:{path:{value:"/old"}} backends:{weight:1 fail_status:500 fail_reason:"the rule has no backendRefs"} ` +
			`redirect:{scheme:"https" hostname:"shop.example" port:8443 path:{kind:PREFIX value:"/new" matched_prefix:"/old"} status_code:301}`,
	}
	check := func(routes []*weftv1.Route, want []string) {
		t.Helper()
		if len(routes) != len(want) {
			t.Fatalf("%d routes, want %d", len(routes), len(want))
		}
		for i, r := range routes {
			w := &weftv1.Route{}
			if err := prototext.Unmarshal([]byte(want[i]), w); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(r, w) {
				t.Errorf("route %d:\n got %v\nwant %v", i, r, w)
			}
		}
	}
	check(echo.Routes, want)
	check(greeter.Routes, []string{`name:"default/g/0" matches:{} request_headers:{add:{name:"x-g" value:"1"}} ` +
		`backends:{service:"greeter-v2" namespace:"default" weight:1 response_headers:{remove:"x-internal"}}`})
}
