package testetcd

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"weft.dev/weft/internal/testpki"
)

// PKI is a throwaway certificate authority, with a serving certificate for
// the members (127.0.0.1, localhost) and a client certificate, written as
// PEM files into the cluster's directory.
type PKI struct {
	// CAFile is the CA certificate the members and clients trust.
	CAFile string
	// CertFile and KeyFile are the client certificate and its key.
	CertFile, KeyFile string
	// OtherCAFile is a CA certificate the members do not trust, and
	// OtherCertFile, OtherKeyFile a client certificate it signed.
	OtherCAFile, OtherCertFile, OtherKeyFile string

	serverCert, serverKey string
	caPEM                 []byte
}

// newPKI writes the PKI's files into dir.
func newPKI(dir string) (*PKI, error) {
	ca, err := testpki.New("testetcd-ca")
	if err != nil {
		return nil, err
	}
	other, err := testpki.New("testetcd-untrusted-ca")
	if err != nil {
		return nil, err
	}
	serverCert, serverKey, err := ca.Issue(2, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "etcd"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("serving cert: %w", err)
	}
	clientTmpl := func() *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: "weft-control"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	}
	clientCert, clientKey, err := ca.Issue(3, clientTmpl())
	if err != nil {
		return nil, fmt.Errorf("client cert: %w", err)
	}
	otherCert, otherKey, err := other.Issue(2, clientTmpl())
	if err != nil {
		return nil, fmt.Errorf("untrusted client cert: %w", err)
	}
	p := &PKI{
		CAFile:        filepath.Join(dir, "ca.crt"),
		CertFile:      filepath.Join(dir, "client.crt"),
		KeyFile:       filepath.Join(dir, "client.key"),
		OtherCAFile:   filepath.Join(dir, "other-ca.crt"),
		OtherCertFile: filepath.Join(dir, "other-client.crt"),
		OtherKeyFile:  filepath.Join(dir, "other-client.key"),
		serverCert:    filepath.Join(dir, "server.crt"),
		serverKey:     filepath.Join(dir, "server.key"),
		caPEM:         ca.PEM,
	}
	for path, b := range map[string][]byte{
		p.CAFile: ca.PEM, p.CertFile: clientCert, p.KeyFile: clientKey,
		p.OtherCAFile: other.PEM, p.OtherCertFile: otherCert, p.OtherKeyFile: otherKey,
		p.serverCert: serverCert, p.serverKey: serverKey,
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
	}
	return p, nil
}
