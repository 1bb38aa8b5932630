package xdsclient

import (
	"strings"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestGatewaySubscription: a gateway proxy subscribes to its Gateway
// resource by name; a Gateway that compiles is applied and ACKed, one
// that does not is NACKed naming its listener and the last good one stays;
// removal clears it. Each change closes the channel Gateway returned.
func TestGatewaySubscription(t *testing.T) {
	f, c := startFake(t, func(o *Options) { o.Gateway = "gw.edge" })
	var sub *discoveryv3.DeltaDiscoveryRequest
	for range 2 {
		if r := next(t, f); r.GetTypeUrl() == weftv1.GatewayType {
			sub = r
		}
	}
	if sub == nil || len(sub.GetResourceNamesSubscribe()) != 1 || sub.GetResourceNamesSubscribe()[0] != "gw.edge" {
		t.Fatalf("Gateway subscription = %v, want one by name gw.edge", sub)
	}
	res := func(g *weftv1.Gateway) *discoveryv3.Resource {
		a, err := anypb.New(g)
		if err != nil {
			t.Fatal(err)
		}
		return &discoveryv3.Resource{Name: "gw.edge", Version: g.GetListeners()[0].GetName(), Resource: a}
	}
	gw := func(listener, protocol string) *weftv1.Gateway {
		return &weftv1.Gateway{Name: "gw", Namespace: "edge", Listeners: []*weftv1.GatewayListener{{Name: listener, Port: 80, Protocol: protocol}}}
	}
	_, changed := c.Gateway()
	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.GatewayType, Nonce: "n1", Resources: []*discoveryv3.Resource{res(gw("web", "HTTP"))}}
	if ack := next(t, f); ack.GetResponseNonce() != "n1" || ack.GetErrorDetail() != nil {
		t.Fatalf("want ACK of n1, got %v", ack)
	}
	<-changed
	g, changed := c.Gateway()
	if g == nil || g.Listeners[0].Name != "web" {
		t.Fatalf("Gateway = %+v, want listener web", g)
	}
	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.GatewayType, Nonce: "n2", Resources: []*discoveryv3.Resource{res(gw("bad", "QUIC"))}}
	nack := next(t, f)
	if nack.GetResponseNonce() != "n2" || !strings.Contains(nack.GetErrorDetail().GetMessage(), `listeners[0] (bad): unsupported protocol "QUIC"`) {
		t.Fatalf("want NACK of n2 naming the listener, got %v", nack)
	}
	if g, _ := c.Gateway(); g == nil || g.Listeners[0].Name != "web" {
		t.Fatalf("after a NACK Gateway = %+v, want the last good one", g)
	}
	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.GatewayType, Nonce: "n3", RemovedResources: []string{"gw.edge"}}
	if ack := next(t, f); ack.GetResponseNonce() != "n3" || ack.GetErrorDetail() != nil {
		t.Fatalf("want ACK of n3, got %v", ack)
	}
	<-changed
	if g, _ := c.Gateway(); g != nil {
		t.Fatalf("after removal Gateway = %+v, want nil", g)
	}
}
