package xds

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/control/registry"
	"weft.dev/weft/internal/xdsapi/weftv1"
	"weft.dev/weft/internal/xdsmeta"
)

var testTD = spiffeid.RequireTrustDomainFromString("cluster.local")

// testCA issues the certificates of a test mesh.
type testCA struct {
	t    testing.TB
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{t: t, cert: cert, key: key, pool: pool}
}

// issue returns a certificate for the SPIFFE ID id (and DNS names, for a
// server), with a new key.
func (ca *testCA) issue(id string, dns ...string) tls.Certificate {
	ca.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ca.t.Fatal(err)
	}
	u, err := url.Parse(id)
	if err != nil {
		ca.t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		ca.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:        []*url.URL{u}, DNSNames: dns,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		ca.t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func sa(name string) string { return "spiffe://cluster.local/ns/default/sa/" + name }

// testServer is an xDS server on a loopback port with TLS as the control
// plane sets it up: client certificates optional in the handshake.
type testServer struct {
	t    *testing.T
	ca   *testCA
	srv  *Server
	reg  *registry.Registry
	addr string
}

// victim is a registered workload whose Service and Endpoints resources
// every admitted stream receives.
var victim = mesh.Workload{ID: "orders-1", Service: "orders", Namespace: "default", ServiceAccount: "orders",
	Address: "127.0.0.1:7001", Identity: sa("orders"), Labels: mesh.WorkloadLabels("orders", "", nil)}

func startServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	ca := newTestCA(t)
	reg, err := registry.New(&blobs{m: map[string][]byte{}}, time.Minute, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Connect(victim); err != nil {
		t.Fatal(err)
	}
	if opts.Config == nil {
		opts.Config = staticConfig{&api.Set{}}
	}
	opts.Registry, opts.Logger, opts.TrustDomain = reg, quiet, testTD
	srv := New(opts)
	if _, err := srv.rebuild(); err != nil {
		t.Fatal(err)
	}
	serverCert := ca.issue("spiffe://cluster.local/ns/weft-system/sa/weft-control", "weft-control")
	tlsConf := &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.pool, MinVersion: tls.VersionTLS12}
	g := grpc.NewServer(append(srv.ServerOptions(), grpc.Creds(credentials.NewTLS(tlsConf)))...)
	ctx, cancel := context.WithCancel(context.Background())
	srv.Register(ctx, g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Serve(srv.Listener(ln))
	}()
	t.Cleanup(func() {
		cancel()
		g.Stop()
		<-done
	})
	return &testServer{t: t, ca: ca, srv: srv, reg: reg, addr: ln.Addr().String()}
}

// dial connects with cert as the client certificate (none if nil), from
// local IP from ("" for any).
func (ts *testServer) dial(cert *tls.Certificate, from string) *grpc.ClientConn {
	ts.t.Helper()
	conf := &tls.Config{RootCAs: ts.ca.pool, ServerName: "weft-control", MinVersion: tls.VersionTLS12}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(conf))}
	if from != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}))
	}
	conn, err := grpc.NewClient("passthrough:///"+ts.addr, opts...)
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { conn.Close() })
	return conn
}

// refusals is the count of refusals for reason.
func (ts *testServer) refusals(reason string) float64 {
	return testutil.ToFloat64(ts.srv.refusals.counter.WithLabelValues(reason))
}

// node describes workload w as its proxy does.
func node(t testing.TB, id string, w xdsmeta.Workload) *corev3.Node {
	t.Helper()
	md, err := xdsmeta.Encode(w)
	if err != nil {
		t.Fatal(err)
	}
	return &corev3.Node{Id: id, Metadata: md}
}

// deltaResult is what a delta stream got: the resources received before
// the stream ended or the first response, and the stream's status.
type deltaResult struct {
	resources int
	code      codes.Code
	msg       string
}

// openDelta opens a delta ADS stream, sends a wildcard Service
// subscription with n (nil for none) and reads the first response. The
// stream stays open until the test ends if it was admitted.
func openDelta(t testing.TB, conn *grpc.ClientConn, n *corev3.Node) (discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient, deltaResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return openDeltaCtx(ctx, conn, n)
}

// openDeltaCtx is openDelta for a stream that ends with ctx.
func openDeltaCtx(ctx context.Context, conn *grpc.ClientConn, n *corev3.Node) (discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient, deltaResult) {
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		return nil, deltaResult{code: status.Code(err), msg: err.Error()}
	}
	// A refused stream may fail Send; Recv reads why.
	_ = stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: n, TypeUrl: weftv1.ServiceType, ResourceNamesSubscribe: []string{"*"}})
	resp, err := stream.Recv()
	if err != nil {
		return stream, deltaResult{code: status.Code(err), msg: err.Error()}
	}
	return stream, deltaResult{resources: len(resp.GetResources()), code: codes.OK}
}

// wantRefused checks that a stream was refused with code, a message
// containing msg, and no resources.
func wantRefused(t *testing.T, got deltaResult, code codes.Code, msg string) {
	t.Helper()
	if got.resources != 0 || got.code != code || !strings.Contains(got.msg, msg) {
		t.Errorf("stream got %d resources and %v %q; want 0 resources and %v containing %q", got.resources, got.code, got.msg, code, msg)
	}
}

// wantAdmitted checks that a stream was served.
func wantAdmitted(t *testing.T, got deltaResult) {
	t.Helper()
	if got.code != codes.OK || got.resources == 0 {
		t.Errorf("stream got %d resources and %v %q; want it served", got.resources, got.code, got.msg)
	}
}
