package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memStore is an in-memory Persistence.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memStore) GetBlob(key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key], nil
}

func (s *memStore) PutBlob(key string, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[key] = append([]byte(nil), val...)
	return nil
}

func newTestCA(t *testing.T, td string) (*CA, *memStore) {
	t.Helper()
	st := &memStore{}
	c, err := New(context.Background(), st, td, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, st
}

type csrOpts struct {
	uris   []string
	dns    []string
	ips    []net.IP
	emails []string
}

func makeCSR(t *testing.T, key crypto.Signer, o csrOpts) []byte {
	t.Helper()
	tmpl := &x509.CertificateRequest{DNSNames: o.dns, IPAddresses: o.ips, EmailAddresses: o.emails}
	for _, u := range o.uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatalf("CreateCertificateRequest: %v", err)
	}
	return der
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignCSR(t *testing.T) {
	c, _ := newTestCA(t, "weft.local")
	key := newKey(t)
	good := makeCSR(t, key, csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/orders"}})
	badSig := append([]byte(nil), good...)
	badSig[len(badSig)-1] ^= 0xff

	tests := []struct {
		name    string
		csr     []byte
		wantID  string
		wantErr string
	}{
		{name: "valid", csr: good, wantID: "spiffe://weft.local/ns/default/sa/orders"},
		{name: "valid digits and dashes", csr: makeCSR(t, key, csrOpts{uris: []string{"spiffe://weft.local/ns/shop-2/sa/a1-b"}}), wantID: "spiffe://weft.local/ns/shop-2/sa/a1-b"},
		{name: "wrong trust domain", csr: makeCSR(t, key, csrOpts{uris: []string{"spiffe://evil.local/ns/default/sa/orders"}}), wantErr: "not in trust domain"},
		{name: "path not ns/sa", csr: makeCSR(t, key, csrOpts{uris: []string{"spiffe://weft.local/workload/orders"}}), wantErr: "is not /ns/<namespace>/sa/<service-account>"},
		{name: "path too long", csr: makeCSR(t, key, csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/orders/x"}}), wantErr: "is not /ns/"},
		{name: "bad namespace", csr: makeCSR(t, key, csrOpts{uris: []string{"spiffe://weft.local/ns/Default/sa/orders"}}), wantErr: "namespace \"Default\" is not a DNS-1123 label"},
		{name: "bad service account", csr: makeCSR(t, key, csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/-orders"}}), wantErr: "service account \"-orders\""},
		{name: "trust domain only", csr: makeCSR(t, key, csrOpts{uris: []string{"spiffe://weft.local"}}), wantErr: "is not /ns/"},
		{name: "not spiffe", csr: makeCSR(t, key, csrOpts{uris: []string{"https://weft.local/ns/default/sa/orders"}}), wantErr: "scheme is missing or invalid"},
		{name: "extra DNS SAN", csr: makeCSR(t, key, csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/orders"}, dns: []string{"orders"}}), wantErr: "DNS SANs"},
		{name: "IP SAN", csr: makeCSR(t, key, csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/orders"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}}), wantErr: "IP SANs"},
		{name: "email SAN", csr: makeCSR(t, key, csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/orders"}, emails: []string{"a@b.c"}}), wantErr: "email SANs"},
		{name: "no URI SAN", csr: makeCSR(t, key, csrOpts{}), wantErr: "0 URI SANs"},
		{name: "two URI SANs", csr: makeCSR(t, key, csrOpts{uris: []string{"spiffe://weft.local/ns/a/sa/b", "spiffe://weft.local/ns/a/sa/c"}}), wantErr: "2 URI SANs"},
		{name: "bad signature", csr: badSig, wantErr: "CSR signature"},
		{name: "garbage", csr: []byte("not a csr"), wantErr: "parsing CSR"},
	}
	bundle := x509bundle.FromX509Authorities(c.TrustDomain(), c.Bundle())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain, id, err := c.SignCSR(tt.csr, time.Hour)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("SignCSR error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("SignCSR: %v", err)
			}
			if diff := cmp.Diff(tt.wantID, id.String()); diff != "" {
				t.Errorf("id (-want +got):\n%s", diff)
			}
			gotID, _, err := x509svid.Verify(chain, bundle)
			if err != nil {
				t.Fatalf("x509svid.Verify: %v", err)
			}
			if gotID != id {
				t.Errorf("verified id = %s, want %s", gotID, id)
			}
			leaf := chain[0]
			if want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment; leaf.KeyUsage != want {
				t.Errorf("KeyUsage = %v, want %v", leaf.KeyUsage, want)
			}
			if diff := cmp.Diff([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, leaf.ExtKeyUsage); diff != "" {
				t.Errorf("ExtKeyUsage (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"weft"}, leaf.Subject.Organization); diff != "" {
				t.Errorf("Subject.O (-want +got):\n%s", diff)
			}
			if leaf.IsCA {
				t.Error("leaf is a CA")
			}
			if d := leaf.NotAfter.Sub(leaf.NotBefore); d < time.Hour || d > time.Hour+2*time.Minute {
				t.Errorf("validity = %v, want ~1h1m", d)
			}
			if leaf.SerialNumber.BitLen() < 64 {
				t.Errorf("serial %v looks too short", leaf.SerialNumber)
			}
			if !key.PublicKey.Equal(leaf.PublicKey) {
				t.Error("leaf public key is not the CSR's")
			}
		})
	}
}

func TestSignCSRDefaultTTL(t *testing.T) {
	c, _ := newTestCA(t, "weft.local")
	chain, _, err := c.SignCSR(makeCSR(t, newKey(t), csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/x"}}), 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(chain[0].NotAfter); d < 23*time.Hour || d > 24*time.Hour {
		t.Errorf("NotAfter in %v, want ~24h", d)
	}
}

func TestRootSurvivesRestart(t *testing.T) {
	c1, st := newTestCA(t, "weft.local")
	c2, err := New(context.Background(), st, "weft.local", nil)
	if err != nil {
		t.Fatalf("second New: %v", err)
	}
	if !c1.Bundle()[0].Equal(c2.Bundle()[0]) {
		t.Fatal("root changed across restart")
	}
	// A leaf signed before the restart still verifies against the new bundle.
	chain, _, err := c1.SignCSR(makeCSR(t, newKey(t), csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/x"}}), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := x509svid.Verify(chain, x509bundle.FromX509Authorities(c2.TrustDomain(), c2.Bundle())); err != nil {
		t.Fatalf("verify against restarted CA: %v", err)
	}

	root := c1.Bundle()[0]
	if !root.IsCA || root.URIs[0].String() != "spiffe://weft.local" {
		t.Errorf("root IsCA=%v URIs=%v", root.IsCA, root.URIs)
	}
	if d := root.NotAfter.Sub(root.NotBefore); d < 9*365*24*time.Hour {
		t.Errorf("root validity %v, want ~10y", d)
	}
	if _, ok := root.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("root key %T, want ECDSA", root.PublicKey)
	}
}

func TestNewErrors(t *testing.T) {
	_, st := newTestCA(t, "weft.local")
	if _, err := New(context.Background(), st, "other.local", nil); err == nil || !strings.Contains(err.Error(), "not for trust domain") {
		t.Errorf("other trust domain: err = %v", err)
	}
	if _, err := New(context.Background(), &memStore{}, "Bad Domain!", nil); err == nil {
		t.Error("invalid trust domain accepted")
	}
	corrupt := &memStore{m: map[string][]byte{rootBlobKey: []byte("junk")}}
	if _, err := New(context.Background(), corrupt, "weft.local", nil); err == nil {
		t.Error("corrupt root accepted")
	}
	if _, err := New(context.Background(), failStore{}, "weft.local", nil); err == nil || !errors.Is(err, errDisk) {
		t.Errorf("store error: err = %v, want wrapping %v", err, errDisk)
	}
}

var errDisk = errors.New("disk on fire")

type failStore struct{}

func (failStore) GetBlob(string) ([]byte, error) { return nil, errDisk }
func (failStore) PutBlob(string, []byte) error   { return errDisk }

func TestServerCertificate(t *testing.T) {
	c, _ := newTestCA(t, "weft.local")
	cert, err := c.ServerCertificate([]string{"localhost", "weft-control"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := x509svid.ParseAndVerify(cert.Certificate, x509bundle.FromX509Authorities(c.TrustDomain(), c.Bundle()))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if diff := cmp.Diff("spiffe://weft.local/ns/weft-system/sa/weft-control", id.String()); diff != "" {
		t.Errorf("id (-want +got):\n%s", diff)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c.Bundle()[0])
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: pool}); err != nil {
		t.Errorf("verify DNS name: %v", err)
	}
	if err := cert.Leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("verify IP: %v", err)
	}
}

func TestNewToken(t *testing.T) {
	a, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewToken()
	if len(a) != 43 || a == b {
		t.Errorf("tokens %q %q: want 43 chars, distinct", a, b)
	}
}

func FuzzCheckWorkloadPath(f *testing.F) {
	for _, s := range []string{"/ns/default/sa/x", "/ns//sa/x", "/", "/ns/a-/sa/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if checkWorkloadPath(p) == nil && strings.Count(p, "/") != 4 {
			t.Errorf("accepted %q", p)
		}
	})
}
