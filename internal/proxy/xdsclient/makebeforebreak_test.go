package xdsclient

import (
	"context"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// routeTo is Service backend with one route to backend.
func routeTo(backend string) *weftv1.Service {
	return &weftv1.Service{Name: "backend", Namespace: "default", Routes: []*weftv1.Route{{
		Name: "default/r/0", Backends: []*weftv1.Backend{{Service: backend, Namespace: "default", Weight: 1}},
	}}}
}

// oneEndpoint is an Endpoints resource of svc with one endpoint.
func oneEndpoint(t *testing.T, svc string) *discoveryv3.Resource {
	return epResource(t, &weftv1.Endpoints{Service: svc, Namespace: "default", Endpoints: []*weftv1.Endpoint{{Address: "127.0.0.1:9", Identity: "spiffe://cluster.local/ns/default/sa/" + svc}}})
}

// callingBackend pushes backend (routed to v1), v1 and v2 to c and makes
// the proxy call backend, so that it has v1's endpoints.
func callingBackend(t *testing.T, f *fakeADS, c *Client) {
	t.Helper()
	next(t, f) // the Service subscription
	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.ServiceType, Nonce: "n1", Resources: []*discoveryv3.Resource{
		svcResource(t, routeTo("v1")), svcResource(t, &weftv1.Service{Name: "v1", Namespace: "default"}), svcResource(t, &weftv1.Service{Name: "v2", Namespace: "default"}),
	}}
	next(t, f)
	got := make(chan error, 1)
	go func() { _, err := c.Endpoints(context.Background(), "v1.default"); got <- err }()
	next(t, f) // the subscription
	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.EndpointsType, Nonce: "n2", Resources: []*discoveryv3.Resource{oneEndpoint(t, "v1")}}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	next(t, f)
}

// picked is the backend backend's route sends to.
func picked(c *Client) string {
	return c.Load().Services["backend.default"].Routes[0].PickBackend(0)
}

// TestRouteChangeWaitsForEndpoints: a route change to a backend the proxy
// has no endpoints for is ACKed at once but takes effect only when those
// endpoints have arrived (the client subscribes to them itself); until
// then the previous route stays in use.
func TestRouteChangeWaitsForEndpoints(t *testing.T) {
	f, c := startFake(t)
	callingBackend(t, f, c)
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
	if p := picked(c); p != "v1.default" {
		t.Fatalf("before v2's endpoints arrived the route picks %s, want the previous route's v1.default", p)
	}
	if st := c.Dump().(map[string]any)["status"].(Status); len(st.Held) != 1 || st.Held[0] != "backend.default" {
		t.Errorf("config dump status held = %v, want [backend.default]", st.Held)
	}
	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.EndpointsType, Nonce: "n4", Resources: []*discoveryv3.Resource{oneEndpoint(t, "v2")}}
	next(t, f)
	if p := picked(c); p != "v2.default" {
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
	if p := picked(c); p != "nosuch.default" {
		t.Fatalf("route picks %s, want nosuch.default", p)
	}
}

// TestHeldRouteChangeExpires: when the new backends' endpoints do not come
// within EndpointWait, the held route change applies anyway.
func TestHeldRouteChangeExpires(t *testing.T) {
	f, c := startFake(t, func(o *Options) { o.EndpointWait = 300 * time.Millisecond })
	callingBackend(t, f, c)
	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.ServiceType, Nonce: "n3", Resources: []*discoveryv3.Resource{svcResource(t, routeTo("v2"))}}
	next(t, f)
	next(t, f)
	if p := picked(c); p != "v1.default" {
		t.Fatalf("route picks %s at once, want v1.default until the wait expires", p)
	}
	deadline := time.Now().Add(3 * time.Second)
	for picked(c) != "v2.default" {
		if time.Now().After(deadline) {
			t.Fatal("the held route change was not applied after EndpointWait")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
