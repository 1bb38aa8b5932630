package jwtauthn

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// Limits and defaults of verification.
const (
	// MaxTokenBytes bounds a token; a longer one is refused unparsed.
	MaxTokenBytes = 8 << 10
	// DefaultClockSkew is the exp/nbf tolerance when a rule sets none.
	DefaultClockSkew = 60 * time.Second
)

// signatureAlgorithms are the only algorithms accepted: "none" and the HMAC
// family (alg confusion with a public key) are refused by the parser.
var signatureAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// Header is one place a token is read from.
type Header struct {
	// Name of the request header.
	Name string
	// Prefix stripped before the token ("Bearer " for Authorization).
	Prefix string
}

// ClaimHeader copies a verified claim into a request header.
type ClaimHeader struct {
	Header string
	Claim  string
}

// Rule is one accepted issuer, as in a RequestAuthentication jwtRule.
type Rule struct {
	// Policy is "namespace/name" of the RequestAuthentication (metrics label).
	Policy string
	// Issuer must equal the token's iss.
	Issuer string
	// Audiences, when set, must intersect the token's aud.
	Audiences []string
	// JWKS is an inline key set document; set it or JWKSURI.
	JWKS []byte
	// JWKSURI is an https:// or file:// key set location, read through the
	// cache.
	JWKSURI string
	// FromHeaders lists token locations; empty means Authorization: Bearer.
	FromHeaders []Header
	// ForwardOriginalToken keeps the token header for the application.
	ForwardOriginalToken bool
	// OutputClaimToHeaders copies claims into request headers.
	OutputClaimToHeaders []ClaimHeader
	// ClockSkew is the exp/nbf tolerance; 0 means DefaultClockSkew.
	ClockSkew time.Duration
}

// compiledRule is a Rule ready for the request path.
type compiledRule struct {
	Rule
	inline   *jose.JSONWebKeySet
	expected jwt.Expected
	skew     time.Duration
}

// location is a distinct (header, prefix) a token may be read from, with
// the rules that read it.
type location struct {
	header string // canonical
	prefix string
	rules  []*compiledRule
}

// Verifier authenticates requests against the rules of one service. It is
// immutable and safe for concurrent use.
type Verifier struct {
	locations []location
	// strip lists every token and output-claim header: output headers are
	// always removed from the caller's request (they cannot be spoofed).
	outputHeaders []string
	uris          []string
}

// Error is an authentication failure: the request gets 401 with Reason.
type Error struct {
	// Policy is the RequestAuthentication whose rule refused the token, or
	// "" when no rule's issuer matched.
	Policy string
	// Result is the short metrics label, e.g. "expired" or "bad_signature".
	Result string
	// Reason is a short human-readable explanation for the 401 body.
	Reason string
}

func (e *Error) Error() string { return "jwt: " + e.Reason }

// Compile builds a Verifier from rules; JWKSURI rules read their keys from
// the cache given to Authenticate.
func Compile(rules []Rule) (*Verifier, error) {
	v := &Verifier{}
	issuers := map[string]bool{}
	for i := range rules {
		r := rules[i]
		if r.Issuer == "" {
			return nil, fmt.Errorf("jwt rule %d (%s): issuer is required", i, r.Policy)
		}
		cr := &compiledRule{Rule: r, skew: r.ClockSkew}
		if cr.skew == 0 {
			cr.skew = DefaultClockSkew
		}
		cr.expected = jwt.Expected{Issuer: r.Issuer, AnyAudience: jwt.Audience(r.Audiences)}
		switch {
		case len(r.JWKS) > 0 && r.JWKSURI != "":
			return nil, fmt.Errorf("jwt rule %d (%s, issuer %q): set jwks or jwksUri, not both", i, r.Policy, r.Issuer)
		case len(r.JWKS) > 0:
			set, err := weftv1.ParseJWKS(r.JWKS)
			if err != nil {
				return nil, fmt.Errorf("jwt rule %d (%s, issuer %q): %w", i, r.Policy, r.Issuer, err)
			}
			cr.inline = &set
		case r.JWKSURI != "":
			if !slices.Contains(v.uris, r.JWKSURI) {
				v.uris = append(v.uris, r.JWKSURI)
			}
		default:
			return nil, fmt.Errorf("jwt rule %d (%s, issuer %q): set jwks or jwksUri", i, r.Policy, r.Issuer)
		}
		if issuers[r.Issuer] {
			return nil, fmt.Errorf("jwt rule %d (%s): issuer %q appears twice", i, r.Policy, r.Issuer)
		}
		issuers[r.Issuer] = true
		hs := r.FromHeaders
		if len(hs) == 0 {
			hs = []Header{{Name: "Authorization", Prefix: "Bearer "}}
		}
		for _, h := range hs {
			v.addLocation(http.CanonicalHeaderKey(h.Name), h.Prefix, cr)
		}
		for _, c := range r.OutputClaimToHeaders {
			ch := http.CanonicalHeaderKey(c.Header)
			if !slices.Contains(v.outputHeaders, ch) {
				v.outputHeaders = append(v.outputHeaders, ch)
			}
		}
	}
	return v, nil
}

func (v *Verifier) addLocation(header, prefix string, cr *compiledRule) {
	for i := range v.locations {
		if v.locations[i].header == header && v.locations[i].prefix == prefix {
			v.locations[i].rules = append(v.locations[i].rules, cr)
			return
		}
	}
	v.locations = append(v.locations, location{header: header, prefix: prefix, rules: []*compiledRule{cr}})
}

// URIs lists the jwksUri locations the verifier reads from its cache.
func (v *Verifier) URIs() []string { return slices.Clone(v.uris) }

