package ca

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"weft.dev/weft/internal/control/tokens"
	"weft.dev/weft/internal/xdsmeta"
)

// DefaultTTL is the lifetime of a workload certificate when none is given.
const DefaultTTL = 24 * time.Hour

// serverCertTTL is the lifetime of the control plane's own serving certificate.
const serverCertTTL = 365 * 24 * time.Hour

// ControlNamespace and ControlServiceAccount name the control plane's own
// identity: spiffe://<td>/ns/weft-system/sa/weft-control. The CA never
// signs a CSR in ControlNamespace.
const (
	ControlNamespace      = tokens.ReservedNamespace
	ControlServiceAccount = xdsmeta.ControlServiceAccount
)

// RSA key sizes accepted in a CSR. Larger keys are refused before their
// signature is checked, which bounds the CPU a request can cost.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// Grant is what the credential behind a certificate request allows.
type Grant struct {
	// TokenID is the join token the certificate is issued for; the CA
	// records it in the certificate (tokens.CertOU). Required.
	TokenID string
	// Namespace is the only namespace that may be requested. Required.
	Namespace string
	// ServiceAccount, if set, is the only service account that may be
	// requested.
	ServiceAccount string
	// ID, if set (a renewal), is the only SPIFFE ID that may be requested.
	ID spiffeid.ID
	// NotAfter, if set, bounds the certificate's validity (the token's
	// expiry).
	NotAfter time.Time
	// ServiceAccountToken marks a grant from a Kubernetes service-account
	// token (or the renewal of a certificate issued for one) instead of a
	// join token: TokenID is empty and the certificate records
	// ServiceAccountCertOU.
	ServiceAccountToken bool
}

// credential names the grant's credential in refusals and logs.
func (g Grant) credential() string {
	if g.ServiceAccountToken {
		return fmt.Sprintf("the service-account token of %s/%s", g.Namespace, g.ServiceAccount)
	}
	return "join token " + g.TokenID
}

