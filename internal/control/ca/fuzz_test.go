package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"weft.dev/weft/internal/control/tokens"
)

// FuzzSignCSR feeds arbitrary DER to the CSR handler: it must never panic,
// every error must be a counted refusal, and whatever it signs must be an
// X.509-SVID that the grant allows.
func FuzzSignCSR(f *testing.F) {
	c, err := New(f.Context(), &memStore{}, "weft.local", nil)
	if err != nil {
		f.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	for _, o := range []csrOpts{
		{uris: []string{"spiffe://weft.local/ns/default/sa/orders"}},
		{uris: []string{"spiffe://weft.local/ns/default/sa/a", "spiffe://weft.local/ns/default/sa/b"}},
		{uris: []string{"spiffe://weft.local/ns/weft-system/sa/weft-control"}},
		{uris: []string{"spiffe://weft.local/ns/default/sa/orders"}, dns: []string{"orders"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}},
	} {
		if der, err := makeCSRErr(key, o); err == nil {
			f.Add(der)
		}
	}
	f.Add([]byte("not a csr"))
	bundle := x509bundle.FromX509Authorities(c.TrustDomain(), c.Bundle())
	f.Fuzz(func(t *testing.T, der []byte) {
		chain, id, err := c.SignCSR(der, time.Hour, testGrant)
		if err != nil {
			if reasonOf(err) == "" {
				t.Fatalf("error without a refusal reason: %v", err)
			}
			return
		}
		got, _, err := x509svid.Verify(chain, bundle)
		if err != nil || got != id {
			t.Fatalf("signed certificate is not a valid SVID for %s: %v", id, err)
		}
		if !strings.HasPrefix(id.Path(), "/ns/default/sa/") || len(chain[0].URIs) != 1 || len(chain[0].DNSNames)+len(chain[0].IPAddresses)+len(chain[0].EmailAddresses) != 0 {
			t.Fatalf("signed %s with SANs %v %v %v %v, which the grant does not allow", id, chain[0].URIs, chain[0].DNSNames, chain[0].IPAddresses, chain[0].EmailAddresses)
		}
		if tid, err := tokens.IDFromCert(chain[0]); err != nil || tid != testGrant.TokenID {
			t.Fatalf("signed certificate names token %q (%v)", tid, err)
		}
	})
}
