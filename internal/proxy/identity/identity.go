// Package identity holds the proxy's SPIFFE identity: its X.509-SVID and the
// mesh trust bundle, obtained from the control plane's CA with a CSR (the key
// never leaves the proxy) and rotated at half-life. Source builds the mTLS
// configurations used between proxies; every handshake reads the current
// certificate, so rotation drops no request.
package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// ALPN protocol names spoken on the mTLS hop between proxies.
const (
	ALPNHTTP1 = "http/1.1"
	ALPNHTTP2 = "h2"
	// ALPNTCP marks an opaque byte stream forwarded to the app as is.
	ALPNTCP = "weft-tcp"
)

// Source is the current SVID and trust bundle. It implements go-spiffe's
// x509svid.Source and x509bundle.Source. The zero value has no identity yet.
type Source struct {
	svid   atomic.Pointer[x509svid.SVID]
	bundle atomic.Pointer[x509bundle.Bundle]
	// installed is when the current SVID was set (Unix nanoseconds).
	installed atomic.Int64
}

var (
	_ x509svid.Source   = (*Source)(nil)
	_ x509bundle.Source = (*Source)(nil)
)

// Set installs a new SVID and bundle; handshakes from now on use them.
func (s *Source) Set(svid *x509svid.SVID, bundle *x509bundle.Bundle) {
	s.bundle.Store(bundle)
	s.svid.Store(svid)
	s.installed.Store(time.Now().UnixNano())
}

// RenewAt is when the current certificate should be renewed: half-way
// between its installation and its expiry. (Not half-way from NotBefore: CAs
// backdate NotBefore for clock skew, which would make short-lived
// certificates look half-expired on arrival.)
func (s *Source) RenewAt() time.Time {
	exp := s.Expiry()
	if exp.IsZero() {
		return time.Time{}
	}
	installed := time.Unix(0, s.installed.Load())
	return installed.Add(exp.Sub(installed) / 2)
}

// Status describes the current certificate for config dumps.
type Status struct {
	ID      string    `json:"id"`
	Serial  string    `json:"serial"`
	Expires time.Time `json:"expires"`
	RenewAt time.Time `json:"renewAt"`
}

// Status returns the current certificate's description.
func (s *Source) Status() Status {
	v := s.svid.Load()
	if v == nil || len(v.Certificates) == 0 {
		return Status{}
	}
	return Status{ID: v.ID.String(), Serial: v.Certificates[0].SerialNumber.Text(16), Expires: v.Certificates[0].NotAfter, RenewAt: s.RenewAt()}
}

// GetX509SVID returns the current SVID.
func (s *Source) GetX509SVID() (*x509svid.SVID, error) {
	v := s.svid.Load()
	if v == nil {
		return nil, errors.New("identity: no certificate yet")
	}
	return v, nil
}

// GetX509BundleForTrustDomain returns the bundle of td if it is ours.
func (s *Source) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	b := s.bundle.Load()
	if b == nil {
		return nil, errors.New("identity: no trust bundle yet")
	}
	return b.GetX509BundleForTrustDomain(td)
}

// ID is this proxy's SPIFFE ID (zero before the first certificate).
func (s *Source) ID() spiffeid.ID {
	if v := s.svid.Load(); v != nil {
		return v.ID
	}
	return spiffeid.ID{}
}

// TrustDomain is the mesh trust domain (zero before the first certificate).
func (s *Source) TrustDomain() spiffeid.TrustDomain {
	if b := s.bundle.Load(); b != nil {
		return b.TrustDomain()
	}
	return spiffeid.TrustDomain{}
}

// Expiry is when the current certificate expires.
func (s *Source) Expiry() time.Time {
	if v := s.svid.Load(); v != nil && len(v.Certificates) > 0 {
		return v.Certificates[0].NotAfter
	}
	return time.Time{}
}

// Roots is the trust bundle as a pool (for TLS to the control plane).
func (s *Source) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	if b := s.bundle.Load(); b != nil {
		for _, c := range b.X509Authorities() {
			pool.AddCert(c)
		}
	}
	return pool
}

// ServerTLS is the inbound mTLS configuration: any peer of our trust domain
// whose certificate is a client certificate (extended key usage clientAuth),
// presenting one of the given ALPN protocols. go-spiffe checks the chain,
// the validity period, the single URI SAN and the leaf's CA flags; the
// usage check is ours (go-spiffe verifies with ExtKeyUsageAny).
func (s *Source) ServerTLS(alpn ...string) *tls.Config {
	c := tlsconfig.MTLSServerConfig(s, s, func(id spiffeid.ID, chains [][]*x509.Certificate) error {
		if td := s.TrustDomain(); id.TrustDomain() != td {
			return fmt.Errorf("peer %s is not in trust domain %s", id, td)
		}
		return requireUsage(id, chains, x509.ExtKeyUsageClientAuth, "clientAuth")
	})
	c.NextProtos = alpn
	return c
}

// ClientTLS is the outbound mTLS configuration to a peer that must present
// exactly the expected identity in a server certificate (extended key usage
// serverAuth).
func (s *Source) ClientTLS(expected spiffeid.ID, alpn ...string) *tls.Config {
	c := tlsconfig.MTLSClientConfig(s, s, func(id spiffeid.ID, chains [][]*x509.Certificate) error {
		if id != expected {
			return fmt.Errorf("unexpected ID %q, want %q", id, expected)
		}
		return requireUsage(id, chains, x509.ExtKeyUsageServerAuth, "serverAuth")
	})
	c.NextProtos = alpn
	return c
}

// requireUsage refuses a verified peer whose leaf certificate does not
// list the extended key usage want (or anyExtendedKeyUsage).
func requireUsage(id spiffeid.ID, chains [][]*x509.Certificate, want x509.ExtKeyUsage, name string) error {
	if len(chains) == 0 || len(chains[0]) == 0 {
		return fmt.Errorf("peer %s: no verified chain", id)
	}
	for _, u := range chains[0][0].ExtKeyUsage {
		if u == want || u == x509.ExtKeyUsageAny {
			return nil
		}
	}
	return fmt.Errorf("peer %s: certificate lacks extended key usage %s", id, name)
}

// PeerID extracts the SPIFFE ID of the verified peer of a TLS connection.
func PeerID(cs *tls.ConnectionState) (spiffeid.ID, error) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return spiffeid.ID{}, errors.New("no peer certificate")
	}
	return x509svid.IDFromCert(cs.PeerCertificates[0])
}
