// Package tokens holds the join tokens with which workloads obtain their
// first mesh certificate. A token has a public ID and a secret, and a scope:
// the namespace (required), service account, services and extra addresses
// its workloads may use, and an optional expiry. Only a SHA-256 hash of the
// secret is stored, in the control plane's store; tokens are revoked, never
// deleted, so that `weft token list` keeps their history.
//
// A token is presented as "<id>.<secret>". Every certificate the CA issues
// for a token names it (see CertOU), so that renewals and xDS registrations
// stay bound to the token's scope and stop when it is revoked or expires.
package tokens

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"weft.dev/weft/internal/control/xds"
	"weft.dev/weft/internal/xdsmeta"
)

// ReservedNamespace is the control plane's own namespace
// (spiffe://<td>/ns/weft-system/sa/weft-control). No token may grant it.
const ReservedNamespace = xdsmeta.ControlNamespace

// DefaultNamespace is the namespace of the default token that `weft
// control` writes into its data dir.
const DefaultNamespace = "default"

// blobPrefix is where tokens live in the store: one blob per token.
const blobPrefix = "tokens/"

const (
	idBytes     = 8  // 16 hex digits
	secretBytes = 32 // 43 base64url characters
)

// Errors of Authenticate and Active; test with errors.Is.
var (
	// ErrMalformed: the string is not "<id>.<secret>".
	ErrMalformed = errors.New("malformed join token: want <id>.<secret> as printed by `weft token create`")
	// ErrOldFormat: an unscoped token of weft before scoped tokens.
	ErrOldFormat = errors.New("join token is in the old unscoped format, which is no longer accepted: use the join-token file `weft control` rewrote in its data dir, or create a scoped token with `weft token create`")
	// ErrUnknown: no such token, or the secret does not match.
	ErrUnknown = errors.New("unknown join token")
	// ErrRevoked: the token was revoked.
	ErrRevoked = errors.New("join token revoked")
	// ErrExpired: the token's TTL has passed.
	ErrExpired = errors.New("join token expired")
	// ErrNotFound: Get or Revoke of an ID that does not exist.
	ErrNotFound = errors.New("no such token")
)

// Token is a join token without its secret: what the API lists.
type Token struct {
	// ID is the public identifier, 16 hex digits.
	ID string `json:"id"`
	// Namespace is the only namespace the token's workloads may have.
	Namespace string `json:"namespace"`
	// ServiceAccount, if set, is the only service account they may have;
	// empty allows any service account of Namespace.
	ServiceAccount string `json:"serviceAccount,omitempty"`
	// Services, if set, are the only services (of Namespace) they may
	// join; empty allows any.
	Services []string `json:"services,omitempty"`
	// Addresses are prefixes they may register as their inbound address
	// besides the IP their xDS stream comes from.
	Addresses []netip.Prefix `json:"addresses,omitempty"`
	// Description says what the token is for.
	Description string `json:"description,omitempty"`
	// Created is when the token was created.
	Created time.Time `json:"created"`
	// Expires, if set, is when the token and every certificate issued for
	// it stop being valid.
	Expires time.Time `json:"expires,omitzero"`
	// RevokedAt, if set, is when the token was revoked.
	RevokedAt time.Time `json:"revokedAt,omitzero"`
}

// Revoked reports whether t was revoked.
func (t Token) Revoked() bool { return !t.RevokedAt.IsZero() }

// Expired reports whether t has expired at now.
func (t Token) Expired(now time.Time) bool { return !t.Expires.IsZero() && !now.Before(t.Expires) }

// State is "active", "revoked" or "expired" at now.
func (t Token) State(now time.Time) string {
	switch {
	case t.Revoked():
		return "revoked"
	case t.Expired(now):
		return "expired"
	}
	return "active"
}

// AllowsServiceAccount reports whether a workload with service account sa
// may use t.
func (t Token) AllowsServiceAccount(sa string) bool {
	return t.ServiceAccount == "" || t.ServiceAccount == sa
}

