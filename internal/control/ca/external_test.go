package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// pkiCert is a certificate of a test PKI with its key.
type pkiCert struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func (p pkiCert) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.cert.Raw})
}

func (p pkiCert) keyPEM(t *testing.T) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(p.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// issue signs tmpl (a CA unless changed) by parent, or self-signs it.
func issue(t *testing.T, parent *pkiCert, edit func(*x509.Certificate)) pkiCert {
	t.Helper()
	key := newKey(t)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "test CA " + serial.String()},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if edit != nil {
		edit(tmpl)
	}
	signer, signerCert := crypto.Signer(key), tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return pkiCert{cert: c, key: key}
}

// TestExternalCA: with an existing PKI's intermediate, leaves carry the
// intermediate, verify against the PKI's root (the bundle), and the
// control plane's serving certificate does too.
func TestExternalCA(t *testing.T) {
	root := issue(t, nil, nil)
	inter := issue(t, &root, nil)
	c, err := NewExternal(context.Background(), External{Cert: inter.certPEM(), Key: inter.keyPEM(t), Chain: root.certPEM()}, "weft.local", nil)
	if err != nil {
		t.Fatalf("NewExternal: %v", err)
	}
	if b := c.Bundle(); len(b) != 1 || !b[0].Equal(root.cert) {
		t.Fatalf("bundle is %d certificates, want the PKI root", len(b))
	}
	key := newKey(t)
	chain, id, err := c.SignCSR(makeCSR(t, key, csrOpts{uris: []string{"spiffe://weft.local/ns/default/sa/web"}}), time.Hour, testGrant)
	if err != nil {
		t.Fatalf("SignCSR: %v", err)
	}
	if len(chain) != 2 || !chain[1].Equal(inter.cert) {
		t.Fatalf("chain is %d certificates, want leaf and intermediate", len(chain))
	}
	td := spiffeid.RequireTrustDomainFromString("weft.local")
	bundle := x509bundle.FromX509Authorities(td, c.Bundle())
	if got, _, err := x509svid.Verify(chain, bundle); err != nil || got != id {
		t.Fatalf("leaf does not verify against the PKI root: %v (%s)", err, got)
	}
	if chain[0].NotAfter.After(inter.cert.NotAfter) {
		t.Errorf("leaf outlives the intermediate")
	}
	sc, err := c.ServerCertificate([]string{"weft-control"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Certificate) != 2 {
		t.Fatalf("serving certificate chain has %d certificates, want 2", len(sc.Certificate))
	}
	pool, ip := x509.NewCertPool(), x509.NewCertPool()
	pool.AddCert(root.cert)
	ip.AddCert(inter.cert)
	if _, err := sc.Leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: ip, DNSName: "weft-control"}); err != nil {
		t.Errorf("serving certificate: %v", err)
	}

	// A self-signed --ca-cert is its own root: no chain is sent.
	self, err := NewExternal(context.Background(), External{Cert: root.certPEM(), Key: root.keyPEM(t)}, "weft.local", nil)
	if err != nil {
		t.Fatalf("NewExternal(root): %v", err)
	}
	if len(self.Chain()) != 0 || len(self.Bundle()) != 1 {
		t.Errorf("self-signed: chain %d, bundle %d; want 0 and 1", len(self.Chain()), len(self.Bundle()))
	}
}

// TestExternalCARefused: every unusable external CA is refused at start with
// an error naming the problem.
func TestExternalCARefused(t *testing.T) {
	root := issue(t, nil, nil)
	inter := issue(t, &root, nil)
	other := issue(t, nil, nil)
	leafLike := issue(t, &root, func(c *x509.Certificate) { c.IsCA = false; c.KeyUsage = x509.KeyUsageDigitalSignature })
	noSign := issue(t, &root, func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature })
	expired := issue(t, &root, func(c *x509.Certificate) {
		c.NotBefore = time.Now().Add(-3 * time.Hour)
		c.NotAfter = time.Now().Add(-time.Hour)
	})
	future := issue(t, &root, func(c *x509.Certificate) { c.NotBefore = time.Now().Add(time.Hour) })
	otherTD := issue(t, &root, func(c *x509.Certificate) { c.URIs = []*url.URL{{Scheme: "spiffe", Host: "evil.local"}} })
	for _, tc := range []struct {
		name string
		e    External
		want string
	}{
		{"key of another certificate", External{Cert: inter.certPEM(), Key: other.keyPEM(t), Chain: root.certPEM()}, "does not match"},
		{"not a CA", External{Cert: leafLike.certPEM(), Key: leafLike.keyPEM(t), Chain: root.certPEM()}, "not a CA"},
		{"no keyCertSign", External{Cert: noSign.certPEM(), Key: noSign.keyPEM(t), Chain: root.certPEM()}, "keyCertSign"},
		{"expired", External{Cert: expired.certPEM(), Key: expired.keyPEM(t), Chain: root.certPEM()}, "expired"},
		{"not yet valid", External{Cert: future.certPEM(), Key: future.keyPEM(t), Chain: root.certPEM()}, "not valid before"},
		{"other trust domain", External{Cert: otherTD.certPEM(), Key: otherTD.keyPEM(t), Chain: root.certPEM()}, "not the trust domain"},
		{"no root in chain", External{Cert: inter.certPEM(), Key: inter.keyPEM(t)}, "holds no root"},
		{"chain of another root", External{Cert: inter.certPEM(), Key: inter.keyPEM(t), Chain: other.certPEM()}, "does not chain"},
		{"two certificates", External{Cert: append(inter.certPEM(), root.certPEM()...), Key: inter.keyPEM(t), Chain: root.certPEM()}, "exactly one"},
		{"garbage certificate", External{Cert: []byte("not pem"), Key: inter.keyPEM(t), Chain: root.certPEM()}, "--ca-cert"},
		{"garbage key", External{Cert: inter.certPEM(), Key: []byte("not pem"), Chain: root.certPEM()}, "no PEM private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewExternal(context.Background(), tc.e, "weft.local", nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewExternal: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
