package xds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/xdsapi/weftv1"
	"weft.dev/weft/internal/xdsmeta"
)

// clientNode is the node of a workload of service account svc that only
// makes calls (no address).
func clientNode(svc string) xdsmeta.Workload {
	return xdsmeta.Workload{Service: svc, Namespace: "default", ServiceAccount: svc}
}

// TestUnauthenticatedStreamsRefused: a stream without a mesh client
// certificate, state-of-the-world or delta, is refused with
// Unauthenticated before any resource is sent.
func TestUnauthenticatedStreamsRefused(t *testing.T) {
	ts := startServer(t, Options{})
	other := newTestCA(t)
	tests := []struct {
		name string
		cert *tls.Certificate
		sotw bool
		code codes.Code
		msg  string
	}{
		{"delta, no client certificate", nil, false, codes.Unauthenticated, "no client certificate"},
		{"sotw, no client certificate", nil, true, codes.Unauthenticated, "no client certificate"},
		{"foreign trust domain", new(ts.ca.issue("spiffe://evil.example/ns/default/sa/orders")), false, codes.Unauthenticated, `not in trust domain "cluster.local"`},
		{"the control plane's identity", new(ts.ca.issue("spiffe://cluster.local/ns/weft-system/sa/weft-control")), true, codes.Unauthenticated, "the control plane's own identity"},
		{"not a SPIFFE ID", new(ts.ca.issue("https://example.com/orders")), false, codes.Unauthenticated, "client certificate"},
		// Refused in the handshake: the client sees the connection fail.
		{"certificate of another CA", new(other.issue(sa("orders"))), false, codes.Unavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := ts.dial(tt.cert, "")
			var got deltaResult
			if tt.sotw {
				got = openSotW(t, conn)
			} else {
				_, got = openDelta(t, conn, node(t, "orders-2", clientNode("orders")))
			}
			wantRefused(t, got, tt.code, tt.msg)
		})
	}
	if got := ts.refusals(reasonUnauthenticated); got != 5 {
		t.Errorf("refusals{reason=unauthenticated} = %v, want 5", got)
	}
	if ws := ts.reg.List(); len(ws) != 1 {
		t.Errorf("registry holds %d workloads, want only the first one", len(ws))
	}
}

// openSotW opens a state-of-the-world ADS stream, asks for every Service
// and reads the first response.
func openSotW(t testing.TB, conn *grpc.ClientConn) deltaResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return openSotWCtx(ctx, conn)
}

// openSotWCtx is openSotW for a stream that ends with ctx.
func openSotWCtx(ctx context.Context, conn *grpc.ClientConn) deltaResult {
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return deltaResult{code: status.Code(err), msg: err.Error()}
	}
	_ = stream.Send(&discoveryv3.DiscoveryRequest{TypeUrl: weftv1.ServiceType})
	resp, err := stream.Recv()
	if err != nil {
		return deltaResult{code: status.Code(err), msg: err.Error()}
	}
	return deltaResult{resources: len(resp.GetResources())}
}

