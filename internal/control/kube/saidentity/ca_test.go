package saidentity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"weft.dev/weft/internal/control/ca"
	"weft.dev/weft/internal/control/store"
	"weft.dev/weft/internal/control/tokens"
	"weft.dev/weft/internal/testkube"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// caServer serves svc over TLS as the control plane does and returns its
// address.
func caServer(t *testing.T, authority *ca.CA, svc weftv1.CertificateAuthorityServer) string {
	t.Helper()
	serverCert, err := authority.ServerCertificate([]string{"weft-control"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(authority.Bundle()[0])
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
	return lis.Addr().String()
}

type caClient struct {
	t         *testing.T
	authority *ca.CA
	addr      string
}

// sign sends a CSR for id with bearer (if set) and client certificate
// cert (if set); it returns the issued chain and the key.
func (c caClient) sign(bearer string, cert *tls.Certificate, id string) ([]*x509.Certificate, *ecdsa.PrivateKey, error) {
	t := c.t
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(id)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{u}}, key)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c.authority.Bundle()[0])
	conf := &tls.Config{RootCAs: roots, ServerName: "weft-control", MinVersion: tls.VersionTLS12}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if bearer != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+bearer)
	}
	resp, err := weftv1.NewCertificateAuthorityClient(conn).Sign(ctx, &weftv1.SignRequest{CsrDer: csr})
	if err != nil {
		return nil, nil, err
	}
	var chain []*x509.Certificate
	for _, der := range resp.GetCertChainDer() {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, cert)
	}
	return chain, key, nil
}

