package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// External is an intermediate CA of an existing PKI, as PEM: the signing
// certificate, its private key, and the chain above it.
type External struct {
	// Cert is the intermediate weft signs with (PEM, one certificate).
	Cert []byte
	// Key is its private key (PEM: PKCS#8, EC or PKCS#1 RSA).
	Key []byte
	// Chain holds the certificates above Cert (PEM): further intermediates
	// and, last, the PKI's root or roots (self-signed), which become the
	// trust bundle. Empty only if Cert is itself self-signed.
	Chain []byte
}

// NewExternal is a CA that signs with an existing PKI's intermediate
// instead of a self-made root; nothing is written to the store. Leaves
// carry the intermediates (Cert and the non-root part of Chain); the trust
// bundle is the root(s) in Chain. It refuses, with an error naming the
// problem, a key that does not match, a certificate that is not a CA
// (CA:true, keyCertSign) or is outside its validity period, a SPIFFE URI
// SAN of another trust domain, and a chain that does not verify to a root.
func NewExternal(ctx context.Context, e External, trustDomain string, logger *slog.Logger) (*CA, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "ca")
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return nil, fmt.Errorf("ca: trust domain %q: %w", trustDomain, err)
	}
	certs, err := parseCerts(e.Cert)
	if err != nil {
		return nil, fmt.Errorf("ca: --ca-cert: %w", err)
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("ca: --ca-cert holds %d certificates, want exactly one (put the rest in --ca-chain)", len(certs))
	}
	cert := certs[0]
	key, err := parseKey(e.Key)
	if err != nil {
		return nil, fmt.Errorf("ca: --ca-key: %w", err)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("ca: --ca-key does not match the public key of --ca-cert")
	}
	now := time.Now()
	if err := checkSigner(cert, td, now); err != nil {
		return nil, fmt.Errorf("ca: --ca-cert (%s): %w", cert.Subject, err)
	}
	chain, err := parseCerts(e.Chain)
	if err != nil {
		return nil, fmt.Errorf("ca: --ca-chain: %w", err)
	}
	var inter, roots []*x509.Certificate
	for _, c := range chain {
		if isSelfSigned(c) {
			roots = append(roots, c)
		} else {
			inter = append(inter, c)
		}
	}
	if isSelfSigned(cert) {
		roots = append(roots, cert)
	} else {
		inter = append([]*x509.Certificate{cert}, inter...)
	}
	if len(roots) == 0 {
		return nil, errors.New("ca: --ca-cert is not self-signed and --ca-chain holds no root (a self-signed certificate); the root is the trust bundle")
	}
	rootPool, interPool := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range roots {
		rootPool.AddCert(c)
	}
	for _, c := range inter {
		interPool.AddCert(c)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: rootPool, Intermediates: interPool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("ca: --ca-cert does not chain to a root in --ca-chain: %w", err)
	}
	c := &CA{td: td, root: cert, rootKey: key, bundle: roots, logger: logger, now: time.Now}
	if !isSelfSigned(cert) {
		c.chain = inter
	}
	logger.Info("using external CA", "trust_domain", td.Name(), "subject", cert.Subject.String(),
		"not_after", cert.NotAfter, "intermediates", len(c.chain), "roots", len(roots))
	return c, nil
}

// checkSigner verifies that cert may sign workload certificates of td now.
func checkSigner(cert *x509.Certificate, td spiffeid.TrustDomain, now time.Time) error {
	switch {
	case !cert.BasicConstraintsValid || !cert.IsCA:
		return errors.New("not a CA certificate (basic constraints CA:true required)")
	case cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0:
		return errors.New("key usage lacks keyCertSign")
	case now.Before(cert.NotBefore):
		return fmt.Errorf("not valid before %s", cert.NotBefore.Format(time.RFC3339))
	case now.After(cert.NotAfter):
		return fmt.Errorf("expired at %s", cert.NotAfter.Format(time.RFC3339))
	}
	for _, u := range cert.URIs {
		if u.Scheme == "spiffe" && u.String() != td.IDString() {
			return fmt.Errorf("URI SAN %s is not the trust domain %s", u, td.IDString())
		}
	}
	return nil
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// parseCerts decodes every CERTIFICATE block of a PEM file.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(bytes.TrimSpace(data)) > 0 && len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return out, nil
}

// parseKey decodes the first private key block of a PEM file.
func parseKey(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM private key block")
		}
		var k any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.Type, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%T is not a signing key", k)
		}
		return s, nil
	}
}
