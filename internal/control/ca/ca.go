// Package ca is the mesh certificate authority. It keeps a self-signed
// ECDSA root in the control plane's store (rotated in two timed phases by
// Rotate), or signs with an existing PKI's intermediate (NewExternal), and
// signs workload CSRs into short-lived X.509-SVIDs
// (spiffe://<trust-domain>/ns/<ns>/sa/<sa>). Private keys never leave the
// workload: the CA only ever sees certificate requests.
package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// rootBlobKey is where the root certificate and key live in Persistence, as
// one PEM blob (CERTIFICATE then PRIVATE KEY) so they are written atomically.
const rootBlobKey = "ca/root.pem"

// rootTTL is the validity of a newly created root.
const rootTTL = 10 * 365 * 24 * time.Hour

// Persistence is where the CA keeps its root. The control plane passes its
// store.
type Persistence interface {
	// GetBlob returns the value under key, or nil, nil if there is none.
	GetBlob(key string) ([]byte, error)
	// PutBlob stores val under key.
	PutBlob(key string, val []byte) error
}

// CA signs workload certificates with the mesh root, or with an
// intermediate of an existing PKI (NewExternal). It is immutable after
// construction and safe for concurrent use.
type CA struct {
	td spiffeid.TrustDomain
	// root is the signing certificate (the self-made root, or the
	// external intermediate) and rootKey its key.
	root    *x509.Certificate
	rootKey crypto.Signer
	// chain is sent after every leaf: the external intermediate and any
	// intermediates above it (nil for the self-made root).
	chain []*x509.Certificate
	// bundle is what workloads trust: the self-made root, or the external
	// PKI's root(s).
	bundle []*x509.Certificate
	logger *slog.Logger
	now    func() time.Time
	// p keeps the self-made root and a rotation (nil for an external CA).
	p Persistence
	// mu serialises rotations; rot is the one in progress (nil: none).
	mu  sync.Mutex
	rot atomic.Pointer[rotation]
	// issued maps a SPIFFE ID to the root of its last certificate.
	issuedMu sync.Mutex
	issued   map[string]issuedRecord
}

// New loads the root key and certificate from p, or creates and persists
// them on first start: ECDSA P-256, self-signed, valid for 10 years, CA:true,
// with the URI SAN spiffe://<trustDomain>. A stored root for another trust
// domain is an error: changing the trust domain needs a new data dir.
func New(ctx context.Context, p Persistence, trustDomain string, logger *slog.Logger) (*CA, error) {
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
	c := &CA{td: td, logger: logger, now: time.Now, p: p}

	blob, err := p.GetBlob(rootBlobKey)
	if err != nil {
		return nil, fmt.Errorf("ca: loading root: %w", err)
	}
	if blob != nil {
		c.root, c.rootKey, err = decodeRoot(blob)
		if err != nil {
			return nil, fmt.Errorf("ca: decoding stored root %q: %w", rootBlobKey, err)
		}
		if err := checkRoot(c.root, td); err != nil {
			return nil, fmt.Errorf("ca: stored root: %w", err)
		}
		if c.now().After(c.root.NotAfter) {
			return nil, fmt.Errorf("ca: stored root expired at %s", c.root.NotAfter.Format(time.RFC3339))
		}
		logger.Info("loaded root", "trust_domain", td.Name(), "not_after", c.root.NotAfter)
		c.bundle = []*x509.Certificate{c.root}
		if err := c.loadRotation(); err != nil {
			return nil, err
		}
		return c, nil
	}

	c.root, c.rootKey, err = newRoot(td, c.now())
	if err != nil {
		return nil, fmt.Errorf("ca: creating root: %w", err)
	}
	blob, err = encodeRoot(c.root, c.rootKey)
	if err != nil {
		return nil, fmt.Errorf("ca: encoding root: %w", err)
	}
	creator, shared := p.(Creator)
	if !shared {
		if err := p.PutBlob(rootBlobKey, blob); err != nil {
			return nil, fmt.Errorf("ca: storing root: %w", err)
		}
		logger.Info("created root", "trust_domain", td.Name(), "not_after", c.root.NotAfter)
		c.bundle = []*x509.Certificate{c.root}
		return c, nil
	}
	// Replicas starting together race to create the root; every one of
	// them signs with the root that won.
	stored, err := creator.CreateBlob(rootBlobKey, blob)
	if err != nil {
		return nil, fmt.Errorf("ca: storing root: %w", err)
	}
	if string(stored) != string(blob) {
		if c.root, c.rootKey, err = decodeRoot(stored); err != nil {
			return nil, fmt.Errorf("ca: decoding the root another replica created: %w", err)
		}
		if err := checkRoot(c.root, td); err != nil {
			return nil, fmt.Errorf("ca: root another replica created: %w", err)
		}
		logger.Info("loaded the root another replica created", "trust_domain", td.Name(), "not_after", c.root.NotAfter)
	} else {
		logger.Info("created root", "trust_domain", td.Name(), "not_after", c.root.NotAfter)
	}
	c.bundle = []*x509.Certificate{c.root}
	return c, nil
}

// Creator is implemented by a Persistence that several control-plane
// replicas share (store.Shared, through seal.Blobs): the root is created
// with it so that replicas starting at once end up with one root.
type Creator interface {
	// CreateBlob stores val under key only if there is none, and
	// returns what is stored afterwards.
	CreateBlob(key string, val []byte) ([]byte, error)
}

// TrustDomain is the mesh trust domain.
func (c *CA) TrustDomain() spiffeid.TrustDomain { return c.td }

// Bundle is the trust bundle: the certificates workloads trust (both roots
// while a rotation is in progress). It returns a fresh slice; the
// certificates themselves must not be modified.
func (c *CA) Bundle() []*x509.Certificate { return c.bundleAt(c.now()) }

// Chain is what follows a leaf signed by this CA up to (not including) the
// bundle: the external intermediates, or nothing for the self-made root. It
// returns a fresh slice.
func (c *CA) Chain() []*x509.Certificate { return append([]*x509.Certificate(nil), c.chain...) }

func newRoot(td spiffeid.TrustDomain, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"weft"}, CommonName: "weft root CA " + td.Name()},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(rootTTL),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		URIs:                  []*url.URL{td.ID().URL()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func encodeRoot(cert *x509.Certificate, key crypto.Signer) ([]byte, error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...), nil
}

func decodeRoot(blob []byte) (*x509.Certificate, crypto.Signer, error) {
	var cert *x509.Certificate
	var key crypto.Signer
	for {
		var b *pem.Block
		b, blob = pem.Decode(blob)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("certificate: %w", err)
			}
			cert = c
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("private key: %w", err)
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, nil, fmt.Errorf("private key: %T is not a signer", k)
			}
			key = s
		}
	}
	if cert == nil || key == nil {
		return nil, nil, errors.New("missing CERTIFICATE or PRIVATE KEY block")
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, errors.New("private key does not match certificate")
	}
	return cert, key, nil
}

// checkRoot verifies that a stored root is a CA for td whose key matches.
func checkRoot(root *x509.Certificate, td spiffeid.TrustDomain) error {
	if !root.IsCA {
		return errors.New("not a CA certificate")
	}
	if len(root.URIs) != 1 || root.URIs[0].String() != td.IDString() {
		return fmt.Errorf("root is not for trust domain %q (URI SANs %v); use a new data dir to change the trust domain", td.Name(), root.URIs)
	}
	return nil
}

// newSerial returns a random, non-zero 128-bit serial number.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("generating serial: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}
