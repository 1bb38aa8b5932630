package xdsclient

import (
	"context"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestRouteChangeWaitsForEndpoints: a route change to a backend the proxy
// has no endpoints for is ACKed at once but takes effect only when those
// endpoints have arrived (the client subscribes to them itself); until
// then the previous route stays in use.
func TestRouteChangeWaitsForEndpoints(t *testing.T) {
	f, c := startFake(t)
	next(t, f) // the Service subscription
	routeTo := func(backend string) *weftv1.Service {
		return &weftv1.Service{Name: "backend", Namespace: "default", Routes: []*weftv1.Route{{
			Name: "default/r/0", Backends: []*weftv1.Backend{{Service: backend, Namespace: "default", Weight: 1}},
		}}}
	}
	eps := func(svc string) *discoveryv3.Resource {
		return epResource(t, &weftv1.Endpoints{Service: svc, Namespace: "default", Endpoints: []*weftv1.Endpoint{{Address: "127.0.0.1:9", Identity: "spiffe://cluster.local/ns/default/sa/" + svc}}})
	}
	pick := func() string {
		return c.Load().Services["backend.default"].Routes[0].PickBackend(0)
	}
	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.ServiceType, Nonce: "n1", Resources: []*discoveryv3.Resource{
		svcResource(t, routeTo("v1")), svcResource(t, &weftv1.Service{Name: "v1", Namespace: "default"}), svcResource(t, &weftv1.Service{Name: "v2", Namespace: "default"}),
	}}
	next(t, f)
	// The proxy calls backend: it has v1's endpoints.
	got := make(chan error, 1)
	go func() { _, err := c.Endpoints(context.Background(), "v1.default"); got <- err }()
	next(t, f) // the subscription
	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.EndpointsType, Nonce: "n2", Resources: []*discoveryv3.Resource{eps("v1")}}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	next(t, f)

	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.ServiceType, Nonce: "n3", Resources: []*discoveryv3.Resource{svcResource(t, routeTo("v2"))}}
	var subscribed, acked bool
	for range 2 {
		r := next(t, f)
		switch {
		case r.GetTypeUrl() == weftv1.EndpointsType && len(r.GetResourceNamesSubscribe()) == 1 && r.GetResourceNamesSubscribe()[0] == "v2.default":
			subscribed = true
		case r.GetResponseNonce() == "n3" && r.GetErrorDetail() == nil:
			acked = true
		default:
			t.Fatalf("unexpected request %v", r)
		}
	}
	if !subscribed || !acked {
		t.Fatalf("subscribed to v2 %v, acked %v; want both", subscribed, acked)
	}
	if p := pick(); p != "v1.default" {
		t.Fatalf("before v2's endpoints arrived the route picks %s, want the previous route's v1.default", p)
	}
	if st := c.Dump().(map[string]any)["status"].(Status); len(st.Held) != 1 || st.Held[0] != "backend.default" {
		t.Errorf("config dump status held = %v, want [backend.default]", st.Held)
	}
	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.EndpointsType, Nonce: "n4", Resources: []*discoveryv3.Resource{eps("v2")}}
	next(t, f)
	if p := pick(); p != "v2.default" {
		t.Fatalf("after v2's endpoints arrived the route picks %s, want v2.default", p)
	}
	if _, ok := c.Load().Endpoints["v2.default"]; !ok {
		t.Fatal("v2's endpoints are not in the config")
	}

	// A route to a backend that is no mesh service is applied at once.
	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.ServiceType, Nonce: "n5", Resources: []*discoveryv3.Resource{svcResource(t, routeTo("nosuch"))}}
	if r := next(t, f); r.GetResponseNonce() != "n5" {
		t.Fatalf("want the ACK of n5, got %v", r)
	}
	if p := pick(); p != "nosuch.default" {
		t.Fatalf("route picks %s, want nosuch.default", p)
	}
}
