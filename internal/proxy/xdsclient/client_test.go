package xdsclient

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"

	"weft.dev/weft/internal/xdsapi/weftv1"
	"weft.dev/weft/internal/xdsmeta"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeADS is a scripted delta ADS server: the test pushes responses and
// reads the requests the client sends.
type fakeADS struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	reqs  chan *discoveryv3.DeltaDiscoveryRequest
	resps chan *discoveryv3.DeltaDiscoveryResponse
}

func (f *fakeADS) DeltaAggregatedResources(s discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	go func() {
		for {
			r, err := s.Recv()
			if err != nil {
				return
			}
			f.reqs <- r
		}
	}()
	for {
		select {
		case <-s.Context().Done():
			return nil
		case r := <-f.resps:
			if err := s.Send(r); err != nil {
				return err
			}
		}
	}
}

func startFake(t *testing.T, edit ...func(*Options)) (*fakeADS, *Client) {
	t.Helper()
	f := &fakeADS{reqs: make(chan *discoveryv3.DeltaDiscoveryRequest, 100), resps: make(chan *discoveryv3.DeltaDiscoveryResponse, 100)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, f)
	go g.Serve(ln)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Conn:     conn,
		NodeID:   "client-1",
		Workload: xdsmeta.Workload{Service: "client", Namespace: "default", ServiceAccount: "client"},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, e := range edit {
		e(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		conn.Close()
		g.Stop()
	})
	return f, c
}

func svcResource(t *testing.T, s *weftv1.Service) *discoveryv3.Resource {
	t.Helper()
	a, err := anypb.New(s)
	if err != nil {
		t.Fatal(err)
	}
	return &discoveryv3.Resource{Name: weftv1.ResourceName(s.Name, s.Namespace), Version: "v", Resource: a}
}

func epResource(t *testing.T, e *weftv1.Endpoints) *discoveryv3.Resource {
	t.Helper()
	a, err := anypb.New(e)
	if err != nil {
		t.Fatal(err)
	}
	return &discoveryv3.Resource{Name: weftv1.ResourceName(e.Service, e.Namespace), Version: "v", Resource: a}
}

func next(t *testing.T, f *fakeADS) *discoveryv3.DeltaDiscoveryRequest {
	t.Helper()
	select {
	case r := <-f.reqs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no request from the client")
		return nil
	}
}

func TestSubscribesAcksAndNacks(t *testing.T) {
	f, c := startFake(t)

	first := next(t, f)
	if first.GetTypeUrl() != weftv1.ServiceType || first.GetNode().GetId() != "client-1" || len(first.GetResourceNamesSubscribe()) != 1 || first.GetResourceNamesSubscribe()[0] != "*" {
		t.Fatalf("first request = %v, want a wildcard Service subscription with the node", first)
	}
	if c.Ready() == nil {
		t.Fatal("ready before any config")
	}

	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.ServiceType, Nonce: "n1", Resources: []*discoveryv3.Resource{
		svcResource(t, &weftv1.Service{Name: "backend", Namespace: "default"}),
	}}
	if ack := next(t, f); ack.GetResponseNonce() != "n1" || ack.GetErrorDetail() != nil {
		t.Fatalf("want ACK of n1, got %v", ack)
	}
	if err := c.Ready(); err != nil {
		t.Fatalf("not ready after first config: %v", err)
	}
	if c.Load().Resolve("backend", "default") == nil {
		t.Fatal("backend not in config")
	}

	// A service with an invalid port is NACKed, naming resource and field,
	// and the last good config stays.
	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.ServiceType, Nonce: "n2", Resources: []*discoveryv3.Resource{
		svcResource(t, &weftv1.Service{Name: "bad", Namespace: "default", Ports: []*weftv1.ServicePort{{Port: 99999}}}),
	}}
	nack := next(t, f)
	if nack.GetResponseNonce() != "n2" || nack.GetErrorDetail() == nil {
		t.Fatalf("want NACK of n2, got %v", nack)
	}
	if msg := nack.GetErrorDetail().GetMessage(); !strings.Contains(msg, `Service "bad.default"`) || !strings.Contains(msg, "ports[0].port") {
		t.Errorf("NACK message %q does not name the resource and field", msg)
	}
	if c.Load().Resolve("bad", "default") != nil || c.Load().Resolve("backend", "default") == nil {
		t.Error("config changed after a NACK")
	}

	// Endpoints are subscribed on demand.
	got := make(chan error, 1)
	go func() {
		eps, err := c.Endpoints(context.Background(), "backend.default")
		if err == nil && (len(eps) != 1 || eps[0].Address != "127.0.0.1:9") {
			err = io.ErrUnexpectedEOF
		}
		got <- err
	}()
	sub := next(t, f)
	if sub.GetTypeUrl() != weftv1.EndpointsType || len(sub.GetResourceNamesSubscribe()) != 1 || sub.GetResourceNamesSubscribe()[0] != "backend.default" {
		t.Fatalf("want an Endpoints subscription for backend.default, got %v", sub)
	}
	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.EndpointsType, Nonce: "n3", Resources: []*discoveryv3.Resource{
		epResource(t, &weftv1.Endpoints{Service: "backend", Namespace: "default", Endpoints: []*weftv1.Endpoint{{Address: "127.0.0.1:9", Identity: "spiffe://cluster.local/ns/default/sa/backend"}}}),
	}}
	if err := <-got; err != nil {
		t.Fatalf("Endpoints: %v", err)
	}
	if ack := next(t, f); ack.GetResponseNonce() != "n3" || ack.GetErrorDetail() != nil {
		t.Fatalf("want ACK of n3, got %v", ack)
	}

	// Removal empties the service.
	f.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.ServiceType, Nonce: "n4", RemovedResources: []string{"backend.default"}}
	next(t, f)
	if c.Load().Resolve("backend", "default") != nil {
		t.Error("removed service still resolves")
	}
}

func TestEndpointsWaitIsBounded(t *testing.T) {
	_, c := startFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Endpoints(ctx, "nosuch.default")
	if err == nil || !strings.Contains(err.Error(), "nosuch.default") {
		t.Fatalf("err = %v, want a timeout naming the service", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("waited %s, want about 200ms", time.Since(start))
	}
}
