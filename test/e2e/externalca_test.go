package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestExternalCA: `weft control --ca-cert --ca-key --ca-chain` signs with an
// existing PKI's intermediate: requests flow between sidecars, the
// certificate a sidecar serves is issued by the intermediate and sent with
// it, and ca.pem in the data dir is the PKI's root.
func TestExternalCA(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
		tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, key
	}
	write := func(name string, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	root, rootKey := mk("corp root", nil, nil)
	inter, interKey := mk("corp mesh intermediate", root, rootKey)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(interKey)

	c := startControl(t, "--ca-cert", write("inter.pem", "CERTIFICATE", inter.Raw),
		"--ca-key", write("inter-key.pem", "PRIVATE KEY", keyDER), "--ca-chain", write("root.pem", "CERTIFICATE", root.Raw))
	backend := startBackend(t, c, "v1")
	client := startClient(t, c, "client")
	eventually(t, 10*time.Second, 100*time.Millisecond, "request via the external CA's certificates", func() error {
		_, err := client.getBackend("http://backend/")
		return err
	})

	var served []*x509.Certificate
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr(backend.inbound), &tls.Config{
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			for _, r := range raw {
				cert, err := x509.ParseCertificate(r)
				if err != nil {
					return err
				}
				served = append(served, cert)
			}
			return nil
		},
	})
	if err == nil {
		conn.Close()
	}
	if len(served) != 2 || !served[1].Equal(inter) {
		t.Fatalf("backend served %d certificates, want its leaf and the intermediate", len(served))
	}
	if err := served[0].CheckSignatureFrom(inter); err != nil {
		t.Errorf("leaf not signed by the intermediate: %v", err)
	}
	bundle, err := os.ReadFile(filepath.Join(c.dataDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(bundle)
	if b == nil || string(b.Bytes) != string(root.Raw) {
		t.Errorf("ca.pem is not the PKI root")
	}
}
