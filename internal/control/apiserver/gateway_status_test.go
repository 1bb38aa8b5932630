package apiserver

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// TestGatewayStatus: Programmed follows the gateway proxy's ACK; a
// listener whose Secret is missing has ResolvedRefs False
// InvalidCertificateRef and is not programmed; attached routes are counted.
func TestGatewayStatus(t *testing.T) {
	objs, err := api.Decode([]byte(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: edge}
spec:
  gatewayClassName: weft
  listeners:
  - {name: web, protocol: HTTP, port: 80}
  - {name: secure, protocol: HTTPS, port: 443, tls: {certificateRefs: [{name: missing}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: edge}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: app, port: 80}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := api.NewSet(objs)
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Gateways[0]
	cond := func(cs []metav1.Condition, typ string) string {
		for _, c := range cs {
			if c.Type == typ {
				return string(c.Status) + "/" + c.Reason
			}
		}
		return "missing"
	}
	for _, tt := range []struct {
		programmed             bool
		gateway, web, secure   string
		secureRefs             string
		webRoutes, secureRoute int32
	}{
		{false, "False/Pending", "False/Pending", "False/Pending", "False/InvalidCertificateRef", 1, 1},
		{true, "True/Programmed", "True/Programmed", "False/Pending", "False/InvalidCertificateRef", 1, 1},
	} {
		st := gatewayStatus(cfg, g, tt.programmed)
		if got := cond(st.Conditions, "Accepted"); got != "True/Accepted" {
			t.Errorf("Accepted = %s", got)
		}
		if got := cond(st.Conditions, "Programmed"); got != tt.gateway {
			t.Errorf("programmed %v: Programmed = %s, want %s", tt.programmed, got, tt.gateway)
		}
		if got := cond(st.Listeners[0].Conditions, "Programmed"); got != tt.web {
			t.Errorf("programmed %v: web Programmed = %s, want %s", tt.programmed, got, tt.web)
		}
		if got := cond(st.Listeners[1].Conditions, "Programmed"); got != tt.secure {
			t.Errorf("programmed %v: secure Programmed = %s, want %s", tt.programmed, got, tt.secure)
		}
		if got := cond(st.Listeners[1].Conditions, "ResolvedRefs"); got != tt.secureRefs {
			t.Errorf("secure ResolvedRefs = %s, want %s", got, tt.secureRefs)
		}
		if st.Listeners[0].AttachedRoutes != tt.webRoutes || st.Listeners[1].AttachedRoutes != tt.secureRoute {
			t.Errorf("attached routes %d, %d", st.Listeners[0].AttachedRoutes, st.Listeners[1].AttachedRoutes)
		}
	}
}
