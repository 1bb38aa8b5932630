package ca

import (
	"context"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

func TestService(t *testing.T) {
	c, _ := newTestCA(t, "weft.local")
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	weftv1.RegisterCertificateAuthorityServer(srv, NewService(c, "s3cret", 2*time.Hour))
	go srv.Serve(lis)
	defer srv.Stop()

	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := weftv1.NewCertificateAuthorityClient(conn)
	key := newKey(t)
	good := makeCSR(t, key, csrOpts{uris: []string{"spiffe://weft.local/ns/shop/sa/orders"}})

	tests := []struct {
		name     string
		auth     string // "" sends no metadata
		csr      []byte
		wantCode codes.Code
		wantMsg  string
	}{
		{name: "ok", auth: "Bearer s3cret", csr: good, wantCode: codes.OK},
		{name: "lowercase scheme", auth: "bearer s3cret", csr: good, wantCode: codes.OK},
		{name: "missing token", csr: good, wantCode: codes.Unauthenticated, wantMsg: "missing authorization"},
		{name: "wrong token", auth: "Bearer nope", csr: good, wantCode: codes.Unauthenticated, wantMsg: "invalid join token"},
		{name: "wrong scheme", auth: "Basic s3cret", csr: good, wantCode: codes.Unauthenticated},
		{name: "empty csr", auth: "Bearer s3cret", wantCode: codes.InvalidArgument, wantMsg: "csr_der is empty"},
		{name: "dns san", auth: "Bearer s3cret", csr: makeCSR(t, key, csrOpts{uris: []string{"spiffe://weft.local/ns/shop/sa/orders"}, dns: []string{"x"}}), wantCode: codes.InvalidArgument, wantMsg: "DNS SANs"},
		{name: "wrong trust domain", auth: "Bearer s3cret", csr: makeCSR(t, key, csrOpts{uris: []string{"spiffe://x.local/ns/shop/sa/orders"}}), wantCode: codes.InvalidArgument, wantMsg: "not in trust domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if tt.auth != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tt.auth)
			}
			resp, err := client.Sign(ctx, &weftv1.SignRequest{CsrDer: tt.csr})
			st := status.Convert(err)
			if st.Code() != tt.wantCode || !strings.Contains(st.Message(), tt.wantMsg) {
				t.Fatalf("Sign = %v, want code %v message containing %q", err, tt.wantCode, tt.wantMsg)
			}
			if tt.wantCode != codes.OK {
				return
			}
			if resp.GetSpiffeId() != "spiffe://weft.local/ns/shop/sa/orders" || resp.GetTrustDomain() != "weft.local" {
				t.Errorf("resp id=%q td=%q", resp.GetSpiffeId(), resp.GetTrustDomain())
			}
			var roots []*x509.Certificate
			for _, der := range resp.GetTrustBundleDer() {
				r, err := x509.ParseCertificate(der)
				if err != nil {
					t.Fatal(err)
				}
				roots = append(roots, r)
			}
			id, _, err := x509svid.ParseAndVerify(resp.GetCertChainDer(), x509bundle.FromX509Authorities(c.TrustDomain(), roots))
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if id.String() != resp.GetSpiffeId() {
				t.Errorf("verified id %s, response says %s", id, resp.GetSpiffeId())
			}
			leaf, _ := x509.ParseCertificate(resp.GetCertChainDer()[0])
			if d := leaf.NotAfter.Sub(leaf.NotBefore); d < 2*time.Hour || d > 2*time.Hour+2*time.Minute {
				t.Errorf("validity %v, want service ttl 2h", d)
			}
		})
	}
}
