package identity

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
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// call is what the fake CA saw of one Sign call.
type call struct {
	Token      string // the authorization metadata
	ClientCert string // serial of the verified client certificate
	ClientID   string // its URI SAN
}

// fakeCA signs every CSR with its root and records each call's credential.
type fakeCA struct {
	weftv1.UnimplementedCertificateAuthorityServer
	root    *x509.Certificate
	rootKey *ecdsa.PrivateKey
	serial  int64

	mu    sync.Mutex
	calls []call
}

func (f *fakeCA) Sign(ctx context.Context, req *weftv1.SignRequest) (*weftv1.SignResponse, error) {
	var c call
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) > 0 {
		c.Token = v[0]
	}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
			leaf := ti.State.VerifiedChains[0][0]
			c.ClientCert = leaf.SerialNumber.String()
			c.ClientID = leaf.URIs[0].String()
		}
	}
	csr, err := x509.ParseCertificateRequest(req.GetCsrDer())
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.serial++
	serial := f.serial
	f.mu.Unlock()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(serial), NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, URIs: csr.URIs,
	}, f.root, csr.PublicKey, f.rootKey)
	if err != nil {
		return nil, err
	}
	return &weftv1.SignResponse{SpiffeId: csr.URIs[0].String(), TrustDomain: "weft.local", CertChainDer: [][]byte{der}, TrustBundleDer: [][]byte{f.root.Raw}}, nil
}

func (f *fakeCA) seen() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// startFakeCA serves a fakeCA over TLS as the control plane does: the
// client certificate is verified if one is given.
func startFakeCA(t *testing.T) (*fakeCA, string, *x509.CertPool) {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse("spiffe://weft.local")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1000), Subject: pkix.Name{CommonName: "root"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, URIs: []*url.URL{u}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(1001), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"weft-control"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, root, &srvKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	ca := &fakeCA{root: root, rootKey: rootKey}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}},
		ClientAuth:   tls.VerifyClientCertIfGiven, ClientCAs: pool,
	})))
	weftv1.RegisterCertificateAuthorityServer(srv, ca)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return ca, lis.Addr().String(), pool
}

func TestFetchRenewsWithCertificate(t *testing.T) {
	ca, target, roots := startFakeCA(t)
	serverTLS := &tls.Config{RootCAs: roots, ServerName: "weft-control"}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(credentials.NewTLS(serverTLS)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	id := spiffeid.RequireFromString("spiffe://weft.local/ns/default/sa/orders")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	tests := []struct {
		name  string
		renew bool
		want  []call
	}{
		{name: "renewal presents the current certificate, not the token", renew: true, want: []call{
			{Token: "Bearer tok"},
			{ClientCert: "1", ClientID: id.String()},
			{ClientCert: "2", ClientID: id.String()},
		}},
		{name: "without renewal configured every call uses the token", want: []call{
			{Token: "Bearer tok"}, {Token: "Bearer tok"}, {Token: "Bearer tok"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca.mu.Lock()
			ca.calls, ca.serial = nil, 0
			ca.mu.Unlock()
			f := &Fetcher{Conn: conn, Token: "tok", ID: id}
			if tt.renew {
				f.RenewTarget, f.RenewTLS = target, serverTLS
			}
			src := &Source{}
			for i := range 3 {
				if err := f.Fetch(ctx, src); err != nil {
					t.Fatalf("Fetch %d: %v", i+1, err)
				}
				if got := src.Status().Serial; got != big.NewInt(int64(i+1)).Text(16) {
					t.Errorf("after Fetch %d the source serves serial %s", i+1, got)
				}
			}
			if diff := cmp.Diff(tt.want, ca.seen()); diff != "" {
				t.Errorf("CA calls (-want +got):\n%s", diff)
			}
			if tt.renew && f.Token != "" {
				t.Error("the Fetcher still holds the join token after its first certificate")
			}
		})
	}
}