func tlsCert(chain []*x509.Certificate, key *ecdsa.PrivateKey) *tls.Certificate {
	c := &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
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

// TestCAServiceAccountIdentity runs the CA with the Kubernetes identity
// against the real API server: a token signs exactly its own
// ns/<ns>/sa/<sa>, join tokens are refused, renewals keep working while the
// service account exists.
func TestCAServiceAccountIdentity(t *testing.T) {
	s := testkube.StartAPIServer(t)
	cs := s.Clientset()
	kctx := context.Background()
	s.Namespace(t, "ns1")
	for _, sa := range []string{"a", "b", "c"} {
		s.ServiceAccount(t, "ns1", sa)
	}
	sec, err := cs.CoreV1().Secrets("ns1").Create(kctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bound"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tokA := mint(t, cs, "ns1", "a", "weft", nil)
	tokC := mint(t, cs, "ns1", "c", "weft", nil)
	tokOther := mint(t, cs, "ns1", "a", "kubernetes", nil)
	tokBound := mint(t, cs, "ns1", "a", "weft", &authenticationv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: sec.Name, UID: sec.UID})
	if err := cs.CoreV1().Secrets("ns1").Delete(kctx, sec.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	st, err := store.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	authority, err := ca.New(kctx, st, "weft.local", nil)
	if err != nil {
		t.Fatal(err)
	}
	joinTokens, err := tokens.Open(st, tokens.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, joinTok, err := joinTokens.Create(tokens.Spec{Namespace: "ns1"})
	if err != nil {
		t.Fatal(err)
	}
	auth := mustNew(t, cs, Options{})
	reg := prometheus.NewRegistry()
	kubeSvc, err := ca.NewService(authority, ca.ServiceOptions{ServiceAccounts: auth.CA(), TTL: time.Hour, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	kube := caClient{t, authority, caServer(t, authority, kubeSvc)}
	// The same CA with join tokens (the default), to issue a join-token
	// certificate and to renew across modes.
	joinSvc, err := ca.NewService(authority, ca.ServiceOptions{Tokens: joinTokens, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	join := caClient{t, authority, caServer(t, authority, joinSvc)}

	const idA, idB = "spiffe://weft.local/ns/ns1/sa/a", "spiffe://weft.local/ns/ns1/sa/b"
	issuedBefore := counter(t, reg, "weft_ca_certificates_issued_total", "credential", ca.CredentialServiceAccount)
	chainA, keyA, err := kube.sign(tokA, nil, idA)
	if err != nil {
		t.Fatalf("sign %s with a's token: %v", idA, err)
	}
	certA := tlsCert(chainA, keyA)
	if u := chainA[0].URIs; len(u) != 1 || u[0].String() != idA {
		t.Errorf("issued URIs %v, want [%s]", u, idA)
	}
	if ou := chainA[0].Subject.OrganizationalUnit; !slices.Equal(ou, []string{ca.ServiceAccountCertOU}) || !ca.IssuedForServiceAccount(chainA[0]) {
		t.Errorf("issued OU %q, want [%s]", ou, ca.ServiceAccountCertOU)
	}
	if _, err := tokens.IDFromCert(chainA[0]); err == nil {
		t.Error("service-account certificate names a join token")
	}
	if got := counter(t, reg, "weft_ca_certificates_issued_total", "credential", ca.CredentialServiceAccount); got != issuedBefore+1 {
		t.Errorf("issued{credential=serviceaccount} = %v, want %v", got, issuedBefore+1)
	}
	chainC, keyC, err := kube.sign(tokC, nil, "spiffe://weft.local/ns/ns1/sa/c")
	if err != nil {
		t.Fatalf("sign sa/c: %v", err)
	}
	chainJ, keyJ, err := join.sign(joinTok, nil, idA)
	if err != nil {
		t.Fatalf("sign with a join token on the default CA: %v", err)
	}

	tests := []struct {
		name     string
		client   caClient
		bearer   string
		cert     *tls.Certificate
		id       string
		setup    func(t *testing.T)
		wantCode codes.Code
		reason   string
		msg      string
	}{
		{name: "renewal", client: kube, cert: certA, id: idA, wantCode: codes.OK},
		{name: "renewal with a token too", client: kube, cert: certA, bearer: tokOther, id: idA, wantCode: codes.OK},
		{name: "a's token asks for sa/b", client: kube, bearer: tokA, id: idB, wantCode: codes.PermissionDenied, reason: ca.ReasonServiceAccount, msg: `service-account token of ns1/a allows service account "a" only`},
		{name: "a's token asks for another namespace", client: kube, bearer: tokA, id: "spiffe://weft.local/ns/ns2/sa/a", wantCode: codes.PermissionDenied, reason: ca.ReasonNamespace},
		{name: "a's token asks for the control identity", client: kube, bearer: tokA, id: "spiffe://weft.local/ns/weft-system/sa/weft-control", wantCode: codes.PermissionDenied, reason: ca.ReasonControlIdentity},
		{name: "renewal asks for sa/b", client: kube, cert: certA, id: idB, wantCode: codes.PermissionDenied, reason: ca.ReasonRenewalIdentity},
		{name: "wrong audience", client: kube, bearer: tokOther, id: idA, wantCode: codes.Unauthenticated, reason: ca.ReasonServiceAccountToken},
		{name: "bound object deleted (expired)", client: kube, bearer: tokBound, id: idA, wantCode: codes.Unauthenticated, reason: ca.ReasonServiceAccountToken},
		{name: "tampered", client: kube, bearer: tokA[:len(tokA)-6] + "AAAAAA", id: idA, wantCode: codes.Unauthenticated, reason: ca.ReasonServiceAccountToken},
		{name: "join token refused", client: kube, bearer: joinTok, id: idA, wantCode: codes.Unauthenticated, reason: ca.ReasonServiceAccountToken, msg: "--identity kubernetes"},
		{name: "join-token certificate cannot renew", client: kube, cert: tlsCert(chainJ, keyJ), id: idA, wantCode: codes.Unauthenticated, reason: ca.ReasonClientCert},
		{name: "service-account certificate on a join-token CA", client: join, cert: certA, id: idA, wantCode: codes.Unauthenticated, msg: "--identity kubernetes"},
		{name: "no credential", client: kube, id: idA, wantCode: codes.Unauthenticated, reason: ca.ReasonNoCredential},
		{name: "renewal after the service account is deleted", client: kube, cert: tlsCert(chainC, keyC), id: "spiffe://weft.local/ns/ns1/sa/c",
			setup: func(t *testing.T) {
				if err := cs.CoreV1().ServiceAccounts("ns1").Delete(kctx, "c", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}, wantCode: codes.Unauthenticated, reason: ca.ReasonServiceAccountGone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			var before float64
			if tc.reason != "" {
				before = counter(t, reg, "weft_ca_refusals_total", "reason", tc.reason)
			}
			chain, _, err := tc.client.sign(tc.bearer, tc.cert, tc.id)
			st := status.Convert(err)
			if st.Code() != tc.wantCode || !strings.Contains(st.Message(), tc.msg) {
				t.Fatalf("Sign = %v, want code %v and a message containing %q", err, tc.wantCode, tc.msg)
			}
			if tc.wantCode == codes.OK {
				if chain[0].URIs[0].String() != tc.id || !ca.IssuedForServiceAccount(chain[0]) {
					t.Errorf("renewed certificate %v OU %q", chain[0].URIs, chain[0].Subject.OrganizationalUnit)
				}
				return
			}
			if tc.reason != "" {
				if got := counter(t, reg, "weft_ca_refusals_total", "reason", tc.reason); got != before+1 {
					t.Errorf("refusals{reason=%q} = %v, want %v", tc.reason, got, before+1)
				}
			}
		})
	}

	t.Run("API server unreachable", func(t *testing.T) {
		cfg := s.RESTConfig()
		cfg.Host = "https://127.0.0.1:1"
		cfg.Timeout = 2 * time.Second
		bad, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := ca.NewService(authority, ca.ServiceOptions{ServiceAccounts: mustNew(t, bad, Options{}).CA()})
		if err != nil {
			t.Fatal(err)
		}
		down := caClient{t, authority, caServer(t, authority, svc)}
		fresh := mint(t, cs, "ns1", "a", "weft", nil)
		if _, _, err := down.sign(fresh, nil, idA); status.Code(err) != codes.Unavailable {
			t.Errorf("first certificate with the API server down: %v, want Unavailable", err)
		}
		if _, _, err := down.sign("", certA, idA); status.Code(err) != codes.Unavailable {
			t.Errorf("renewal with the API server down: %v, want Unavailable", err)
		}
	})
}
