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
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"weft.dev/weft/internal/xdsapi/weftv1"
	"weft.dev/weft/internal/xdsmeta"
)

func TestParseAddresses(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "127.0.0.1:15010", want: []string{"127.0.0.1:15010"}},
		{in: "a:1, b:2,c:3", want: []string{"a:1", "b:2", "c:3"}},
		{in: "[::1]:7", want: []string{"[::1]:7"}},
		{in: "", wantErr: "empty entry"},
		{in: "a:1,,b:2", wantErr: "empty entry"},
		{in: "a", wantErr: "want host:port"},
		{in: "a:0", wantErr: "is not a port"},
		{in: "a:http", wantErr: "is not a port"},
		{in: ":80", wantErr: "no host"},
		{in: "a:1,a:1", wantErr: "listed twice"},
	}
	for _, tt := range tests {
		got, err := ParseAddresses(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseAddresses(%q) = %v, %v; want error with %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("ParseAddresses(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if got := Target([]string{"a:1"}); got != "a:1" {
		t.Errorf("Target of one address = %q, want the address itself", got)
	}
	if got := Target([]string{"a:1", "b:2"}); got != "weft-control:///a:1,b:2" {
		t.Errorf("Target of two = %q", got)
	}
}

// replica is one fake control-plane replica.
type replica struct {
	fake *fakeADS
	g    *grpc.Server
	addr string
}

func startReplica(t *testing.T) *replica {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{fake: &fakeADS{reqs: make(chan *discoveryv3.DeltaDiscoveryRequest, 100), resps: make(chan *discoveryv3.DeltaDiscoveryResponse, 100)}, g: grpc.NewServer(), addr: ln.Addr().String()}
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(r.g, r.fake)
	go r.g.Serve(ln)
	t.Cleanup(r.g.Stop)
	return r
}

// TestFailover: a client given two replicas connects to one; when that
// one is killed, the client is on the other within 2 s, resubscribes with
// the versions it holds (so it is not sent everything again), and its
// config stays what it was meanwhile.
func TestFailover(t *testing.T) {
	reps := []*replica{startReplica(t), startReplica(t)}
	conn, err := grpc.NewClient(Target([]string{reps[0].addr, reps[1].addr}), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := New(Options{
		Conn: conn, NodeID: "client-1",
		Workload: xdsmeta.Workload{Service: "client", Namespace: "default", ServiceAccount: "client"},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// Whichever replica the shuffled pick_first chose gets the
	// subscription.
	var first, other *replica
	select {
	case r := <-reps[0].fake.reqs:
		first, other = reps[0], reps[1]
		_ = r
	case r := <-reps[1].fake.reqs:
		first, other = reps[1], reps[0]
		_ = r
	case <-time.After(5 * time.Second):
		t.Fatal("no replica got a subscription")
	}
	svc := svcResource(t, &weftv1.Service{Name: "backend", Namespace: "default"})
	svc.Version = "7"
	first.fake.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.ServiceType, Nonce: "1", SystemVersionInfo: xdsmeta.FormatVersion(42, 7), Resources: []*discoveryv3.Resource{svc}}
	waitFor(t, "the first config", func() bool { return c.ConnState().Revision == 42 })
	if st := c.ConnState(); st.Control != first.addr || !st.Connected {
		t.Fatalf("connected to %q (connected=%v), want %s", st.Control, st.Connected, first.addr)
	}
	cfg := c.Load()

	killed := time.Now()
	first.g.Stop()
	var resub *discoveryv3.DeltaDiscoveryRequest
	for resub == nil {
		select {
		case r := <-other.fake.reqs:
			if r.GetTypeUrl() == weftv1.ServiceType && r.GetNode() != nil {
				resub = r
			}
		case <-time.After(3 * time.Second):
			t.Fatal("no subscription reached the other replica within 3 s")
		}
		// Meanwhile, the config is the last good one.
		if c.Load() != cfg {
			t.Fatal("config changed while disconnected")
		}
	}
	if got := resub.GetInitialResourceVersions()[svc.Name]; got != "7" {
		t.Errorf("resubscription carries version %q of %s, want 7 (initial versions %v)", got, svc.Name, resub.GetInitialResourceVersions())
	}
	other.fake.resps <- &discoveryv3.DeltaDiscoveryResponse{TypeUrl: weftv1.ServiceType, Nonce: "1", SystemVersionInfo: xdsmeta.FormatVersion(43, 1)}
	waitFor(t, "connected to the other replica", func() bool { st := c.ConnState(); return st.Connected && st.Control == other.addr })
	d := time.Since(killed)
	t.Logf("failover took %v", d)
	if d > 2*time.Second {
		t.Errorf("failover took %v, want under 2 s", d)
	}
	if _, ok := c.Load().Services[svc.Name]; !ok {
		t.Errorf("service %s lost across the failover", svc.Name)
	}
	if st := c.ConnState(); st.Revision != 43 || st.Reconnects != 1 {
		t.Errorf("after failover: revision %d, reconnects %d; want 43, 1", st.Revision, st.Reconnects)
	}
}

// TestUnaryFailover: a unary call (what the CA's Sign is) on a channel to
// several replicas reaches another replica once the one it used is gone.
func TestUnaryFailover(t *testing.T) {
	var addrs []string
	servers := map[string]*grpc.Server{}
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		g := grpc.NewServer()
		healthpb.RegisterHealthServer(g, health.NewServer())
		go g.Serve(ln)
		t.Cleanup(g.Stop)
		addrs = append(addrs, ln.Addr().String())
		servers[ln.Addr().String()] = g
	}
	conn, err := grpc.NewClient(Target(addrs), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	call := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var p peer.Peer
		_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p))
		if err != nil {
			return "", err
		}
		return p.Addr.String(), nil
	}
	used, err := call()
	if err != nil {
		t.Fatal(err)
	}
	servers[used].Stop()
	// One call may see the old connection fail; the next must succeed on
	// the other replica.
	deadline := time.Now().Add(2 * time.Second)
	for {
		now, err := call()
		if err == nil {
			if now == used {
				t.Fatalf("call answered by the stopped replica %s", used)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call succeeded on the other replica within 2 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
