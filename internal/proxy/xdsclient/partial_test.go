package xdsclient

import (
	"strings"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestBadResourceDoesNotBlockOthers: the first response a new proxy gets
// holds one Service that does not compile and one that does. The good one
// is applied, the NACK names the bad one and its field, and the proxy is
// ready; a later fixed version of the bad one is applied and ACKed.
func TestBadResourceDoesNotBlockOthers(t *testing.T) {
	f, c := startFake(t)
	next(t, f) // the subscription
	bad := &weftv1.Service{Name: "bad", Namespace: "default", Routes: []*weftv1.Route{{Name: "default/r/0"}}}
	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.ServiceType, Nonce: "n1", Resources: []*discoveryv3.Resource{
		svcResource(t, bad),
		svcResource(t, &weftv1.Service{Name: "good", Namespace: "default"}),
	}}
	nack := next(t, f)
	if nack.GetResponseNonce() != "n1" || nack.GetErrorDetail() == nil {
		t.Fatalf("want NACK of n1, got %v", nack)
	}
	msg := nack.GetErrorDetail().GetMessage()
	if !strings.Contains(msg, `Service "bad.default"`) || !strings.Contains(msg, "routes[0]: backends") || strings.Contains(msg, "good") {
		t.Errorf("NACK message %q does not name exactly the bad resource and its field", msg)
	}
	if err := c.Ready(); err != nil {
		t.Fatalf("not ready although a good Service was applied: %v", err)
	}
	if c.Load().Resolve("good", "default") == nil {
		t.Error("the good Service was not applied")
	}
	if c.Load().Resolve("bad", "default") != nil {
		t.Error("the bad Service was applied")
	}

	bad.Routes[0].Backends = []*weftv1.Backend{{Service: "good", Namespace: "default", Weight: 1}}
	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.ServiceType, Nonce: "n2", Resources: []*discoveryv3.Resource{svcResource(t, bad)}}
	if ack := next(t, f); ack.GetResponseNonce() != "n2" || ack.GetErrorDetail() != nil {
		t.Fatalf("want ACK of n2, got %v", ack)
	}
	if c.Load().Resolve("bad", "default") == nil || c.Load().Resolve("good", "default") == nil {
		t.Error("fixed Service not applied next to the good one")
	}
}
