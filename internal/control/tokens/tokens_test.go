package tokens

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"weft.dev/weft/internal/control/xds"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// prefixCmp compares netip.Prefix values, which cmp cannot look into.
var prefixCmp = cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })

// memStore is an in-memory Persistence.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memStore) PutBlob(key string, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[key] = append([]byte(nil), val...)
	return nil
}

func (s *memStore) BlobsWithPrefix(prefix string) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range s.m {
		if strings.HasPrefix(k, prefix) {
			out[k] = append([]byte(nil), v...)
		}
	}
	return out, nil
}

// clock is a movable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestStore(t *testing.T) (*Store, *memStore, *clock) {
	t.Helper()
	p := &memStore{}
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s, err := Open(p, Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return s, p, c
}

func TestCreateValidation(t *testing.T) {
	s, _, _ := newTestStore(t)
	tests := []struct {
		name    string
		spec    Spec
		want    Token // ID and Created are not compared
		wantErr string
	}{
		{name: "namespace only", spec: Spec{Namespace: "shop"}, want: Token{Namespace: "shop"}},
		{name: "full", spec: Spec{Namespace: "shop", ServiceAccount: "orders", Services: []string{"orders", "orders-v2", "orders"}, Addresses: []string{"10.0.0.7/24", "192.168.1.5", "fd00::/64"}, TTL: "1h", Description: "ci"},
			want: Token{Namespace: "shop", ServiceAccount: "orders", Services: []string{"orders", "orders-v2"}, Description: "ci",
				Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("192.168.1.5/32"), netip.MustParsePrefix("fd00::/64")},
				Expires:   time.Date(2026, 1, 2, 4, 4, 5, 0, time.UTC)}},
		{name: "no namespace", spec: Spec{}, wantErr: "namespace: required"},
		{name: "control namespace", spec: Spec{Namespace: "weft-system"}, wantErr: "control plane's own namespace"},
		{name: "bad namespace", spec: Spec{Namespace: "Shop"}, wantErr: `namespace: "Shop" is not a DNS-1123 label`},
		{name: "bad service account", spec: Spec{Namespace: "shop", ServiceAccount: "a_b"}, wantErr: "serviceAccount:"},
		{name: "bad service", spec: Spec{Namespace: "shop", Services: []string{"ok", "-no"}}, wantErr: "services[1]:"},
		{name: "bad address", spec: Spec{Namespace: "shop", Addresses: []string{"10.0.0.0/8", "nope"}}, wantErr: "addresses[1]:"},
		{name: "every address", spec: Spec{Namespace: "shop", Addresses: []string{"0.0.0.0/0"}}, wantErr: "allows every address"},
		{name: "bad ttl", spec: Spec{Namespace: "shop", TTL: "soon"}, wantErr: "ttl:"},
		{name: "short ttl", spec: Spec{Namespace: "shop", TTL: "10ms"}, wantErr: "shorter than 1s"},
		{name: "long description", spec: Spec{Namespace: "shop", Description: strings.Repeat("x", 201)}, wantErr: "description:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, secret, err := s.Create(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Create error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			id, _, err := Parse(secret)
			if err != nil || id != tok.ID {
				t.Fatalf("Parse(%q) = %q, %v; want ID %q", secret, id, err, tok.ID)
			}
			tt.want.ID, tt.want.Created = tok.ID, tok.Created
			if diff := cmp.Diff(tt.want, tok, prefixCmp); diff != "" {
				t.Errorf("token (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	s, p, clk := newTestStore(t)
	active, activeSecret, _ := s.Create(Spec{Namespace: "shop"})
	_, revokedSecret, _ := s.Create(Spec{Namespace: "shop"})
	revokedID, _, _ := Parse(revokedSecret)
	if _, err := s.Revoke(revokedID); err != nil {
		t.Fatal(err)
	}
	_, expiringSecret, _ := s.Create(Spec{Namespace: "shop", TTL: "1m"})
	clk.add(time.Minute)
	wrongSecret := active.ID + "." + strings.Repeat("A", 43)

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{name: "active", token: activeSecret},
		{name: "surrounding space", token: " " + activeSecret + "\n"},
		{name: "revoked", token: revokedSecret, want: ErrRevoked},
		{name: "expired", token: expiringSecret, want: ErrExpired},
		{name: "wrong secret", token: wrongSecret, want: ErrUnknown},
		{name: "unknown id", token: "0123456789abcdef." + strings.Repeat("A", 43), want: ErrUnknown},
		{name: "old format", token: strings.Repeat("A", 43), want: ErrOldFormat},
		{name: "empty", token: "", want: ErrMalformed},
		{name: "no secret", token: active.ID + ".", want: ErrMalformed},
		// A fixed id with letters: the upper case of a random id that happens
		// to be all digits is the id itself.
		{name: "upper-case id", token: "0123456789ABCDEF." + strings.Repeat("A", 43), want: ErrMalformed},
		{name: "secret not base64url", token: active.ID + "." + strings.Repeat("+", 43), want: ErrMalformed},
		{name: "secret too long", token: activeSecret + "AAAA", want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := s.Authenticate(tt.token)
			if tt.want == nil {
				if err != nil || tok.ID != active.ID {
					t.Fatalf("Authenticate = %+v, %v; want token %s", tok, err, active.ID)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Authenticate error = %v, want %v", err, tt.want)
			}
		})
	}

	// The store keeps only a hash of the secret, and a reopened store
	// knows every token and its state.
	for k, v := range p.m {
		_, secret, _ := Parse(activeSecret)
		if strings.Contains(string(v), secret) {
			t.Errorf("blob %s contains the secret", k)
		}
	}
	s2, err := Open(p, Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s.List(), s2.List(), prefixCmp); diff != "" {
		t.Errorf("reopened store lists (-before +after):\n%s", diff)
	}
	if _, err := s2.Authenticate(revokedSecret); !errors.Is(err, ErrRevoked) {
		t.Errorf("revocation lost on reopen: %v", err)
	}
}

func TestRevokeAndList(t *testing.T) {
	s, _, clk := newTestStore(t)
	a, _, _ := s.Create(Spec{Namespace: "a"})
	clk.add(time.Second)
	b, _, _ := s.Create(Spec{Namespace: "b"})
	if _, err := s.Revoke("ffffffffffffffff"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Revoke unknown = %v, want ErrNotFound", err)
	}
	clk.add(time.Second)
	r, err := s.Revoke(a.ID)
	if err != nil || !r.Revoked() || r.State(clk.now()) != "revoked" {
		t.Fatalf("Revoke = %+v, %v", r, err)
	}
	clk.add(time.Second)
	again, err := s.Revoke(a.ID)
	if err != nil || !again.RevokedAt.Equal(r.RevokedAt) {
		t.Errorf("second Revoke = %+v, %v; want unchanged revocation time %v", again, err, r.RevokedAt)
	}
	got := s.List()
	if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID || got[1].State(clk.now()) != "active" {
		t.Errorf("List = %+v, want a (revoked) then b (active)", got)
	}
	if _, err := s.Active(a.ID); !errors.Is(err, ErrRevoked) {
		t.Errorf("Active(revoked) = %v", err)
	}
}

func certWithOU(ous ...string) *x509.Certificate {
	return &x509.Certificate{Subject: pkix.Name{Organization: []string{"weft"}, OrganizationalUnit: ous}}
}

func TestScope(t *testing.T) {
	s, _, clk := newTestStore(t)
	scoped, _, _ := s.Create(Spec{Namespace: "shop", Services: []string{"orders"}, Addresses: []string{"10.1.0.0/16"}})
	open, _, _ := s.Create(Spec{Namespace: "shop"})
	revoked, _, _ := s.Create(Spec{Namespace: "shop"})
	expiring, _, _ := s.Create(Spec{Namespace: "shop", TTL: "1h"})
	if _, err := s.Revoke(revoked.ID); err != nil {
		t.Fatal(err)
	}
	clk.add(2 * time.Hour)

	var scope xds.ScopeFunc = s.Scope
	tests := []struct {
		name    string
		leaf    *x509.Certificate
		want    xds.Scope
		wantErr string
	}{
		{name: "scoped", leaf: certWithOU(CertOU(scoped.ID)), want: xds.Scope{Services: []string{"orders"}, Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}},
		{name: "unscoped", leaf: certWithOU(CertOU(open.ID))},
		{name: "revoked", leaf: certWithOU(CertOU(revoked.ID)), wantErr: "revoked"},
		{name: "expired", leaf: certWithOU(CertOU(expiring.ID)), wantErr: "expired"},
		{name: "unknown", leaf: certWithOU(CertOU("0123456789abcdef")), wantErr: "unknown join token"},
		{name: "no token OU", leaf: certWithOU(), wantErr: "not issued for a join token"},
		{name: "two token OUs", leaf: certWithOU(CertOU(scoped.ID), CertOU(open.ID)), wantErr: "not issued for a join token"},
		{name: "malformed OU", leaf: certWithOU("weft-token:XYZ"), wantErr: "not issued for a join token"},
		{name: "nil", wantErr: "no certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scope(tt.leaf)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Scope error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, prefixCmp); diff != "" {
				t.Errorf("scope (-want +got):\n%s", diff)
			}
		})
	}
}
