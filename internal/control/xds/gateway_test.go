package xds

import (
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestGatewaySubscriptionScope: a proxy registered as service gw receives
// the Gateway resource gw.default it subscribes to; subscribing to another
// gateway's resource ends the stream with PermissionDenied (the resource
// carries TLS private keys).
func TestGatewaySubscriptionScope(t *testing.T) {
	ts := startServer(t, Options{})
	gw := func(name string) *gatewayv1.Gateway {
		return &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: gatewayv1.GatewaySpec{GatewayClassName: "weft", Listeners: []gatewayv1.Listener{{Name: "web", Protocol: gatewayv1.HTTPProtocolType, Port: 8080}}}}
	}
	ts.srv.publishGateways(&api.Set{Gateways: []*gatewayv1.Gateway{gw("gw"), gw("other")}})
	for _, tt := range []struct {
		name, resource string
		code           codes.Code
	}{
		{"own", "gw.default", codes.OK},
		{"another gateway's", "other.default", codes.PermissionDenied},
		{"wildcard", "*", codes.PermissionDenied},
		{"implicit wildcard", "", codes.PermissionDenied},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn := ts.dial(new(ts.ca.issue(sa("gw"))), "")
			stream, got := openDelta(t, conn, node(t, "gw-"+tt.name, clientNode("gw")))
			wantAdmitted(t, got)
			req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: weftv1.GatewayType}
			if tt.resource != "" {
				req.ResourceNamesSubscribe = []string{tt.resource}
			}
			if err := stream.Send(req); err != nil {
				t.Fatal(err)
			}
			for {
				resp, err := stream.Recv()
				if tt.code != codes.OK {
					if status.Code(err) != tt.code {
						t.Fatalf("Recv = %v, %v; want %v", resp, err, tt.code)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if resp.GetTypeUrl() != weftv1.GatewayType {
					continue
				}
				var g weftv1.Gateway
				if len(resp.GetResources()) != 1 || resp.GetResources()[0].GetResource().UnmarshalTo(&g) != nil || g.GetName() != "gw" || len(g.GetListeners()) != 1 {
					t.Fatalf("got %v, want the Gateway resource gw.default", resp.GetResources())
				}
				return
			}
		})
	}
}