// TestRegistrationBinding: a registration is bound to the certificate that
// makes it: its workload ID and address cannot be taken by another
// identity, its address must be the stream's peer IP or allowed by the
// credential's Scope, and so must its service.
func TestRegistrationBinding(t *testing.T) {
	payments := func(addr string) xdsmeta.Workload {
		return xdsmeta.Workload{Service: "payments", Namespace: "default", ServiceAccount: "payments", Address: addr}
	}
	scope := func(services []string, prefixes ...string) ScopeFunc {
		return func(*x509.Certificate) (Scope, error) {
			s := Scope{Services: services}
			for _, p := range prefixes {
				s.Addresses = append(s.Addresses, netip.MustParsePrefix(p))
			}
			return s, nil
		}
	}
	tests := []struct {
		name   string
		scope  ScopeFunc
		id     string // SPIFFE ID of the client certificate
		from   string // local IP of the client
		nodeID string
		w      xdsmeta.Workload
		// reason is the refusal reason, "" for a registration that is
		// admitted.
		reason string
		msg    string
		// want is the workload then registered at nodeID, if any.
		want *mesh.Workload
	}{
		{name: "another identity takes a workload ID", id: sa("payments"), nodeID: victim.ID, w: payments("127.0.0.1:7002"),
			reason: reasonWorkloadID, msg: "registered by another identity"},
		{name: "another identity takes an address", id: sa("payments"), nodeID: "payments-1", w: payments(victim.Address),
			reason: reasonAddressHeld, msg: "address is registered by a workload of another identity"},
		{name: "address not the peer's IP", id: sa("payments"), nodeID: "payments-1", w: payments("10.9.9.9:80"),
			reason: reasonAddress, msg: "neither the IP its xDS stream comes from (127.0.0.1)"},
		{name: "address is a name", id: sa("payments"), nodeID: "payments-1", w: payments("localhost:80"),
			reason: reasonAddress, msg: "not an IP address"},
		{name: "address in the scope", scope: scope(nil, "10.9.0.0/16"), id: sa("payments"), nodeID: "payments-1", w: payments("10.9.9.9:80"),
			want: &mesh.Workload{ID: "payments-1", Address: "10.9.9.9:80", Identity: sa("payments")}},
		{name: "address of the peer's IP", id: sa("payments"), from: "127.0.0.2", nodeID: "payments-1", w: payments("127.0.0.2:80"),
			want: &mesh.Workload{ID: "payments-1", Address: "127.0.0.2:80", Identity: sa("payments")}},
		{name: "loopback from another loopback IP", id: sa("payments"), from: "127.0.0.2", nodeID: "payments-1", w: payments("127.0.0.1:80"),
			reason: reasonAddress, msg: "(127.0.0.2)"},
		{name: "service not in the scope", scope: scope([]string{"billing"}), id: sa("payments"), nodeID: "payments-1", w: payments("127.0.0.1:80"),
			reason: reasonService, msg: `does not allow joining service "payments" (allowed: billing)`},
		{name: "service in the scope", scope: scope([]string{"billing", "payments"}), id: sa("payments"), nodeID: "payments-1", w: payments("127.0.0.1:80"),
			want: &mesh.Workload{ID: "payments-1", Address: "127.0.0.1:80", Identity: sa("payments")}},
		{name: "service refused by the scope's check", scope: func(*x509.Certificate) (Scope, error) {
			return Scope{Service: func(name string) error { return fmt.Errorf("no pod of the service account is a member of %s", name) }}, nil
		}, id: sa("payments"), nodeID: "payments-1", w: payments("127.0.0.1:80"),
			reason: reasonService, msg: `service "payments": no pod of the service account is a member of payments`},
		{name: "service accepted by the scope's check", scope: func(*x509.Certificate) (Scope, error) {
			return Scope{Service: func(name string) error {
				if name != "payments" {
					return errors.New("not payments")
				}
				return nil
			}}, nil
		}, id: sa("payments"), nodeID: "payments-1", w: payments("127.0.0.1:80"),
			want: &mesh.Workload{ID: "payments-1", Address: "127.0.0.1:80", Identity: sa("payments")}},
		{name: "scope error", scope: func(*x509.Certificate) (Scope, error) { return Scope{}, errors.New("join token revoked") },
			id: sa("payments"), nodeID: "payments-1", w: payments("127.0.0.1:80"), reason: reasonScope, msg: "join token revoked"},
		{name: "service account of another identity", id: sa("payments"), nodeID: "payments-1",
			w:      xdsmeta.Workload{Service: "orders", Namespace: "default", ServiceAccount: "orders"},
			reason: reasonNode, msg: "claims service account default/orders"},
		{name: "same identity reconnects", id: sa("orders"), nodeID: victim.ID,
			w:    xdsmeta.Workload{Service: "orders", Namespace: "default", ServiceAccount: "orders", Address: victim.Address},
			want: &mesh.Workload{ID: victim.ID, Address: victim.Address, Identity: sa("orders")}},
		{name: "same identity, new node at the address", id: sa("orders"), nodeID: "orders-2",
			w:    xdsmeta.Workload{Service: "orders", Namespace: "default", ServiceAccount: "orders", Address: victim.Address},
			want: &mesh.Workload{ID: "orders-2", Address: victim.Address, Identity: sa("orders")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, Options{Scope: tt.scope})
			conn := ts.dial(new(ts.ca.issue(tt.id)), tt.from)
			_, got := openDelta(t, conn, node(t, tt.nodeID, tt.w))
			byID := map[string]*mesh.Workload{}
			for _, w := range ts.reg.List() {
				byID[w.ID] = w
			}
			if tt.reason != "" {
				wantRefused(t, got, codes.PermissionDenied, tt.msg)
				if n := ts.refusals(tt.reason); n != 1 {
					t.Errorf("refusals{reason=%s} = %v, want 1", tt.reason, n)
				}
				if v := byID[victim.ID]; v == nil || v.Identity != victim.Identity || v.Address != victim.Address || v.Service != victim.Service {
					t.Errorf("the registered workload %s became %+v", victim.ID, v)
				}
				if tt.nodeID != victim.ID && byID[tt.nodeID] != nil {
					t.Errorf("refused workload %s is registered: %+v", tt.nodeID, byID[tt.nodeID])
				}
				return
			}
			wantAdmitted(t, got)
			w := byID[tt.nodeID]
			if w == nil || w.Address != tt.want.Address || w.Identity != tt.want.Identity {
				t.Errorf("registered %s = %+v, want address %s and identity %s", tt.nodeID, w, tt.want.Address, tt.want.Identity)
			}
		})
	}
}

