package ca

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"weft.dev/weft/internal/control/tokens"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// svcEnv is the CA service behind TLS as the control plane serves it: a
// client certificate is verified against the root if one is given.
type svcEnv struct {
	ca     *CA
	tokens *tokens.Store
	reg    *prometheus.Registry
	addr   string
	roots  *x509.CertPool
	server *tls.Certificate
	clock  *testClock
}

type testClock struct {
	mu sync.Mutex
	d  time.Duration
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.d) }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.d += d
	c.mu.Unlock()
}

func newSvcEnv(t *testing.T, ttl time.Duration) *svcEnv {
	t.Helper()
	c, st := newTestCA(t, "weft.local")
	clk := &testClock{}
	ts, err := tokens.Open(st, tokens.Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	svc, err := NewService(c, ServiceOptions{Tokens: ts, TTL: ttl, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := c.ServerCertificate([]string{"weft-control"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c.Bundle()[0])
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{*serverCert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: roots, MinVersion: tls.VersionTLS12,
	})))
	weftv1.RegisterCertificateAuthorityServer(srv, svc)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return &svcEnv{ca: c, tokens: ts, reg: reg, addr: lis.Addr().String(), roots: roots, server: serverCert, clock: clk}
}

// client connects with cert (nil: none) as the TLS client certificate.
func (e *svcEnv) client(t *testing.T, cert *tls.Certificate) weftv1.CertificateAuthorityClient {
	t.Helper()
	conf := &tls.Config{RootCAs: e.roots, ServerName: "weft-control", MinVersion: tls.VersionTLS12}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return weftv1.NewCertificateAuthorityClient(conn)
}

func (e *svcEnv) token(t *testing.T, spec tokens.Spec) (tokens.Token, string) {
	t.Helper()
	tok, secret, err := e.tokens.Create(spec)
	if err != nil {
		t.Fatal(err)
	}
	return tok, secret
}

// counter reads a labelled counter from the registry.
func (e *svcEnv) counter(t *testing.T, name, label, value string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

func sign(ctx context.Context, c weftv1.CertificateAuthorityClient, auth string, csr []byte) (*weftv1.SignResponse, error) {
	if auth != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", auth)
	}
	return c.Sign(ctx, &weftv1.SignRequest{CsrDer: csr})
}

func TestServiceToken(t *testing.T) {
	e := newSvcEnv(t, 2*time.Hour)
	def, defTok := e.token(t, tokens.Spec{Namespace: "default"})
	_, ordersTok := e.token(t, tokens.Spec{Namespace: "default", ServiceAccount: "orders"})
	revoked, revokedTok := e.token(t, tokens.Spec{Namespace: "default"})
	if _, err := e.tokens.Revoke(revoked.ID); err != nil {
		t.Fatal(err)
	}
	_, expiredTok := e.token(t, tokens.Spec{Namespace: "default", TTL: "1h"})
	e.clock.add(2 * time.Hour)
	client := e.client(t, nil)
	key := newKey(t)
	csr := func(uris ...string) []byte { return makeCSR(t, key, csrOpts{uris: uris}) }
	good := csr("spiffe://weft.local/ns/default/sa/orders")
	wrongSecret := def.ID + "." + strings.Repeat("A", 43)

	tests := []struct {
		name       string
		auth       string // "" sends no metadata
		csr        []byte
		wantCode   codes.Code
		wantMsg    string
		wantReason string
	}{
		{name: "ok", auth: "Bearer " + defTok, csr: good, wantCode: codes.OK},
		{name: "lowercase scheme", auth: "bearer " + defTok, csr: good, wantCode: codes.OK},
		{name: "scoped service account", auth: "Bearer " + ordersTok, csr: good, wantCode: codes.OK},
		{name: "missing token", csr: good, wantCode: codes.Unauthenticated, wantMsg: "missing credential", wantReason: ReasonNoCredential},
		{name: "wrong scheme", auth: "Basic " + defTok, csr: good, wantCode: codes.Unauthenticated, wantReason: ReasonNoCredential},
		{name: "malformed token", auth: "Bearer nope", csr: good, wantCode: codes.Unauthenticated, wantMsg: "malformed join token", wantReason: ReasonInvalidToken},
		{name: "old-format token", auth: "Bearer " + strings.Repeat("x", 43), csr: good, wantCode: codes.Unauthenticated, wantMsg: "old unscoped format", wantReason: ReasonInvalidToken},
		{name: "wrong secret", auth: "Bearer " + wrongSecret, csr: good, wantCode: codes.Unauthenticated, wantMsg: "unknown join token", wantReason: ReasonInvalidToken},
		{name: "revoked token", auth: "Bearer " + revokedTok, csr: good, wantCode: codes.Unauthenticated, wantMsg: "revoked", wantReason: ReasonTokenRevoked},
		{name: "expired token", auth: "Bearer " + expiredTok, csr: good, wantCode: codes.Unauthenticated, wantMsg: "expired", wantReason: ReasonTokenExpired},
		{name: "empty csr", auth: "Bearer " + defTok, wantCode: codes.InvalidArgument, wantMsg: "csr_der is empty", wantReason: ReasonCSRMalformed},
		{name: "wrong namespace", auth: "Bearer " + defTok, csr: csr("spiffe://weft.local/ns/shop/sa/orders"), wantCode: codes.PermissionDenied, wantMsg: `allows namespace "default" only`, wantReason: ReasonNamespace},
		{name: "service account not allowed", auth: "Bearer " + ordersTok, csr: csr("spiffe://weft.local/ns/default/sa/payments"), wantCode: codes.PermissionDenied, wantMsg: `allows service account "orders" only`, wantReason: ReasonServiceAccount},
		{name: "control identity", auth: "Bearer " + defTok, csr: csr("spiffe://weft.local/ns/weft-system/sa/weft-control"), wantCode: codes.PermissionDenied, wantMsg: "control plane's namespace", wantReason: ReasonControlIdentity},
		{name: "several URI SANs", auth: "Bearer " + defTok, csr: csr("spiffe://weft.local/ns/default/sa/a", "spiffe://weft.local/ns/default/sa/b"), wantCode: codes.InvalidArgument, wantMsg: "2 URI SANs", wantReason: ReasonSAN},
		{name: "DNS SAN", auth: "Bearer " + defTok, csr: makeCSR(t, key, csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/orders"}, dns: []string{"x"}}), wantCode: codes.InvalidArgument, wantMsg: "DNS SANs", wantReason: ReasonSAN},
		{name: "IP SAN", auth: "Bearer " + defTok, csr: makeCSR(t, key, csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/orders"}, ips: []net.IP{net.IPv4(10, 0, 0, 1)}}), wantCode: codes.InvalidArgument, wantMsg: "IP SANs", wantReason: ReasonSAN},
		{name: "foreign trust domain", auth: "Bearer " + defTok, csr: csr("spiffe://x.local/ns/default/sa/orders"), wantCode: codes.InvalidArgument, wantMsg: "not in trust domain", wantReason: ReasonTrustDomain},
		{name: "P-224 key", auth: "Bearer " + defTok, csr: makeCSR(t, ecKey(t, elliptic.P224()), csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/orders"}}), wantCode: codes.InvalidArgument, wantMsg: "P-224", wantReason: ReasonWeakKey},
		{name: "RSA-1024 key", auth: "Bearer " + defTok, csr: makeCSR(t, rsaKey(t, 1024), csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/orders"}}), wantCode: codes.InvalidArgument, wantMsg: "RSA-1024", wantReason: ReasonWeakKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var before float64
			if tt.wantReason != "" {
				before = e.counter(t, "weft_ca_refusals_total", "reason", tt.wantReason)
			}
			resp, err := sign(ctx, client, tt.auth, tt.csr)
			st := status.Convert(err)
			if st.Code() != tt.wantCode || !strings.Contains(st.Message(), tt.wantMsg) {
				t.Fatalf("Sign = %v, want code %v message containing %q", err, tt.wantCode, tt.wantMsg)
			}
			if tt.wantCode != codes.OK {
				if got := e.counter(t, "weft_ca_refusals_total", "reason", tt.wantReason); got != before+1 {
					t.Errorf("weft_ca_refusals_total{reason=%q} = %v, want %v", tt.wantReason, got, before+1)
				}
				return
			}
			chain := checkResponse(t, e, resp, "spiffe://weft.local/ns/default/sa/orders", key)
			if d := chain[0].NotAfter.Sub(chain[0].NotBefore); d < 2*time.Hour || d > 2*time.Hour+2*time.Minute {
				t.Errorf("validity %v, want service ttl 2h", d)
			}
		})
	}
}

// checkResponse verifies a SignResponse as a proxy would and returns the
// chain.
func checkResponse(t *testing.T, e *svcEnv, resp *weftv1.SignResponse, wantID string, key crypto.Signer) []*x509.Certificate {
	t.Helper()
	if resp.GetSpiffeId() != wantID || resp.GetTrustDomain() != "weft.local" {
		t.Errorf("resp id=%q td=%q, want %s", resp.GetSpiffeId(), resp.GetTrustDomain(), wantID)
	}
	var roots []*x509.Certificate
	for _, der := range resp.GetTrustBundleDer() {
		r, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, r)
	}
	id, chains, err := x509svid.ParseAndVerify(resp.GetCertChainDer(), x509bundle.FromX509Authorities(e.ca.TrustDomain(), roots))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if id.String() != wantID {
		t.Errorf("verified id %s, want %s", id, wantID)
	}
	checkSVIDShape(t, chains[0][:1], key)
	return chains[0][:1]
}

// tlsCert turns an issued chain and its key into a TLS client certificate.
func tlsCert(resp *weftv1.SignResponse, key crypto.Signer) *tls.Certificate {
	return &tls.Certificate{Certificate: resp.GetCertChainDer(), PrivateKey: key}
}

func TestServiceRenewal(t *testing.T) {
	e := newSvcEnv(t, time.Hour)
	tok, secret := e.token(t, tokens.Spec{Namespace: "default"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ordersID := "spiffe://weft.local/ns/default/sa/orders"
	key1 := newKey(t)
	first, err := sign(ctx, e.client(t, nil), "Bearer "+secret, makeCSR(t, key1, csrOpts{uris: []string{ordersID}}))
	if err != nil {
		t.Fatal(err)
	}
	orders := e.client(t, tlsCert(first, key1))

	key2 := newKey(t)
	tests := []struct {
		name       string
		client     weftv1.CertificateAuthorityClient
		csrID      string
		wantCode   codes.Code
		wantMsg    string
		wantReason string
	}{
		{name: "same identity, no token", client: orders, csrID: ordersID, wantCode: codes.OK},
		{name: "another identity with orders' certificate", client: orders, csrID: "spiffe://weft.local/ns/default/sa/payments", wantCode: codes.PermissionDenied, wantMsg: "client certificate is " + ordersID, wantReason: ReasonRenewalIdentity},
		{name: "another namespace with orders' certificate", client: orders, csrID: "spiffe://weft.local/ns/shop/sa/orders", wantCode: codes.PermissionDenied, wantReason: ReasonRenewalIdentity},
		{name: "control identity with orders' certificate", client: orders, csrID: "spiffe://weft.local/ns/weft-system/sa/weft-control", wantCode: codes.PermissionDenied, wantReason: ReasonControlIdentity},
		{name: "the control plane's certificate", client: e.client(t, e.server), csrID: "spiffe://weft.local/ns/weft-system/sa/weft-control", wantCode: codes.Unauthenticated, wantMsg: "not issued for a join token", wantReason: ReasonClientCert},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before float64
			if tt.wantReason != "" {
				before = e.counter(t, "weft_ca_refusals_total", "reason", tt.wantReason)
			}
			renewedBefore := e.counter(t, "weft_ca_certificates_issued_total", "credential", "certificate")
			resp, err := sign(ctx, tt.client, "", makeCSR(t, key2, csrOpts{uris: []string{tt.csrID}}))
			st := status.Convert(err)
			if st.Code() != tt.wantCode || !strings.Contains(st.Message(), tt.wantMsg) {
				t.Fatalf("Sign = %v, want code %v message containing %q", err, tt.wantCode, tt.wantMsg)
			}
			if tt.wantCode != codes.OK {
				if got := e.counter(t, "weft_ca_refusals_total", "reason", tt.wantReason); got != before+1 {
					t.Errorf("weft_ca_refusals_total{reason=%q} = %v, want %v", tt.wantReason, got, before+1)
				}
				return
			}
			chain := checkResponse(t, e, resp, tt.csrID, key2)
			if got, err := tokens.IDFromCert(chain[0]); err != nil || got != tok.ID {
				t.Errorf("renewed certificate names token %q (%v), want the original %q", got, err, tok.ID)
			}
			if got := e.counter(t, "weft_ca_certificates_issued_total", "credential", "certificate"); got != renewedBefore+1 {
				t.Errorf("renewals counted %v, want %v", got, renewedBefore+1)
			}
		})
	}

	// Revoking the token stops renewals with certificates issued for it.
	if _, err := e.tokens.Revoke(tok.ID); err != nil {
		t.Fatal(err)
	}
	_, err = sign(ctx, orders, "", makeCSR(t, key2, csrOpts{uris: []string{ordersID}}))
	if st := status.Convert(err); st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), "revoked") {
		t.Errorf("renewal after revocation = %v, want Unauthenticated, revoked", err)
	}
	// So does the token's expiry.
	tok2, secret2 := e.token(t, tokens.Spec{Namespace: "default", TTL: "1h"})
	second, err := sign(ctx, e.client(t, nil), "Bearer "+secret2, makeCSR(t, key1, csrOpts{uris: []string{ordersID}}))
	if err != nil {
		t.Fatal(err)
	}
	if leaf, _ := x509.ParseCertificate(second.GetCertChainDer()[0]); leaf.NotAfter.After(time.Now().Add(time.Hour)) {
		t.Errorf("certificate for a 1h token expires at %v, after the token", leaf.NotAfter)
	}
	e.clock.add(2 * time.Hour)
	_, err = sign(ctx, e.client(t, tlsCert(second, key1)), "", makeCSR(t, key2, csrOpts{uris: []string{ordersID}}))
	if st := status.Convert(err); st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), "expired") {
		t.Errorf("renewal after token %s expired = %v, want Unauthenticated, expired", tok2.ID, err)
	}
}
