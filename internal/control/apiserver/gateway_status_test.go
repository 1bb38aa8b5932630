package apiserver

import (
	"testing"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
)

// TestGatewayParentReasons: the Accepted reason of a route's Gateway parent.
func TestGatewayParentReasons(t *testing.T) {
	objs, err := api.Decode([]byte(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  gatewayClassName: weft
  listeners:
  - {name: web, protocol: HTTP, port: 80, hostname: "*.example.com"}
  - {name: grpc, protocol: HTTP, port: 81, allowedRoutes: {kinds: [{kind: GRPCRoute}]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := api.NewSet(objs)
	if err != nil {
		t.Fatal(err)
	}
	section := func(s string) *gatewayv1.SectionName { v := gatewayv1.SectionName(s); return &v }
	ns := func(s string) *gatewayv1.Namespace { v := gatewayv1.Namespace(s); return &v }
	for _, tt := range []struct {
		name      string
		ns        string
		ref       gatewayv1.ParentReference
		hostnames []gatewayv1.Hostname
		want      gatewayv1.RouteConditionReason
	}{
		{"attached", "edge", gatewayv1.ParentReference{Name: "gw"}, nil, gatewayv1.RouteReasonAccepted},
		{"no gateway", "edge", gatewayv1.ParentReference{Name: "nope"}, nil, gatewayv1.RouteReasonNoMatchingParent},
		{"no listener", "edge", gatewayv1.ParentReference{Name: "gw", SectionName: section("tls")}, nil, gatewayv1.RouteReasonNoMatchingParent},
		{"other namespace", "shop", gatewayv1.ParentReference{Name: "gw", Namespace: ns("edge")}, nil, gatewayv1.RouteReasonNotAllowedByListeners},
		{"kind not allowed", "edge", gatewayv1.ParentReference{Name: "gw", SectionName: section("grpc")}, nil, gatewayv1.RouteReasonNotAllowedByListeners},
		{"hostname", "edge", gatewayv1.ParentReference{Name: "gw", SectionName: section("web")}, []gatewayv1.Hostname{"shop.test"}, gatewayv1.RouteReasonNoMatchingListenerHostname},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reason, msg := gatewayParent(cfg, tt.ns, api.KindHTTPRoute, tt.ref, tt.hostnames)
			if reason != string(tt.want) {
				t.Fatalf("reason %s (%s), want %s", reason, msg, tt.want)
			}
		})
	}
}