// Authenticate checks the token of a request with header h at time now,
// reading jwksUri key sets from keys (nil refuses tokens of such rules). It
// returns (nil, nil) when the request carries no token, the verified
// principal when it carries a valid one, or an *Error (401) otherwise. It
// edits h: output-claim headers sent by the caller are always removed, the
// token header is removed unless the rule forwards it, and claims are
// copied into their headers.
func (v *Verifier) Authenticate(h http.Header, now time.Time, keys *JWKSCache) (*Principal, error) {
	if v == nil {
		return nil, nil
	}
	for _, oh := range v.outputHeaders {
		delete(h, oh)
	}
	for li := range v.locations {
		loc := &v.locations[li]
		vals := h[loc.header]
		if len(vals) == 0 {
			continue
		}
		if len(vals) > 1 {
			return nil, &Error{Policy: loc.rules[0].Policy, Result: "malformed", Reason: "more than one " + loc.header + " header"}
		}
		raw, ok := strings.CutPrefix(vals[0], loc.prefix)
		if !ok && loc.prefix != "" {
			// Case-insensitive scheme ("bearer x"), per RFC 9110 §11.1.
			if len(vals[0]) >= len(loc.prefix) && strings.EqualFold(vals[0][:len(loc.prefix)], loc.prefix) {
				raw, ok = vals[0][len(loc.prefix):], true
			}
		}
		if !ok {
			// Another scheme (e.g. Basic): not a token of ours.
			continue
		}
		p, cr, err := v.verify(loc, strings.TrimSpace(raw), now, keys)
		if err != nil {
			return nil, err
		}
		if !cr.ForwardOriginalToken {
			delete(h, loc.header)
		}
		for _, c := range cr.OutputClaimToHeaders {
			if s, ok := claimString(p.Claims[c.Claim]); ok {
				h.Set(c.Header, s)
			}
		}
		return p, nil
	}
	return nil, nil
}

// verify checks one raw token against the rules of its location.
func (v *Verifier) verify(loc *location, raw string, now time.Time, cache *JWKSCache) (*Principal, *compiledRule, error) {
	fail := func(policy, result, reason string) (*Principal, *compiledRule, error) {
		return nil, nil, &Error{Policy: policy, Result: result, Reason: reason}
	}
	if len(raw) > MaxTokenBytes {
		return fail("", "too_large", "token larger than "+strconv.Itoa(MaxTokenBytes)+" bytes")
	}
	if raw == "" {
		return fail("", "malformed", "empty token")
	}
	tok, err := jwt.ParseSigned(raw, signatureAlgorithms)
	if err != nil {
		if _, ok := errors.AsType[*jose.ErrUnexpectedSignatureAlgorithm](err); ok {
			return fail("", "bad_algorithm", "token algorithm not accepted (RS256, ES256, EdDSA)")
		}
		return fail("", "malformed", "malformed token")
	}
	if len(tok.Headers) != 1 {
		return fail("", "malformed", "token must have one signature")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return fail("", "malformed", "malformed token claims")
	}
	var cr *compiledRule
	for _, r := range loc.rules {
		if r.Issuer == unverified.Issuer {
			cr = r
			break
		}
	}
	if cr == nil {
		return fail("", "unknown_issuer", "token issuer not accepted")
	}
	keys := cr.inline
	if keys == nil {
		if cache == nil {
			return fail(cr.Policy, "jwks_unavailable", "issuer keys unavailable")
		}
		keys, err = cache.keys(cr.JWKSURI, now)
		if err != nil {
			return fail(cr.Policy, "jwks_unavailable", "issuer keys unavailable")
		}
	}
	hdr := tok.Headers[0]
	candidates := keys.Keys
	if hdr.KeyID != "" {
		candidates = keys.Key(hdr.KeyID)
		if len(candidates) == 0 {
			return fail(cr.Policy, "unknown_kid", "token key id not in the issuer's key set")
		}
	}
	var claims jwt.Claims
	var all map[string]any
	verified := false
	for i := range candidates {
		k := &candidates[i]
		if k.Algorithm != "" && k.Algorithm != hdr.Algorithm {
			continue
		}
		if err := tok.Claims(k.Key, &claims, &all); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return fail(cr.Policy, "bad_signature", "token signature invalid")
	}
	if err := claims.ValidateWithLeeway(cr.expected.WithTime(now), cr.skew); err != nil {
		switch {
		case errors.Is(err, jwt.ErrExpired):
			return fail(cr.Policy, "expired", "token expired")
		case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
			return fail(cr.Policy, "not_yet_valid", "token not yet valid")
		case errors.Is(err, jwt.ErrInvalidAudience):
			return fail(cr.Policy, "bad_audience", "token audience not accepted")
		case errors.Is(err, jwt.ErrInvalidIssuer):
			return fail(cr.Policy, "unknown_issuer", "token issuer not accepted")
		default:
			return fail(cr.Policy, "invalid", "token claims invalid")
		}
	}
	return &Principal{Issuer: claims.Issuer, Subject: claims.Subject, Audiences: claims.Audience, Claims: all, Policy: cr.Policy}, cr, nil
}

// claimString renders a claim for a header: strings as is, numbers and
// booleans in JSON form, string lists joined with ",". Other shapes, and
// values with control characters, are not copied.
func claimString(v any) (string, bool) {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case float64:
		s = strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		s = strconv.FormatBool(v)
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			es, ok := e.(string)
			if !ok {
				return "", false
			}
			parts = append(parts, es)
		}
		s = strings.Join(parts, ",")
	default:
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return "", false
		}
	}
	return s, true
}
