package controlplane

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"weft.dev/weft/internal/control/ca"
	"weft.dev/weft/internal/control/tokens"
)

// refuseAll is a ca.ServiceAccountAuthenticator that turns the Kubernetes
// identity on; xdsScope never calls it.
type refuseAll struct{}

func (refuseAll) AuthenticateServiceAccount(context.Context, string) (ca.ServiceAccount, error) {
	return ca.ServiceAccount{}, ca.ErrCredentialUnavailable
}
func (refuseAll) ServiceAccountExists(context.Context, string, string) error {
	return ca.ErrCredentialUnavailable
}

// TestXDSScopeKubernetesIdentity: under --identity kubernetes only
// certificates issued for a service-account token open xDS streams.
func TestXDSScopeKubernetesIdentity(t *testing.T) {
	cert := func(ou string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{Organization: []string{"weft"}, OrganizationalUnit: []string{ou}}}
	}
	scope := xdsScope(Options{ServiceAccounts: refuseAll{}}, nil)
	tests := []struct {
		name string
		leaf *x509.Certificate
		ok   bool
	}{
		{"service-account certificate", cert(ca.ServiceAccountCertOU), true},
		{"join-token certificate", cert(tokens.CertOU("0123456789abcdef0123456789abcdef")), false},
		{"no OU", &x509.Certificate{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := scope(tc.leaf)
			if (err == nil) != tc.ok {
				t.Fatalf("scope: %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (len(s.Services) != 0 || len(s.Addresses) != 0) {
				t.Errorf("scope = %+v, want none", s)
			}
		})
	}
}

// fakeMembership lets namespace shop's service account web join service
// web only; every other account has no pod.
type fakeMembership struct{}

func (fakeMembership) Live(ns, sa string) error {
	if ns == "shop" && sa == "web" {
		return nil
	}
	return fmt.Errorf("no live pod runs as service account %s/%s", ns, sa)
}
func (fakeMembership) Member(ns, sa, service string) error {
	if service == "web" {
		return nil
	}
	return fmt.Errorf("no live pod of service account %s/%s is of service %q", ns, sa, service)
}

// TestXDSScopeMembership: with a Membership the scope of a
// service-account certificate is its account's: no live pod refuses the
// stream, and the services it may join are the Membership's.
func TestXDSScopeMembership(t *testing.T) {
	cert := func(id string) *x509.Certificate {
		u, err := url.Parse(id)
		if err != nil {
			t.Fatal(err)
		}
		return &x509.Certificate{URIs: []*url.URL{u}, Subject: pkix.Name{OrganizationalUnit: []string{ca.ServiceAccountCertOU}}}
	}
	scope := xdsScope(Options{ServiceAccounts: refuseAll{}, Membership: fakeMembership{}}, nil)
	s, err := scope(cert("spiffe://cluster.local/ns/shop/sa/web"))
	if err != nil || s.Service == nil {
		t.Fatalf("scope(shop/web) = %+v, %v; want a service check", s, err)
	}
	if err := s.Service("web"); err != nil {
		t.Errorf("Service(web) = %v", err)
	}
	if err := s.Service("payments"); err == nil || !strings.Contains(err.Error(), `of service "payments"`) {
		t.Errorf("Service(payments) = %v, want refused", err)
	}
	for id, want := range map[string]string{
		"spiffe://cluster.local/ns/shop/sa/idle": "no live pod runs as service account shop/idle",
		"spiffe://cluster.local/weird/path":      "is not /ns/<namespace>/sa/<service-account>",
	} {
		if _, err := scope(cert(id)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("scope(%s) = %v, want an error containing %q", id, err, want)
		}
	}
	if _, err := scope(&x509.Certificate{Subject: pkix.Name{OrganizationalUnit: []string{ca.ServiceAccountCertOU}}}); err == nil {
		t.Error("a certificate without a SPIFFE ID was scoped")
	}
}
