package controlplane

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
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
