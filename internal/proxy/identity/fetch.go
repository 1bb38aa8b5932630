package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// Fetcher obtains SVIDs from the control plane's CA. The first certificate
// is requested with the join token; renewals present the current
// certificate as the TLS client certificate instead, so that after the
// first certificate the proxy no longer needs the token. A Fetcher is not
// safe for concurrent use (Rotate is its only user after the first Fetch).
type Fetcher struct {
	// Conn reaches the control plane with server-authenticated TLS; the
	// first certificate is requested on it with Token.
	Conn grpc.ClientConnInterface
	// Token is the join token. With RenewTLS set, Fetch forgets it once it
	// has installed the first certificate.
	Token string
	// TokenFile, if set, replaces Token: a file (a Kubernetes projected
	// service-account token, which the kubelet rotates) read afresh each
	// time a request needs a token, and never forgotten.
	TokenFile string
	// ID is the identity to request.
	ID spiffeid.ID
	// RenewTarget and RenewTLS, if RenewTLS is set, are how renewals reach
	// the CA: a new connection to RenewTarget with RenewTLS (which must
	// verify the server) plus the current certificate as client
	// certificate. Without them every Fetch presents Token.
	RenewTarget string
	RenewTLS    *tls.Config
}

// Fetch generates a fresh key, sends a CSR for f.ID and installs the signed
// SVID and the trust bundle into src. The private key never leaves the
// process. If src holds an unexpired certificate and renewal is configured,
// the request is authenticated with that certificate, else with the token.
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
	renewing := false
	var resp *weftv1.SignResponse
	if cur, cerr := src.GetX509SVID(); cerr == nil && f.RenewTLS != nil && time.Now().Before(src.Expiry()) {
		renewing = true
		resp, err = f.renew(ctx, cur, csr, src)
	} else {
		token := f.Token
		if f.TokenFile != "" {
			b, err := os.ReadFile(f.TokenFile)
			if err != nil {
				return fmt.Errorf("requesting certificate for %s: reading the token: %w", f.ID, err)
			}
			token = strings.TrimSpace(string(b))
		}
		if token == "" {
			return fmt.Errorf("requesting certificate for %s: no join token, and no valid certificate to renew with", f.ID)
		}
		tctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		resp, err = weftv1.NewCertificateAuthorityClient(f.Conn).Sign(tctx, &weftv1.SignRequest{CsrDer: csr})
	}
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
	if !renewing && f.RenewTLS != nil {
		f.Token = ""
	}
	return nil
}

// renew sends csr on a new connection that presents cur as the client
// certificate. A new connection each time: a TLS client certificate is
// fixed at the handshake, and renewals are rare. The control plane is
// verified against RenewTLS's roots and the current trust bundle, so that
// after a root rotation its certificate from the new root verifies.
func (f *Fetcher) renew(ctx context.Context, cur *x509svid.SVID, csr []byte, src *Source) (*weftv1.SignResponse, error) {
	cert := tls.Certificate{PrivateKey: cur.PrivateKey, Leaf: cur.Certificates[0]}
	for _, c := range cur.Certificates {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	conf := f.RenewTLS.Clone()
	if conf.RootCAs != nil {
		conf.RootCAs = conf.RootCAs.Clone()
		if b := src.bundle.Load(); b != nil {
			for _, c := range b.X509Authorities() {
				conf.RootCAs.AddCert(c)
			}
		}
	}
	conf.Certificates = []tls.Certificate{cert}
	conf.GetClientCertificate = nil
	conn, err := grpc.NewClient(f.RenewTarget, grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	if err != nil {
		return nil, fmt.Errorf("renewal connection to %s: %w", f.RenewTarget, err)
	}
	defer conn.Close()
	return weftv1.NewCertificateAuthorityClient(conn).Sign(ctx, &weftv1.SignRequest{CsrDer: csr})
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
