package controlplane

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"testing"
	"time"

	"weft.dev/weft/internal/testpki"
)

// TestAdmissionCertReload: the validating webhook serves the certificate
// in its files as they are now (a renewed Secret), and keeps the last good
// one while the files do not load.
func TestAdmissionCertReload(t *testing.T) {
	ca, err := testpki.New("admission test CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	at := time.Now().Add(-time.Hour)
	write := func(cert, key []byte) {
		t.Helper()
		for f, b := range map[string][]byte{certFile: cert, keyFile: key} {
			if err := os.WriteFile(f, b, 0o600); err != nil {
				t.Fatal(err)
			}
			// Distinct modification times however fast the test runs.
			if err := os.Chtimes(f, at, at); err != nil {
				t.Fatal(err)
			}
		}
		at = at.Add(time.Minute)
	}
	issue := func(serial int64, cn string) ([]byte, []byte) {
		t.Helper()
		c, k, err := ca.Issue(serial, &x509.Certificate{Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn}})
		if err != nil {
			t.Fatal(err)
		}
		return c, k
	}
	served := func(c *certFiles) string {
		t.Helper()
		got, err := c.get(nil)
		if err != nil || got == nil {
			t.Fatalf("get: %v %v", got, err)
		}
		leaf, err := x509.ParseCertificate(got.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}

	if err := (&certFiles{certFile: certFile, keyFile: keyFile}).reload(); err == nil {
		t.Fatal("loading missing files: no error")
	}
	c1, k1 := issue(1, "first")
	write(c1, k1)
	c := &certFiles{certFile: certFile, keyFile: keyFile}
	if err := c.reload(); err != nil {
		t.Fatal(err)
	}
	if got := served(c); got != "first" {
		t.Fatalf("served %q, want first", got)
	}
	c2, k2 := issue(2, "second")
	write(c2, k2)
	if got := served(c); got != "second" {
		t.Fatalf("after renewal served %q, want second", got)
	}
	write([]byte("not a certificate"), k2)
	if got := served(c); got != "second" {
		t.Fatalf("with unloadable files served %q, want the last good one", got)
	}
}
