package ca

import (
	"slices"
	"strings"
	"testing"

	"weft.dev/weft/internal/control/tokens"
)

// TestSignServiceAccountGrant: a service-account grant signs exactly its
// ns/sa, records ServiceAccountCertOU and no join token; grants mixing or
// lacking credentials are programming errors, not certificates.
func TestSignServiceAccountGrant(t *testing.T) {
	c, _ := newTestCA(t, "weft.local")
	key := newKey(t)
	csr := func(id string) []byte { return makeCSR(t, key, csrOpts{uris: []string{id}}) }
	sa := Grant{Namespace: "ns1", ServiceAccount: "a", ServiceAccountToken: true}
	tests := []struct {
		name    string
		grant   Grant
		id      string
		reason  string // refusal reason; "" with wantErr: a non-refusal error
		wantErr string
	}{
		{name: "own identity", grant: sa, id: "spiffe://weft.local/ns/ns1/sa/a"},
		{name: "other service account", grant: sa, id: "spiffe://weft.local/ns/ns1/sa/b", reason: ReasonServiceAccount, wantErr: "service-account token of ns1/a"},
		{name: "other namespace", grant: sa, id: "spiffe://weft.local/ns/ns2/sa/a", reason: ReasonNamespace},
		{name: "token and service account", grant: Grant{TokenID: strings.Repeat("a", 32), Namespace: "ns1", ServiceAccount: "a", ServiceAccountToken: true}, id: "spiffe://weft.local/ns/ns1/sa/a", wantErr: "exactly one credential"},
		{name: "service account grant without a name", grant: Grant{Namespace: "ns1", ServiceAccountToken: true}, id: "spiffe://weft.local/ns/ns1/sa/a", wantErr: "exactly one credential"},
		{name: "no credential", grant: Grant{Namespace: "ns1"}, id: "spiffe://weft.local/ns/ns1/sa/a", wantErr: "exactly one credential"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			chain, id, err := c.SignCSR(csr(tc.id), 0, tc.grant)
			if tc.wantErr != "" || tc.reason != "" {
				if err == nil || reasonOf(err) != tc.reason || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("SignCSR: err = %v (reason %q), want reason %q and %q", err, reasonOf(err), tc.reason, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("SignCSR: %v", err)
			}
			if id.String() != tc.id || !IssuedForServiceAccount(chain[0]) || !slices.Equal(chain[0].Subject.OrganizationalUnit, []string{ServiceAccountCertOU}) {
				t.Errorf("issued %s with OU %q", id, chain[0].Subject.OrganizationalUnit)
			}
			if _, err := tokens.IDFromCert(chain[0]); err == nil {
				t.Error("a service-account certificate names a join token")
			}
		})
	}
	if IssuedForServiceAccount(nil) {
		t.Error("IssuedForServiceAccount(nil) = true")
	}
}
