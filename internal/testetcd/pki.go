package testetcd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
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

type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newAuthority(name string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

func (a *authority) issue(serial int64, tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// newPKI writes the PKI's files into dir.
func newPKI(dir string) (*PKI, error) {
	ca, err := newAuthority("testetcd-ca")
	if err != nil {
		return nil, err
	}
	other, err := newAuthority("testetcd-untrusted-ca")
	if err != nil {
		return nil, err
	}
	serverCert, serverKey, err := ca.issue(2, &x509.Certificate{
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
	clientCert, clientKey, err := ca.issue(3, clientTmpl())
	if err != nil {
		return nil, fmt.Errorf("client cert: %w", err)
	}
	otherCert, otherKey, err := other.issue(2, clientTmpl())
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
		caPEM:         ca.pem,
	}
	for path, b := range map[string][]byte{
		p.CAFile: ca.pem, p.CertFile: clientCert, p.KeyFile: clientKey,
		p.OtherCAFile: other.pem, p.OtherCertFile: otherCert, p.OtherKeyFile: otherKey,
		p.serverCert: serverCert, p.serverKey: serverKey,
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
	}
	return p, nil
}