// SignCSR verifies a PKCS#10 request against what g allows and signs it
// into an X.509-SVID valid for ttl (DefaultTTL if ttl <= 0), never past
// g.NotAfter or the root's own expiry. Every refusal is a *RefusalError.
//
// The request must carry a key of at least 128-bit strength (ECDSA P-256,
// P-384 or P-521, RSA of 2048 to 8192 bits, or Ed25519), be self-signed
// correctly and carry exactly one URI SAN: a SPIFFE ID in the CA's trust
// domain with the path /ns/<ns>/sa/<sa>, both DNS-1123 labels, never in
// ControlNamespace. DNS, IP and email SANs are refused.
//
// The leaf follows the X.509-SVID specification: the one URI SAN, CA=false,
// key usage digitalSignature only, extended key usage serverAuth and
// clientAuth. Its subject is O=weft, OU=weft-token:<g.TokenID> (or
// ServiceAccountCertOU for a service-account grant); nothing of
// the CSR's subject is copied. The returned chain holds the leaf first, then
// Chain (the intermediates of an external CA); the root is not included (it
// is in Bundle).
func (c *CA) SignCSR(csrDER []byte, ttl time.Duration, g Grant) ([]*x509.Certificate, spiffeid.ID, error) {
	if (g.TokenID == "") == !g.ServiceAccountToken || g.Namespace == "" || (g.ServiceAccountToken && g.ServiceAccount == "") {
		return nil, spiffeid.ID{}, errors.New("ca: grant without exactly one credential, or without namespace (and service account, for a service-account token)")
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, spiffeid.ID{}, refuse(ReasonCSRMalformed, "parsing CSR: %w", err)
	}
	if err := checkKey(csr.PublicKey); err != nil {
		return nil, spiffeid.ID{}, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, spiffeid.ID{}, refuse(ReasonCSRMalformed, "CSR signature: %w", err)
	}
	id, err := c.csrID(csr)
	if err != nil {
		return nil, spiffeid.ID{}, err
	}
	if err := g.allows(id); err != nil {
		return nil, spiffeid.ID{}, err
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	now := c.now()
	root, rootKey := c.signer(now)
	notAfter := now.Add(ttl)
	if notAfter.After(root.NotAfter) {
		notAfter = root.NotAfter
	}
	if !g.NotAfter.IsZero() && notAfter.After(g.NotAfter) {
		notAfter = g.NotAfter
	}
	serial, err := newSerial()
	if err != nil {
		return nil, spiffeid.ID{}, err
	}
	ou := tokens.CertOU(g.TokenID)
	if g.ServiceAccountToken {
		ou = ServiceAccountCertOU
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"weft"}, OrganizationalUnit: []string{ou}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		URIs:                  []*url.URL{id.URL()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, csr.PublicKey, rootKey)
	if err != nil {
		return nil, spiffeid.ID{}, fmt.Errorf("signing certificate for %s: %w", id, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, spiffeid.ID{}, fmt.Errorf("parsing signed certificate: %w", err)
	}
	c.recordIssued(id.String(), root.SerialNumber.Text(16), notAfter)
	return append([]*x509.Certificate{leaf}, c.chain...), id, nil
}

// allows checks a requested workload ID against the grant.
func (g Grant) allows(id spiffeid.ID) error {
	ns, sa, _ := WorkloadNames(id)
	switch {
	case ns == ControlNamespace:
		return refuse(ReasonControlIdentity, "%s is in the control plane's namespace %q, which no workload may have", id, ControlNamespace)
	case !g.ID.IsZero() && id != g.ID:
		return refuse(ReasonRenewalIdentity, "renewal CSR asks for %s, but the client certificate is %s", id, g.ID)
	case ns != g.Namespace:
		return refuse(ReasonNamespace, "%s: %s allows namespace %q only", id, g.credential(), g.Namespace)
	case g.ServiceAccount != "" && sa != g.ServiceAccount:
		return refuse(ReasonServiceAccount, "%s: %s allows service account %q only", id, g.credential(), g.ServiceAccount)
	}
	return nil
}

// checkKey accepts ECDSA P-256/P-384/P-521, RSA of minRSABits to
// maxRSABits, and Ed25519.
func checkKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return refuse(ReasonWeakKey, "CSR key is ECDSA %s: want P-256, P-384 or P-521", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if b := k.N.BitLen(); b < minRSABits || b > maxRSABits {
			return refuse(ReasonWeakKey, "CSR key is RSA-%d: want %d to %d bits (or ECDSA P-256)", b, minRSABits, maxRSABits)
		}
		return nil
	case ed25519.PublicKey:
		return nil
	}
	return refuse(ReasonWeakKey, "CSR key type %T is not accepted: want ECDSA P-256, P-384, P-521, RSA >= %d bits or Ed25519", pub, minRSABits)
}

// csrID checks the SANs of csr and returns its SPIFFE ID.
func (c *CA) csrID(csr *x509.CertificateRequest) (spiffeid.ID, error) {
	switch {
	case len(csr.DNSNames) > 0:
		return spiffeid.ID{}, refuse(ReasonSAN, "CSR has DNS SANs %q: only one SPIFFE URI SAN is allowed", csr.DNSNames)
	case len(csr.IPAddresses) > 0:
		return spiffeid.ID{}, refuse(ReasonSAN, "CSR has IP SANs %v: only one SPIFFE URI SAN is allowed", csr.IPAddresses)
	case len(csr.EmailAddresses) > 0:
		return spiffeid.ID{}, refuse(ReasonSAN, "CSR has email SANs %q: only one SPIFFE URI SAN is allowed", csr.EmailAddresses)
	case len(csr.URIs) != 1:
		return spiffeid.ID{}, refuse(ReasonSAN, "CSR has %d URI SANs, want exactly one SPIFFE ID", len(csr.URIs))
	}
	id, err := spiffeid.FromURI(csr.URIs[0])
	if err != nil {
		return spiffeid.ID{}, refuse(ReasonSPIFFEID, "CSR URI SAN %q: %w", csr.URIs[0], err)
	}
	if !id.MemberOf(c.td) {
		return spiffeid.ID{}, refuse(ReasonTrustDomain, "CSR SPIFFE ID %q is not in trust domain %q", id, c.td.Name())
	}
	if _, _, err := WorkloadNames(id); err != nil {
		return spiffeid.ID{}, refuse(ReasonSPIFFEID, "CSR SPIFFE ID %q: %w", id, err)
	}
	return id, nil
}

// WorkloadNames returns the namespace and service account of a workload
// ID, which must be exactly /ns/<namespace>/sa/<service-account> (go-spiffe
// has already checked the path's characters).
func WorkloadNames(id spiffeid.ID) (ns, sa string, err error) {
	if err := checkWorkloadPath(id.Path()); err != nil {
		return "", "", err
	}
	seg := strings.Split(id.Path(), "/")
	return seg[2], seg[4], nil
}

// checkWorkloadPath accepts exactly /ns/<namespace>/sa/<service-account>.
func checkWorkloadPath(path string) error {
	rest, ok := strings.CutPrefix(path, "/")
	seg := strings.Split(rest, "/")
	if !ok || len(seg) != 4 || seg[0] != "ns" || seg[2] != "sa" {
		return fmt.Errorf("path %q is not /ns/<namespace>/sa/<service-account>", path)
	}
	if !isDNS1123Label(seg[1]) {
		return fmt.Errorf("namespace %q is not a DNS-1123 label", seg[1])
	}
	if !isDNS1123Label(seg[3]) {
		return fmt.Errorf("service account %q is not a DNS-1123 label", seg[3])
	}
	return nil
}

// isDNS1123Label reports whether s is a Kubernetes DNS-1123 label: 1 to 63
// lowercase letters, digits and '-', starting and ending alphanumeric.
func isDNS1123Label(s string) bool { return len(validation.IsDNS1123Label(s)) == 0 }

// ServerCertificate issues the control plane's own serving certificate: URI
// SAN spiffe://<td>/ns/weft-system/sa/weft-control plus the given DNS and IP
// SANs, for a P-256 key generated in memory, valid for one year (never past
// the root). Proxies verify it against the trust bundle like any peer.
func (c *CA) ServerCertificate(dnsNames []string, ips []net.IP) (*tls.Certificate, error) {
	id, err := spiffeid.FromSegments(c.td, "ns", ControlNamespace, "sa", ControlServiceAccount)
	if err != nil {
		return nil, fmt.Errorf("control plane SPIFFE ID: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating server key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := c.now()
	root, rootKey := c.signer(now)
	notAfter := now.Add(serverCertTTL)
	if notAfter.After(root.NotAfter) {
		notAfter = root.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"weft"}, CommonName: ControlServiceAccount},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{id.URL()},
		DNSNames:              dnsNames,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, key.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("signing server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing server certificate: %w", err)
	}
	out := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	for _, ic := range c.chain {
		out.Certificate = append(out.Certificate, ic.Raw)
	}
	return out, nil
}
