package xdsgen

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

const gwDoc = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  gatewayClassName: weft
  listeners:
  - {name: https, protocol: HTTPS, port: 443, hostname: "*.example.com", tls: {certificateRefs: [{name: missing}]}}
  - {name: web, protocol: HTTP, port: 80, hostname: "*.example.com"}
  - {name: any, protocol: HTTP, port: 8080, allowedRoutes: {namespaces: {from: All}}}
  - {name: grpc-only, protocol: HTTP, port: 9090, allowedRoutes: {kinds: [{kind: GRPCRoute}]}}
`

// route is an HTTPRoute in namespace ns with parentRefs and hostnames.
func gwRoute(name, ns, parents, hostnames string) string {
	return fmt.Sprintf("---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: %s, namespace: %s}\nspec:\n  parentRefs: %s\n  hostnames: %s\n  rules: [{backendRefs: [{name: app, namespace: shop, port: 80}]}]\n", name, ns, parents, hostnames)
}

// TestGatewayHosts: which listener and hostname each route attaches under
// (sectionName, port, allowedRoutes namespaces and kinds, hostname
// intersection), and that an HTTPS listener whose Secret is missing is
// left out.
func TestGatewayHosts(t *testing.T) {
	tests := []struct {
		name, route string
		want        []string // "<listener> <hostname>: <route names>"
	}{
		{"no hostnames, same namespace", gwRoute("r", "edge", "[{name: gw}]", "[]"),
			[]string{"any : edge/r/0", "web *.example.com: edge/r/0"}},
		{"hostname narrows the wildcard", gwRoute("r", "edge", "[{name: gw}]", "[shop.example.com, other.test]"),
			[]string{"any other.test: edge/r/0", "any shop.example.com: edge/r/0", "web shop.example.com: edge/r/0"}},
		{"wildcard route on a narrower listener", gwRoute("r", "edge", "[{name: gw, sectionName: web}]", "[\"*.com\"]"),
			[]string{"web *.example.com: edge/r/0"}},
		{"sectionName", gwRoute("r", "edge", "[{name: gw, sectionName: any}]", "[]"), []string{"any : edge/r/0"}},
		{"port", gwRoute("r", "edge", "[{name: gw, port: 80}]", "[]"), []string{"web *.example.com: edge/r/0"}},
		{"other namespace: only from All", gwRoute("r", "shop", "[{name: gw, namespace: edge}]", "[]"), []string{"any : shop/r/0"}},
		{"other namespace, no namespace in ref", gwRoute("r", "shop", "[{name: gw}]", "[]"), nil},
		{"no such gateway", gwRoute("r", "edge", "[{name: nope}]", "[]"), nil},
		{"no intersection", gwRoute("r", "edge", "[{name: gw, sectionName: web}]", "[shop.test]"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := decodeSet(t, gwDoc+tt.route)
			gws := Gateways(set)
			g := gws[weftv1.ResourceName("gw", "edge")]
			if g == nil {
				t.Fatalf("no resource gw.edge in %v", gws)
			}
			var got []string
			for _, l := range g.GetListeners() {
				if l.GetName() == "https" {
					t.Fatal("the HTTPS listener whose Secret is missing was generated")
				}
				for _, h := range l.GetHosts() {
					var names []string
					for _, r := range h.GetRoutes().GetRoutes() {
						names = append(names, r.GetName())
					}
					got = append(got, l.GetName()+" "+h.GetHostname()+": "+strings.Join(names, ","))
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("hosts = %q, want %q", got, tt.want)
			}
			for _, l := range g.GetListeners() {
				for _, h := range l.GetHosts() {
					if err := weftv1.ValidateService(h.GetRoutes()); err != nil {
						t.Fatalf("listener %s host %q: %v", l.GetName(), h.GetHostname(), err)
					}
				}
			}
		})
	}
}

// TestIntersectHost checks the hostname intersection of the Gateway API.
func TestIntersectHost(t *testing.T) {
	for _, tt := range []struct{ listener, route, want string }{
		{"", "a.example.com", "a.example.com"},
		{"a.example.com", "a.example.com", "a.example.com"},
		{"*.example.com", "a.example.com", "a.example.com"},
		{"*.example.com", "a.b.example.com", "a.b.example.com"},
		{"*.example.com", "example.com", ""},
		{"a.example.com", "*.example.com", "a.example.com"},
		{"*.example.com", "*.com", "*.example.com"},
		{"*.example.com", "b.test", ""},
	} {
		if got := intersectHost(tt.listener, tt.route); got != tt.want {
			t.Errorf("intersectHost(%q, %q) = %q, want %q", tt.listener, tt.route, got, tt.want)
		}
	}
}
