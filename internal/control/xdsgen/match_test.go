package xdsgen_test

import (
	"net/http/httptest"
	"testing"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/control/xdsgen"
	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// compiled compiles the routes of cfg (YAML) for the services given as
// {name, namespace} and builds the proxy Config from them, as a proxy
// receives them: the control plane's ordering and the proxy's matching are
// tested together.
func compiled(t *testing.T, cfg string, services ...[2]string) *config.Config {
	t.Helper()
	objs, err := api.Decode([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	set, err := api.NewSet(objs)
	if err != nil {
		t.Fatal(err)
	}
	routing := xdsgen.NewRouting(set)
	var svcs []*weftv1.Service
	for _, s := range services {
		svcs = append(svcs, routing.Service(&mesh.Service{Name: s[0], Namespace: s[1]}))
	}
	c, err := config.Build("1", svcs, nil)
	if err != nil {
		t.Fatalf("the proxy refuses the compiled routes: %v", err)
	}
	return c
}

// request is one request of a match table and the route that must win it.
type request struct {
	caller  string // namespace of the calling proxy; "default" if empty
	method  string
	path    string
	headers []string // name, value, ...
	// want is the winning route's "<namespace>/<route>/<rule>" and the
	// backend it sends to, "" for no route (404), "self" for the default
	// route to the service itself (no routes for this caller).
	want, backend string
}

func checkRequests(t *testing.T, c *config.Config, host string, reqs []request) {
	t.Helper()
	for _, tt := range reqs {
		if tt.caller == "" {
			tt.caller = "default"
		}
		r := httptest.NewRequest(tt.method, "http://"+host+tt.path, nil)
		for i := 0; i+1 < len(tt.headers); i += 2 {
			r.Header.Set(tt.headers[i], tt.headers[i+1])
		}
		svc := c.Resolve(host, tt.caller)
		if svc == nil {
			t.Fatalf("%s does not resolve", host)
		}
		got, backend := "", ""
		if rt := svc.Match(r, tt.caller); rt != nil {
			got, backend = rt.Name, rt.PickBackend(0)
		} else if len(svc.RoutesFor(tt.caller)) == 0 {
			got = "self"
		}
		if got != tt.want || backend != tt.backend {
			t.Errorf("caller in %s: %s %s %v: route %q to %q, want %q to %q", tt.caller, tt.method, tt.path, tt.headers, got, backend, tt.want, tt.backend)
		}
	}
}

// precedenceRoutes conflict on every Gateway API precedence criterion.
// Creation timestamps: root is the oldest, then method, then the rest.
const precedenceRoutes = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: root, namespace: default, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: root}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: method, namespace: default, creationTimestamp: "2026-01-02T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - matches: [{method: POST}]
    backendRefs: [{name: post}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: headers, namespace: default, creationTimestamp: "2026-01-03T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - matches: [{headers: [{name: x-a, value: "1"}]}]
    backendRefs: [{name: one-header}]
  - matches: [{headers: [{name: x-a, value: "1"}, {name: x-b, value: "1"}]}]
    backendRefs: [{name: two-headers}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: paths, namespace: default, creationTimestamp: "2026-01-03T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}}]
    backendRefs: [{name: api}]
  - matches: [{path: {type: PathPrefix, value: /api/v1}}]
    backendRefs: [{name: api-v1}]
  - matches: [{path: {type: Exact, value: /api}}]
    backendRefs: [{name: api-exact}]
  - matches: [{path: {type: PathPrefix, value: /api}, method: GET}]
    backendRefs: [{name: api-get}]
  - matches:
    - {path: {type: PathPrefix, value: /multi/long/prefix}}
    - {path: {type: PathPrefix, value: /m}, headers: [{name: x-m, value: "1"}]}
    backendRefs: [{name: multi}]
  - matches: [{path: {type: PathPrefix, value: /multi/long}}]
    backendRefs: [{name: multi-long}]
  - matches: [{path: {type: PathPrefix, value: /same}}]
    backendRefs: [{name: same-first-rule}]
  - matches: [{path: {type: PathPrefix, value: /same}}]
    backendRefs: [{name: same-second-rule}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: b-tie, namespace: default, creationTimestamp: "2026-01-04T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /tie}}]
    backendRefs: [{name: b-tie}]
  - matches: [{path: {type: PathPrefix, value: /older}}]
    backendRefs: [{name: b-older}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a-tie, namespace: default, creationTimestamp: "2026-01-04T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /tie}}]
    backendRefs: [{name: a-tie}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a-younger, namespace: default, creationTimestamp: "2026-01-05T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /older}}]
    backendRefs: [{name: a-younger}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: greeter, namespace: default, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: greeter}]
  rules:
  - matches: [{headers: [{name: x-a, value: "1"}, {name: x-b, value: "1"}]}]
    backendRefs: [{name: any-two-headers}]
  - matches: [{method: {service: pkg.Greeter}}]
    backendRefs: [{name: service}]
  - matches: [{method: {service: pkg.Greeter}, headers: [{name: x-a, value: "1"}]}]
    backendRefs: [{name: service-header}]
  - matches: [{method: {service: pkg.Greeter, method: Hello}}]
    backendRefs: [{name: hello}]
  - matches: [{method: {service: pkg.Greeter, method: Hi}}]
    backendRefs: [{name: hi}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: greeter-http, namespace: default, creationTimestamp: "2025-12-31T00:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: greeter}]
  rules:
  - matches: [{path: {type: Exact, value: /pkg.Greeter/Ciao}}]
    backendRefs: [{name: http-ciao}]
  - matches: [{path: {type: PathPrefix, value: /http}}]
    backendRefs: [{name: http}]
`

// TestRoutePrecedence compiles routes that conflict on each criterion of
// Gateway API match precedence and checks which wins each request: exact
// path, longest prefix, method, most headers, then the oldest route, the
// route first by "<namespace>/<name>", the first rule; for GRPCRoute the
// longest service, the longest method, most headers. Precedence is per
// match, not per rule.
func TestRoutePrecedence(t *testing.T) {
	c := compiled(t, precedenceRoutes, [2]string{"echo", "default"}, [2]string{"greeter", "default"})
	t.Run("HTTPRoute", func(t *testing.T) {
		checkRequests(t, c, "echo", []request{
			{method: "GET", path: "/", want: "default/root/0", backend: "root.default"},
			// A method match beats PathPrefix "/" (a match without a
			// path is one), though root is older.
			{method: "POST", path: "/", want: "default/method/0", backend: "post.default"},
			{method: "GET", path: "/", headers: []string{"x-a", "1"}, want: "default/headers/0", backend: "one-header.default"},
			{method: "GET", path: "/", headers: []string{"x-a", "1", "x-b", "1"}, want: "default/headers/1", backend: "two-headers.default"},
			// Method before headers.
			{method: "POST", path: "/", headers: []string{"x-a", "1", "x-b", "1"}, want: "default/method/0", backend: "post.default"},
			{method: "GET", path: "/api", want: "default/paths/2", backend: "api-exact.default"},
			{method: "POST", path: "/api", want: "default/paths/2", backend: "api-exact.default"},
			{method: "GET", path: "/api/v1/items", want: "default/paths/1", backend: "api-v1.default"},
			{method: "GET", path: "/api/items", want: "default/paths/3", backend: "api-get.default"},
			{method: "POST", path: "/api/items", want: "default/paths/0", backend: "api.default"},
			// A longer prefix beats a method.
			{method: "POST", path: "/api/v1", want: "default/paths/1", backend: "api-v1.default"},
			{method: "GET", path: "/apiv1", want: "default/root/0", backend: "root.default"},
			// Each match of a rule ranks on its own.
			{method: "GET", path: "/multi/long/prefix/x", want: "default/paths/4", backend: "multi.default"},
			{method: "GET", path: "/multi/long/x", headers: []string{"x-m", "1"}, want: "default/paths/5", backend: "multi-long.default"},
			{method: "GET", path: "/m/x", headers: []string{"x-m", "1"}, want: "default/paths/4", backend: "multi.default"},
			{method: "GET", path: "/same", want: "default/paths/6", backend: "same-first-rule.default"},
			// Same age: by name.
			{method: "GET", path: "/tie", want: "default/a-tie/0", backend: "a-tie.default"},
			// Older route before name.
			{method: "GET", path: "/older", want: "default/b-tie/1", backend: "b-older.default"},
		})
	})
	t.Run("GRPCRoute", func(t *testing.T) {
		checkRequests(t, c, "greeter", []request{
			{method: "POST", path: "/pkg.Greeter/Hello", headers: []string{"x-a", "1", "x-b", "1"}, want: "default/greeter/3", backend: "hello.default"},
			{method: "POST", path: "/pkg.Greeter/Hi", want: "default/greeter/4", backend: "hi.default"},
			{method: "POST", path: "/pkg.Greeter/Bye", headers: []string{"x-a", "1"}, want: "default/greeter/2", backend: "service-header.default"},
			// A service match beats more headers.
			{method: "POST", path: "/pkg.Greeter/Bye", headers: []string{"x-a", "1", "x-b", "1"}, want: "default/greeter/2", backend: "service-header.default"},
			{method: "POST", path: "/pkg.Greeter/Bye", want: "default/greeter/1", backend: "service.default"},
			{method: "POST", path: "/other.Svc/Bye", headers: []string{"x-a", "1", "x-b", "1"}, want: "default/greeter/0", backend: "any-two-headers.default"},
			{method: "POST", path: "/other.Svc/Bye", want: "", backend: ""},
		})
	})
	// HTTPRoute and GRPCRoute precedence is not merged: greeter-http is
	// older than the GRPCRoute, so its matches come first, though the
	// GRPCRoute's 11-character service would outrank it if compared.
	t.Run("kinds not merged", func(t *testing.T) {
		checkRequests(t, c, "greeter", []request{
			{method: "POST", path: "/pkg.Greeter/Ciao", want: "default/greeter-http/0", backend: "http-ciao.default"},
			{method: "POST", path: "/pkg.Greeter/Bye", want: "default/greeter/1", backend: "service.default"},
			{method: "GET", path: "/http/x", want: "default/greeter-http/1", backend: "http.default"},
		})
	})
}

// gammaRoutes: echo in default has a producer route; evil and shop have
// consumer routes for it, evil's sending everything elsewhere.
const gammaRoutes = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - backendRefs: [{name: echo-v1}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: hijack, namespace: evil}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, namespace: default}]
  rules:
  - backendRefs: [{name: sink}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: admin-only, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, namespace: default}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /admin}}]
    backendRefs: [{name: echo-admin, namespace: default}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: hijack-plain, namespace: evil}
spec:
  parentRefs: [{group: "", kind: Service, name: plain, namespace: default}]
  rules:
  - backendRefs: [{name: sink}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: greeter, namespace: default}
spec:
  parentRefs: [{group: "", kind: Service, name: greeter}]
  rules:
  - backendRefs: [{name: greeter-v1}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: greeter-hijack, namespace: evil}
spec:
  parentRefs: [{group: "", kind: Service, name: greeter, namespace: default}]
  rules:
  - matches: [{method: {service: pkg.Greeter}}]
    backendRefs: [{name: sink}]
`

// TestGAMMAConsumerRoutes: a route in another namespace than its parent
// Service's (a consumer route) applies only to callers in its namespace,
// and replaces the producer routes for them; the producer route applies to
// every other caller. A namespace cannot take over another's traffic.
func TestGAMMAConsumerRoutes(t *testing.T) {
	c := compiled(t, gammaRoutes, [2]string{"echo", "default"}, [2]string{"plain", "default"}, [2]string{"greeter", "default"})
	checkRequests(t, c, "echo.default", []request{
		{caller: "default", method: "GET", path: "/", want: "default/echo/0", backend: "echo-v1.default"},
		{caller: "other", method: "GET", path: "/", want: "default/echo/0", backend: "echo-v1.default"},
		{caller: "evil", method: "GET", path: "/", want: "evil/hijack/0", backend: "sink.evil"},
		{caller: "shop", method: "GET", path: "/admin/x", want: "shop/admin-only/0", backend: "echo-admin.default"},
		// shop's consumer routes replace the producer route for shop:
		// what they do not match is not routed (404).
		{caller: "shop", method: "GET", path: "/", want: "", backend: ""},
	})
	checkRequests(t, c, "plain.default", []request{
		{caller: "default", method: "GET", path: "/", want: "self", backend: ""},
		{caller: "evil", method: "GET", path: "/", want: "evil/hijack-plain/0", backend: "sink.evil"},
	})
	checkRequests(t, c, "greeter.default", []request{
		{caller: "default", method: "POST", path: "/pkg.Greeter/Hello", want: "default/greeter/0", backend: "greeter-v1.default"},
		{caller: "evil", method: "POST", path: "/pkg.Greeter/Hello", want: "evil/greeter-hijack/0", backend: "sink.evil"},
		{caller: "evil", method: "POST", path: "/other.Svc/Hello", want: "", backend: ""},
	})
}
