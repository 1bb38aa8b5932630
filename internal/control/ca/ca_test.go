package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
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

func (s *memStore) BlobsWithPrefix(prefix string) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range s.m {
		if strings.HasPrefix(k, prefix) {
			out[k] = append([]byte(nil), v...)
		}
	}
	return out, nil
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
	der, err := makeCSRErr(key, o)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func makeCSRErr(key crypto.Signer, o csrOpts) ([]byte, error) {
	tmpl := &x509.CertificateRequest{DNSNames: o.dns, IPAddresses: o.ips, EmailAddresses: o.emails}
	for _, u := range o.uris {
		pu, err := url.Parse(u)
		if err != nil {
			return nil, err
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("CreateCertificateRequest: %w", err)
	}
	return der, nil
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testGrant allows any service account of namespace default.
var testGrant = Grant{TokenID: "0123456789abcdef", Namespace: "default"}

func rsaKey(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
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
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ordersID := spiffeid.RequireFromString("spiffe://weft.local/ns/default/sa/orders")
	expiry := time.Now().Add(10 * time.Minute)

	tests := []struct {
		name       string
		key        crypto.Signer // the CSR's key (default: key)
		csr        csrOpts       // used unless raw is set
		raw        []byte
		grant      *Grant // default: testGrant
		wantID     string
		wantErr    string
		wantReason string
		wantTTL    time.Duration // default 1h
	}{
		{name: "valid", raw: good, wantID: "spiffe://weft.local/ns/default/sa/orders"},
		{name: "valid digits and dashes", csr: csrOpts{uris: []string{"spiffe://weft.local/ns/shop-2/sa/a1-b"}}, grant: &Grant{TokenID: "0123456789abcdef", Namespace: "shop-2"}, wantID: "spiffe://weft.local/ns/shop-2/sa/a1-b"},
		{name: "P-384", key: ecKey(t, elliptic.P384()), csr: csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/orders"}}, wantID: "spiffe://weft.local/ns/default/sa/orders"},
		{name: "RSA-2048", key: rsaKey(t, 2048), csr: csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/orders"}}, wantID: "spiffe://weft.local/ns/default/sa/orders"},
		{name: "Ed25519", key: edKey, csr: csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/orders"}}, wantID: "spiffe://weft.local/ns/default/sa/orders"},
		{name: "service account allowed", raw: good, grant: &Grant{TokenID: "0123456789abcdef", Namespace: "default", ServiceAccount: "orders"}, wantID: "spiffe://weft.local/ns/default/sa/orders"},
		{name: "renewal of the same ID", raw: good, grant: &Grant{TokenID: "0123456789abcdef", Namespace: "default", ID: ordersID}, wantID: "spiffe://weft.local/ns/default/sa/orders"},
		{name: "token expiry bounds the certificate", raw: good, grant: &Grant{TokenID: "0123456789abcdef", Namespace: "default", NotAfter: expiry}, wantID: "spiffe://weft.local/ns/default/sa/orders", wantTTL: 10 * time.Minute},

		{name: "wrong namespace", csr: csrOpts{uris: []string{"spiffe://weft.local/ns/shop/sa/orders"}}, wantErr: `allows namespace "default" only`, wantReason: ReasonNamespace},
		{name: "service account not allowed", csr: csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/payments"}}, grant: &Grant{TokenID: "0123456789abcdef", Namespace: "default", ServiceAccount: "orders"}, wantErr: `allows service account "orders" only`, wantReason: ReasonServiceAccount},
		{name: "control identity", csr: csrOpts{uris: []string{"spiffe://weft.local/ns/weft-system/sa/weft-control"}}, grant: &Grant{TokenID: "0123456789abcdef", Namespace: "weft-system"}, wantErr: "control plane's namespace", wantReason: ReasonControlIdentity},
		{name: "renewal of another ID", csr: csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/payments"}}, grant: &Grant{TokenID: "0123456789abcdef", Namespace: "default", ID: ordersID}, wantErr: "client certificate is spiffe://weft.local/ns/default/sa/orders", wantReason: ReasonRenewalIdentity},
		{name: "P-224 key", key: ecKey(t, elliptic.P224()), csr: csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/orders"}}, wantErr: "ECDSA P-224", wantReason: ReasonWeakKey},
		{name: "RSA-1024 key", key: rsaKey(t, 1024), csr: csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/orders"}}, wantErr: "RSA-1024", wantReason: ReasonWeakKey},
		{name: "wrong trust domain", csr: csrOpts{uris: []string{"spiffe://evil.local/ns/default/sa/orders"}}, wantErr: "not in trust domain", wantReason: ReasonTrustDomain},
		{name: "path not ns/sa", csr: csrOpts{uris: []string{"spiffe://weft.local/workload/orders"}}, wantErr: "is not /ns/<namespace>/sa/<service-account>", wantReason: ReasonSPIFFEID},
		{name: "path too long", csr: csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/orders/x"}}, wantErr: "is not /ns/", wantReason: ReasonSPIFFEID},
		{name: "bad namespace", csr: csrOpts{uris: []string{"spiffe://weft.local/ns/Default/sa/orders"}}, wantErr: "namespace \"Default\" is not a DNS-1123 label", wantReason: ReasonSPIFFEID},
		{name: "bad service account", csr: csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/-orders"}}, wantErr: "service account \"-orders\"", wantReason: ReasonSPIFFEID},
		{name: "trust domain only", csr: csrOpts{uris: []string{"spiffe://weft.local"}}, wantErr: "is not /ns/", wantReason: ReasonSPIFFEID},
		{name: "not spiffe", csr: csrOpts{uris: []string{"https://weft.local/ns/default/sa/orders"}}, wantErr: "scheme is missing or invalid", wantReason: ReasonSPIFFEID},
		{name: "extra DNS SAN", csr: csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/orders"}, dns: []string{"orders"}}, wantErr: "DNS SANs", wantReason: ReasonSAN},
		{name: "IP SAN", csr: csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/orders"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}}, wantErr: "IP SANs", wantReason: ReasonSAN},
		{name: "email SAN", csr: csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/orders"}, emails: []string{"a@b.c"}}, wantErr: "email SANs", wantReason: ReasonSAN},
		{name: "no URI SAN", csr: csrOpts{}, wantErr: "0 URI SANs", wantReason: ReasonSAN},
		{name: "two URI SANs", csr: csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/b", "spiffe://weft.local/ns/default/sa/c"}}, wantErr: "2 URI SANs", wantReason: ReasonSAN},
		{name: "bad signature", raw: badSig, wantErr: "CSR signature", wantReason: ReasonCSRMalformed},
		{name: "garbage", raw: []byte("not a csr"), wantErr: "parsing CSR", wantReason: ReasonCSRMalformed},
	}
	bundle := x509bundle.FromX509Authorities(c.TrustDomain(), c.Bundle())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := tt.key
			if k == nil {
				k = key
			}
			der := tt.raw
			if der == nil {
				der = makeCSR(t, k, tt.csr)
			}
			g := testGrant
			if tt.grant != nil {
				g = *tt.grant
			}
			chain, id, err := c.SignCSR(der, time.Hour, g)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("SignCSR error = %v, want containing %q", err, tt.wantErr)
				}
				if got := reasonOf(err); got != tt.wantReason {
					t.Errorf("reason = %q, want %q", got, tt.wantReason)
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
			checkSVIDShape(t, chain, k)
			leaf := chain[0]
			if diff := cmp.Diff([]string{"weft-token:" + g.TokenID}, leaf.Subject.OrganizationalUnit); diff != "" {
				t.Errorf("Subject.OU (-want +got):\n%s", diff)
			}
			want := tt.wantTTL
			if want == 0 {
				want = time.Hour
			}
			if d := time.Until(leaf.NotAfter); d < want-time.Minute || d > want {
				t.Errorf("expires in %v, want ~%v", d, want)
			}
			if leaf.SerialNumber.BitLen() < 64 {
				t.Errorf("serial %v looks too short", leaf.SerialNumber)
			}
			if !k.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
				t.Error("leaf public key is not the CSR's")
			}
		})
	}
}

// checkSVIDShape asserts the X.509-SVID rules for a leaf (go-spiffe's
// x509svid parser enforces them) plus weft's own: digitalSignature only,
// serverAuth and clientAuth.
func checkSVIDShape(t *testing.T, chain []*x509.Certificate, key crypto.Signer) {
	t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var certDER []byte
	for _, c := range chain {
		certDER = append(certDER, c.Raw...)
	}
	if _, err := x509svid.ParseRaw(certDER, keyDER); err != nil {
		t.Errorf("x509svid.ParseRaw: %v", err)
	}
	leaf := chain[0]
	if len(leaf.URIs) != 1 || len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
		t.Errorf("SANs: URIs %v DNS %v IP %v email %v, want exactly one URI", leaf.URIs, leaf.DNSNames, leaf.IPAddresses, leaf.EmailAddresses)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %v, want digitalSignature only", leaf.KeyUsage)
	}
	if diff := cmp.Diff([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, leaf.ExtKeyUsage); diff != "" {
		t.Errorf("ExtKeyUsage (-want +got):\n%s", diff)
	}
	if !leaf.BasicConstraintsValid || leaf.IsCA {
		t.Errorf("BasicConstraints valid=%v CA=%v, want present with CA=false", leaf.BasicConstraintsValid, leaf.IsCA)
	}
	if diff := cmp.Diff([]string{"weft"}, leaf.Subject.Organization); diff != "" {
		t.Errorf("Subject.O (-want +got):\n%s", diff)
	}
}

func TestSignCSRDefaultTTL(t *testing.T) {
	c, _ := newTestCA(t, "weft.local")
	chain, _, err := c.SignCSR(makeCSR(t, newKey(t), csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/x"}}), 0, testGrant)
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
	chain, _, err := c1.SignCSR(makeCSR(t, newKey(t), csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/x"}}), 0, testGrant)
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
