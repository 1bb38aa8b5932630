package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// DefaultTTL is the lifetime of a workload certificate when none is given.
const DefaultTTL = 24 * time.Hour

// serverCertTTL is the lifetime of the control plane's own serving certificate.
const serverCertTTL = 365 * 24 * time.Hour

// ControlNamespace and ControlServiceAccount name the control plane's own
// identity: spiffe://<td>/ns/weft-system/sa/weft-control.
const (
	ControlNamespace      = "weft-system"
	ControlServiceAccount = "weft-control"
)

// SignCSR verifies a PKCS#10 request and signs it into an X.509-SVID valid
// for ttl (DefaultTTL if ttl <= 0), never past the root's own expiry.
//
// The request must be self-signed correctly and carry exactly one URI SAN:
// a SPIFFE ID in the CA's trust domain with the path /ns/<ns>/sa/<sa>, both
// DNS-1123 labels. DNS, IP and email SANs are refused. The returned chain
// holds the leaf first; the root is not included (it is in Bundle).
func (c *CA) SignCSR(csrDER []byte, ttl time.Duration) ([]*x509.Certificate, spiffeid.ID, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, spiffeid.ID{}, fmt.Errorf("parsing CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, spiffeid.ID{}, fmt.Errorf("CSR signature: %w", err)
	}
	id, err := c.csrID(csr)
	if err != nil {
		return nil, spiffeid.ID{}, err
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	now := c.now()
	notAfter := now.Add(ttl)
	if notAfter.After(c.root.NotAfter) {
		notAfter = c.root.NotAfter
	}
	serial, err := newSerial()
	if err != nil {
		return nil, spiffeid.ID{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"weft"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{id.URL()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.root, csr.PublicKey, c.rootKey)
	if err != nil {
		return nil, spiffeid.ID{}, fmt.Errorf("signing certificate for %s: %w", id, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, spiffeid.ID{}, fmt.Errorf("parsing signed certificate: %w", err)
	}
	return []*x509.Certificate{leaf}, id, nil
}

// csrID checks the SANs of csr and returns its SPIFFE ID.
func (c *CA) csrID(csr *x509.CertificateRequest) (spiffeid.ID, error) {
	switch {
	case len(csr.DNSNames) > 0:
		return spiffeid.ID{}, fmt.Errorf("CSR has DNS SANs %q: only one SPIFFE URI SAN is allowed", csr.DNSNames)
	case len(csr.IPAddresses) > 0:
		return spiffeid.ID{}, fmt.Errorf("CSR has IP SANs %v: only one SPIFFE URI SAN is allowed", csr.IPAddresses)
	case len(csr.EmailAddresses) > 0:
		return spiffeid.ID{}, fmt.Errorf("CSR has email SANs %q: only one SPIFFE URI SAN is allowed", csr.EmailAddresses)
	case len(csr.URIs) != 1:
		return spiffeid.ID{}, fmt.Errorf("CSR has %d URI SANs, want exactly one SPIFFE ID", len(csr.URIs))
	}
	id, err := spiffeid.FromURI(csr.URIs[0])
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("CSR URI SAN %q: %w", csr.URIs[0], err)
	}
	if !id.MemberOf(c.td) {
		return spiffeid.ID{}, fmt.Errorf("CSR SPIFFE ID %q is not in trust domain %q", id, c.td.Name())
	}
	if err := checkWorkloadPath(id.Path()); err != nil {
		return spiffeid.ID{}, fmt.Errorf("CSR SPIFFE ID %q: %w", id, err)
	}
	return id, nil
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
func isDNS1123Label(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		alnum := (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9')
		if !alnum && (b != '-' || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}

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
	notAfter := now.Add(serverCertTTL)
	if notAfter.After(c.root.NotAfter) {
		notAfter = c.root.NotAfter
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
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.root, key.Public(), c.rootKey)
	if err != nil {
		return nil, fmt.Errorf("signing server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing server certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
