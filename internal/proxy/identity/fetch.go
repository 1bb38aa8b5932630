package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// Fetcher obtains SVIDs from the control plane's CA.
type Fetcher struct {
	// Conn reaches the control plane.
	Conn grpc.ClientConnInterface
	// Token is the join token.
	Token string
	// ID is the identity to request.
	ID spiffeid.ID
}

// Fetch generates a fresh key, sends a CSR for f.ID and installs the signed
// SVID and the trust bundle into src. The private key never leaves the
// process.
func (f *Fetcher) Fetch(ctx context.Context, src *Source) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating key: %w", err)
	}
	u, err := url.Parse(f.ID.String())
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{Organization: []string{"weft"}},
		URIs:    []*url.URL{u},
	}, key)
	if err != nil {
		return fmt.Errorf("creating CSR: %w", err)
	}
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+f.Token)
	resp, err := weftv1.NewCertificateAuthorityClient(f.Conn).Sign(ctx, &weftv1.SignRequest{CsrDer: csr})
	if err != nil {
		return fmt.Errorf("requesting certificate for %s: %w", f.ID, err)
	}
	var chain []*x509.Certificate
	for _, der := range resp.GetCertChainDer() {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("parsing issued certificate: %w", err)
		}
		chain = append(chain, c)
	}
	td, err := spiffeid.TrustDomainFromString(resp.GetTrustDomain())
	if err != nil {
		return fmt.Errorf("CA answered with trust domain %q: %w", resp.GetTrustDomain(), err)
	}
	bundle := x509bundle.New(td)
	for _, der := range resp.GetTrustBundleDer() {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("parsing trust bundle: %w", err)
		}
		bundle.AddX509Authority(c)
	}
	if len(chain) == 0 {
		return fmt.Errorf("CA returned no certificate")
	}
	id, err := x509svid.IDFromCert(chain[0])
	if err != nil {
		return fmt.Errorf("issued certificate: %w", err)
	}
	if id != f.ID {
		return fmt.Errorf("CA issued %s, asked for %s", id, f.ID)
	}
	if _, _, err := x509svid.Verify(chain, bundle); err != nil {
		return fmt.Errorf("issued certificate does not verify against the trust bundle: %w", err)
	}
	src.Set(&x509svid.SVID{ID: id, Certificates: chain, PrivateKey: key}, bundle)
	return nil
}

// Rotate renews the SVID in src at half of its lifetime until ctx ends,
// retrying failures with backoff. The old certificate stays in use until
// the new one is installed, so no handshake goes without one.
func (f *Fetcher) Rotate(ctx context.Context, src *Source, logger *slog.Logger) {
	backoff := time.Second
	for {
		exp := src.Expiry()
		wait := time.Until(src.RenewAt())
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := f.Fetch(ctx, src); err != nil {
			if ctx.Err() != nil {
				return
			}
			logger.Warn("certificate renewal failed; retrying", "err", err, "expires", exp, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, time.Minute)
			continue
		}
		backoff = time.Second
		logger.Info("certificate renewed", "id", src.ID().String(), "expires", src.Expiry())
	}
}