// TestStreamLimits: streams beyond the bounds per certificate, per
// identity and in total are refused with ResourceExhausted naming the
// limit, and a closed stream frees its place.
func TestStreamLimits(t *testing.T) {
	tests := []struct {
		name   string
		limits Limits
		// cert returns the client certificate of stream i.
		cert   func(ts *testServer, i int) tls.Certificate
		reason string
		msg    string
	}{
		{"per certificate", Limits{MaxStreamsPerCertificate: 3}, sameCert(), reasonCertStreams, "limit MaxStreamsPerCertificate"},
		{"per identity", Limits{MaxStreamsPerIdentity: 3}, func(ts *testServer, _ int) tls.Certificate { return ts.ca.issue(sa("payments")) },
			reasonIdentityStreams, "limit MaxStreamsPerIdentity"},
		{"in total", Limits{MaxStreams: 3}, func(ts *testServer, i int) tls.Certificate { return ts.ca.issue(sa("svc-" + strconv.Itoa(i))) },
			reasonStreams, "limit MaxStreams)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, Options{Limits: tt.limits})
			var cancels []context.CancelFunc
			open := func(i int) deltaResult {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				t.Cleanup(cancel)
				cancels = append(cancels, cancel)
				svc := "payments"
				if tt.reason == reasonStreams {
					svc = "svc-" + strconv.Itoa(i)
				}
				_, got := openDeltaCtx(ctx, ts.dial(new(tt.cert(ts, i)), ""), node(t, "p-"+strconv.Itoa(i), clientNode(svc)))
				return got
			}
			for i := range 3 {
				wantAdmitted(t, open(i))
			}
			wantRefused(t, open(3), codes.ResourceExhausted, tt.msg)
			if n := ts.refusals(tt.reason); n != 1 {
				t.Errorf("refusals{reason=%s} = %v, want 1", tt.reason, n)
			}
			cancels[0]()
			// The server sees the cancel soon after.
			deadline := time.Now().Add(5 * time.Second)
			for got := open(4); got.code != codes.OK; got = open(4) {
				if time.Now().After(deadline) {
					t.Fatalf("a stream after one closed: %v %s", got.code, got.msg)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// sameCert returns one certificate for every stream.
func sameCert() func(*testServer, int) tls.Certificate {
	var once sync.Once
	var c tls.Certificate
	return func(ts *testServer, _ int) tls.Certificate {
		once.Do(func() { c = ts.ca.issue(sa("payments")) })
		return c
	}
}

// TestMessageSizeLimit: a request larger than MaxMessageSize is refused
// with ResourceExhausted naming the limit.
func TestMessageSizeLimit(t *testing.T) {
	ts := startServer(t, Options{Limits: Limits{MaxMessageSize: 4096}})
	conn := ts.dial(new(ts.ca.issue(sa("payments"))), "")
	stream, got := openDelta(t, conn, node(t, "p-1", clientNode("payments")))
	wantAdmitted(t, got)
	names := make([]string, 100)
	for i := range names {
		names[i] = strings.Repeat("x", 90) + strconv.Itoa(i)
	}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: weftv1.EndpointsType, ResourceNamesSubscribe: names}); err != nil {
		t.Fatal(err)
	}
	err := recvUntilError(stream)
	// gRPC itself tells the client, naming both sizes.
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "larger than max") || !strings.Contains(err.Error(), "4096") {
		t.Errorf("oversized request: %v, want ResourceExhausted naming the limit", err)
	}
	// gRPC writes the status before the server's RecvMsg returns.
	for deadline := time.Now().Add(5 * time.Second); ts.refusals(reasonMessageSize) != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("refusals{reason=%s} = %v, want 1", reasonMessageSize, ts.refusals(reasonMessageSize))
		}
	}
}

// recvUntilError reads the stream until it fails.
func recvUntilError(stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient) error {
	for {
		if _, err := stream.Recv(); err != nil {
			return err
		}
	}
}