// Spec is what `weft token create` asks for.
type Spec struct {
	// Namespace is required; it must not be ReservedNamespace.
	Namespace string `json:"namespace"`
	// ServiceAccount is optional (empty: any in Namespace).
	ServiceAccount string `json:"serviceAccount,omitempty"`
	// Services are optional (empty: any in Namespace).
	Services []string `json:"services,omitempty"`
	// Addresses are optional CIDR prefixes, e.g. 10.0.0.0/24 or 10.0.0.7/32.
	Addresses []string `json:"addresses,omitempty"`
	// TTL is optional, as a Go duration ("24h", "90m"); empty: no expiry.
	TTL string `json:"ttl,omitempty"`
	// Description is optional free text (at most 200 bytes).
	Description string `json:"description,omitempty"`
}

// validate checks s and returns the token it describes, or an error naming
// the field.
func (s Spec) validate(now time.Time) (Token, error) {
	t := Token{Namespace: s.Namespace, ServiceAccount: s.ServiceAccount, Description: s.Description, Created: now.UTC().Truncate(time.Second)}
	switch {
	case s.Namespace == "":
		return t, errors.New("namespace: required")
	case !isDNS1123Label(s.Namespace):
		return t, fmt.Errorf("namespace: %q is not a DNS-1123 label (lowercase letters, digits and '-', at most 63)", s.Namespace)
	case s.Namespace == ReservedNamespace:
		return t, fmt.Errorf("namespace: %q is the control plane's own namespace; no token may grant it", s.Namespace)
	case s.ServiceAccount != "" && !isDNS1123Label(s.ServiceAccount):
		return t, fmt.Errorf("serviceAccount: %q is not a DNS-1123 label", s.ServiceAccount)
	case len(s.Description) > 200:
		return t, errors.New("description: longer than 200 bytes")
	}
	for i, svc := range s.Services {
		if !isDNS1123Label(svc) {
			return t, fmt.Errorf("services[%d]: %q is not a DNS-1123 label", i, svc)
		}
		if !slices.Contains(t.Services, svc) {
			t.Services = append(t.Services, svc)
		}
	}
	for i, a := range s.Addresses {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			addr, aerr := netip.ParseAddr(a)
			if aerr != nil {
				return t, fmt.Errorf("addresses[%d]: %q is neither a CIDR prefix nor an IP address", i, a)
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		p = p.Masked()
		if p.Bits() == 0 {
			return t, fmt.Errorf("addresses[%d]: %q allows every address; list the networks the workloads are on", i, a)
		}
		if !slices.Contains(t.Addresses, p) {
			t.Addresses = append(t.Addresses, p)
		}
	}
	if s.TTL != "" {
		d, err := time.ParseDuration(s.TTL)
		if err != nil {
			return t, fmt.Errorf("ttl: %w", err)
		}
		if d < time.Second {
			return t, fmt.Errorf("ttl: %s is shorter than 1s", d)
		}
		t.Expires = t.Created.Add(d)
	}
	return t, nil
}

// record is a token as stored.
type record struct {
	Token
	// SecretHash is SHA-256 of the secret.
	SecretHash []byte `json:"secretHash"`
}

// Persistence is where tokens are kept. The control plane passes its store.
type Persistence interface {
	// PutBlob stores val under key.
	PutBlob(key string, val []byte) error
	// BlobsWithPrefix returns every blob whose key starts with prefix.
	BlobsWithPrefix(prefix string) (map[string][]byte, error)
}

// Store is the set of tokens, cached in memory and written through to
// Persistence. It is safe for concurrent use.
type Store struct {
	p      Persistence
	logger *slog.Logger
	now    func() time.Time

	mu   sync.RWMutex
	byID map[string]*record
}

// Options configure Open.
type Options struct {
	// Logger logs every creation and revocation.
	Logger *slog.Logger
	// Now is the clock (time.Now if nil); tests move it.
	Now func() time.Time
}

// Open loads the tokens from p.
func Open(p Persistence, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	blobs, err := p.BlobsWithPrefix(blobPrefix)
	if err != nil {
		return nil, fmt.Errorf("tokens: loading: %w", err)
	}
	s := &Store{p: p, logger: opts.Logger, now: opts.Now, byID: make(map[string]*record, len(blobs))}
	for key, b := range blobs {
		r, err := decodeRecord(key, b) // shared.go
		if err != nil {
			return nil, err
		}
		s.byID[r.ID] = r
	}
	return s, nil
}

// Create validates spec, stores a new token and returns it with the token
// string "<id>.<secret>", which is shown only this once.
func (s *Store) Create(spec Spec) (Token, string, error) {
	t, err := spec.validate(s.now())
	if err != nil {
		return Token{}, "", err
	}
	id, secret, err := newIDAndSecret()
	if err != nil {
		return Token{}, "", err
	}
	t.ID = id
	sum := sha256.Sum256([]byte(secret))
	r := &record{Token: t, SecretHash: sum[:]}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.byID[id]; dup {
		return Token{}, "", errors.New("tokens: generated a duplicate ID; try again")
	}
	if err := s.put(r); err != nil {
		return Token{}, "", err
	}
	s.byID[id] = r
	s.logger.Info("created join token", "id", id, "namespace", t.Namespace, "service_account", t.ServiceAccount, "services", t.Services, "expires", t.Expires)
	return clone(r.Token), id + "." + secret, nil
}

// List returns every token, oldest first.
func (s *Store) List() []Token {
	s.mu.RLock()
	out := make([]Token, 0, len(s.byID))
	for _, r := range s.byID {
		out = append(out, clone(r.Token))
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Token) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Get returns the token with id, or ErrNotFound.
func (s *Store) Get(id string) (Token, error) {
	s.lookup(id) // another replica's token, not watched yet (shared.go)
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.byID[id]
	if !ok {
		return Token{}, fmt.Errorf("token %q: %w", id, ErrNotFound)
	}
	return clone(r.Token), nil
}

// Revoke marks the token with id revoked (again revoking a revoked token
// changes nothing) and returns it.
func (s *Store) Revoke(id string) (Token, error) {
	s.lookup(id) // another replica's token, not watched yet (shared.go)
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byID[id]
	if !ok {
		return Token{}, fmt.Errorf("token %q: %w", id, ErrNotFound)
	}
	if r.Revoked() {
		return clone(r.Token), nil
	}
	nr := *r
	nr.RevokedAt = s.now().UTC().Truncate(time.Second)
	if err := s.put(&nr); err != nil {
		return Token{}, err
	}
	s.byID[id] = &nr
	s.logger.Info("revoked join token", "id", id, "namespace", r.Namespace)
	return clone(nr.Token), nil
}

// Authenticate checks a token string "<id>.<secret>" and returns the
// token if it is known, its secret matches (compared in constant time)
// and it is neither revoked nor expired.
func (s *Store) Authenticate(token string) (Token, error) {
	id, secret, err := Parse(token)
	if err != nil {
		return Token{}, err
	}
	r, ok := s.lookup(id) // shared.go
	sum := sha256.Sum256([]byte(secret))
	if !ok || subtle.ConstantTimeCompare(sum[:], r.SecretHash) != 1 {
		return Token{}, fmt.Errorf("token %q: %w", id, ErrUnknown)
	}
	return s.check(r)
}

// Active returns the token with id if it exists and is neither revoked
// nor expired: the check behind renewals and xDS registrations.
func (s *Store) Active(id string) (Token, error) {
	r, ok := s.lookup(id) // shared.go
	if !ok {
		return Token{}, fmt.Errorf("token %q: %w", id, ErrUnknown)
	}
	return s.check(r)
}

func (s *Store) check(r *record) (Token, error) {
	switch {
	case r.Revoked():
		return Token{}, fmt.Errorf("token %q (revoked at %s): %w", r.ID, r.RevokedAt.Format(time.RFC3339), ErrRevoked)
	case r.Expired(s.now()):
		return Token{}, fmt.Errorf("token %q (expired at %s): %w", r.ID, r.Expires.Format(time.RFC3339), ErrExpired)
	}
	return clone(r.Token), nil
}

// Scope is the xds.ScopeFunc of the control plane: the services and
// addresses that the token named in a proxy's certificate allows. An
// unknown, revoked or expired token, or a certificate that names none, is
// an error.
func (s *Store) Scope(leaf *x509.Certificate) (xds.Scope, error) {
	id, err := IDFromCert(leaf)
	if err != nil {
		return xds.Scope{}, err
	}
	t, err := s.Active(id)
	if err != nil {
		return xds.Scope{}, err
	}
	return xds.Scope{Services: t.Services, Addresses: t.Addresses}, nil
}

var _ xds.ScopeFunc = (*Store)(nil).Scope

func (s *Store) put(r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("tokens: encoding %q: %w", r.ID, err)
	}
	if err := s.p.PutBlob(blobPrefix+r.ID, b); err != nil {
		return fmt.Errorf("tokens: storing %q: %w", r.ID, err)
	}
	return nil
}

// Parse splits a token string into its ID and secret.
func Parse(token string) (id, secret string, err error) {
	token = strings.TrimSpace(token)
	id, secret, ok := strings.Cut(token, ".")
	if !ok {
		if isOldFormat(token) {
			return "", "", ErrOldFormat
		}
		return "", "", ErrMalformed
	}
	if len(id) != 2*idBytes || !isLowerHex(id) || base64.RawURLEncoding.DecodedLen(len(secret)) != secretBytes {
		return "", "", ErrMalformed
	}
	if _, err := base64.RawURLEncoding.DecodeString(secret); err != nil {
		return "", "", ErrMalformed
	}
	return id, secret, nil
}

// isOldFormat recognises the join tokens of weft before scoped tokens: 32
// random bytes, base64url without padding, no ID.
func isOldFormat(tok string) bool {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	return err == nil && len(b) == 32
}

func newIDAndSecret() (string, string, error) {
	b := make([]byte, idBytes+secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("tokens: generating token: %w", err)
	}
	return hex.EncodeToString(b[:idBytes]), base64.RawURLEncoding.EncodeToString(b[idBytes:]), nil
}

// certOUPrefix marks the Subject OrganizationalUnit naming the token a
// certificate was issued for.
const certOUPrefix = "weft-token:"

// CertOU is the Subject OrganizationalUnit of a certificate issued for the
// token id: "weft-token:<id>". The CA sets it; it never copies a subject
// from a CSR, so only the CA can name a token in a certificate.
func CertOU(id string) string { return certOUPrefix + id }

// IDFromCert returns the token ID recorded in a certificate by the CA.
func IDFromCert(c *x509.Certificate) (string, error) {
	if c == nil {
		return "", errors.New("no certificate")
	}
	var id string
	n := 0
	for _, ou := range c.Subject.OrganizationalUnit {
		if v, ok := strings.CutPrefix(ou, certOUPrefix); ok {
			id, n = v, n+1
		}
	}
	if n != 1 || len(id) != 2*idBytes || !isLowerHex(id) {
		return "", errors.New("certificate was not issued for a join token (no single weft-token subject OU)")
	}
	return id, nil
}

func clone(t Token) Token {
	t.Services = slices.Clone(t.Services)
	t.Addresses = slices.Clone(t.Addresses)
	return t
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// isDNS1123Label reports whether s is a Kubernetes DNS-1123 label: 1 to 63
// lowercase letters, digits and '-', starting and ending alphanumeric.
func isDNS1123Label(s string) bool { return len(validation.IsDNS1123Label(s)) == 0 }
