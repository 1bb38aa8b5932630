//go:build linux

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// backName is the DNS name in the server-side peer proxy's certificate; the
// client-side proxy verifies it.
const backName = "back.bench"

// peerCerts are the PEM files of the mTLS hop between a peer proxy pair
// (nginx, HAProxy, Caddy): one CA, a server and a client certificate, all
// ECDSA P-256 like weft's workload certificates.
type peerCerts struct {
	CA                    string // CA certificate
	ServerCert, ServerKey string
	ClientCert, ClientKey string
	// ServerBundle and ClientBundle hold certificate and key in one file
	// (HAProxy's crt format).
	ServerBundle, ClientBundle string
}

func writeCerts(dir string) (peerCerts, error) {
	pc := peerCerts{
		CA:         filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server.key"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client.key"),
		ServerBundle: filepath.Join(dir, "server-bundle.pem"), ClientBundle: filepath.Join(dir, "client-bundle.pem"),
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return pc, err
	}
	now := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "weft bench CA"},
		NotBefore: now, NotAfter: now.Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return pc, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	if err := os.WriteFile(pc.CA, pemBlock("CERTIFICATE", caDER), 0o644); err != nil {
		return pc, err
	}
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, certPath, keyPath, bundlePath string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now, NotAfter: now.Add(48 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: []string{cn}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return err
		}
		c, k := pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", kder)
		if err := os.WriteFile(certPath, c, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(keyPath, k, 0o600); err != nil {
			return err
		}
		return os.WriteFile(bundlePath, append(c, k...), 0o600)
	}
	if err := leaf(2, backName, x509.ExtKeyUsageServerAuth, pc.ServerCert, pc.ServerKey, pc.ServerBundle); err != nil {
		return pc, err
	}
	if err := leaf(3, "front.bench", x509.ExtKeyUsageClientAuth, pc.ClientCert, pc.ClientKey, pc.ClientBundle); err != nil {
		return pc, err
	}
	return pc, nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