// TestRequestFlood: a stream sending more requests than its token bucket
// holds is refused with ResourceExhausted naming the limits; one within
// the burst is served.
func TestRequestFlood(t *testing.T) {
	ts := startServer(t, Options{Limits: Limits{RequestRate: 1, RequestBurst: 20}})
	conn := ts.dial(new(ts.ca.issue(sa("payments"))), "")
	send := func(stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient, n int) error {
		for i := range n {
			err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: weftv1.EndpointsType, ResourceNamesSubscribe: []string{"svc-" + strconv.Itoa(i) + ".default"}})
			if err != nil {
				return err
			}
		}
		return nil
	}
	// Within the burst: the first request and 10 more.
	calm, got := openDelta(t, conn, node(t, "p-1", clientNode("payments")))
	wantAdmitted(t, got)
	if err := send(calm, 10); err != nil {
		t.Fatal(err)
	}
	flood, got := openDelta(t, conn, node(t, "p-2", clientNode("payments")))
	wantAdmitted(t, got)
	// The stream may fail while sending.
	_ = send(flood, 1000)
	err := recvUntilError(flood)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "limits RequestBurst, RequestRate") {
		t.Errorf("flood: %v, want ResourceExhausted naming RequestBurst and RequestRate", err)
	}
	if n := ts.refusals(reasonRequestRate); n != 1 {
		t.Errorf("refusals{reason=%s} = %v, want 1", reasonRequestRate, n)
	}
	// The calm stream is still served: a new subscription gets a response.
	if err := calm.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: weftv1.EndpointsType, ResourceNamesSubscribe: []string{"orders.default"}}); err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := calm.Recv()
		if err != nil {
			t.Fatalf("calm stream: %v", err)
		}
		if resp.GetTypeUrl() == weftv1.EndpointsType {
			break
		}
	}
}

// TestConnectionLimit: a connection beyond MaxConnections is closed at
// once and counted.
func TestConnectionLimit(t *testing.T) {
	ts := startServer(t, Options{Limits: Limits{MaxConnections: 2}})
	for i := range 2 {
		_, got := openDelta(t, ts.dial(new(ts.ca.issue(sa("payments"))), ""), node(t, "p-"+strconv.Itoa(i), clientNode("payments")))
		wantAdmitted(t, got)
	}
	_, got := openDelta(t, ts.dial(new(ts.ca.issue(sa("payments"))), ""), node(t, "p-3", clientNode("payments")))
	wantRefused(t, got, codes.Unavailable, "")
	if n := ts.refusals(reasonConnections); n < 1 {
		t.Errorf("refusals{reason=%s} = %v, want at least 1", reasonConnections, n)
	}
}

// TestUnauthenticatedFlood reproduces, scaled down, the flood that took
// the control plane to 126 MiB: 1,000 state-of-the-world streams without a
// client certificate, on 10 connections, to a mesh of 100 services, each
// held open by its client. Every one is refused without a resource and the
// heap stays flat.
func TestUnauthenticatedFlood(t *testing.T) {
	const conns, perConn = 10, 100
	ts := startServer(t, Options{})
	for i := range 100 {
		svc := "svc-" + strconv.Itoa(i)
		if err := ts.reg.Connect(testWorkload(svc+"-1", svc, "default", "", "127.0.0.1:"+strconv.Itoa(20000+i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.srv.rebuild(); err != nil {
		t.Fatal(err)
	}
	var clients []*grpc.ClientConn
	for range conns {
		c := ts.dial(nil, "")
		c.Connect()
		clients = append(clients, c)
	}
	// flood opens perConn streams on every connection at once and holds
	// each until it is refused or served.
	flood := func(perConn int) (results chan deltaResult, release func()) {
		results = make(chan deltaResult, conns*perConn)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var wg sync.WaitGroup
		for _, c := range clients {
			for range perConn {
				wg.Go(func() { results <- openSotWCtx(ctx, c) })
			}
		}
		wg.Wait()
		close(results)
		return results, cancel
	}
	// Warm up the connections and gRPC's buffer pools.
	_, release := flood(10)
	release()
	before := heapInUse()
	results, release := flood(perConn)
	after := heapInUse()
	release()
	refused, resources := 0, 0
	for got := range results {
		resources += got.resources
		if got.code == codes.Unauthenticated && got.resources == 0 {
			refused++
		}
	}
	if refused != conns*perConn || resources != 0 {
		t.Errorf("%d of %d unauthenticated streams refused; %d resources sent", refused, conns*perConn, resources)
	}
	growth := int64(after) - int64(before)
	t.Logf("heap in use (server and clients): %.1f MiB before the flood, %.1f MiB with %d streams held (%+.1f MiB)", mib(before), mib(after), conns*perConn, float64(growth)/(1<<20))
	if growth > 8<<20 {
		t.Errorf("heap grew by %.1f MiB under the flood, want at most 8 MiB", float64(growth)/(1<<20))
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// TestHandshakeTimeout: a connection that never completes its TLS
// handshake is closed after HandshakeTimeout.
func TestHandshakeTimeout(t *testing.T) {
	ts := startServer(t, Options{Limits: Limits{HandshakeTimeout: 200 * time.Millisecond}})
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if err := conn.SetReadDeadline(start.Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Read(make([]byte, 1))
	if took := time.Since(start); n != 0 || !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) || took > 3*time.Second {
		t.Errorf("silent connection: read %d bytes, %v after %v; want it closed after about 200ms", n, err, took.Round(time.Millisecond))
	}
}
