package weftv1

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// Limits of JWT rules, shared by the API, the control plane and the proxy.
const (
	// MaxJWTRules bounds the JWT rules of one service.
	MaxJWTRules = 32
	// MaxJWKSBytes bounds a key set document, inline or fetched.
	MaxJWKSBytes = 256 << 10
	// MaxJWKSKeys bounds the keys of one key set.
	MaxJWKSKeys = 64
	// MaxClockSkewMs bounds a rule's clock skew (5 minutes).
	MaxClockSkewMs = 5 * 60 * 1000
)

// ParseJWKS decodes a JSON Web Key Set and keeps its usable public signing
// keys (valid, public, use "sig" or unset); it fails when none is left or
// the document or set is too large. The proxy verifies with exactly the keys
// it returns.
func ParseJWKS(b []byte) (jose.JSONWebKeySet, error) {
	if len(b) > MaxJWKSBytes {
		return jose.JSONWebKeySet{}, fmt.Errorf("jwks: %d bytes, at most %d", len(b), MaxJWKSBytes)
	}
	var raw jose.JSONWebKeySet
	if err := json.Unmarshal(b, &raw); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("jwks: %w", err)
	}
	if len(raw.Keys) > MaxJWKSKeys {
		return jose.JSONWebKeySet{}, fmt.Errorf("jwks: %d keys, at most %d", len(raw.Keys), MaxJWKSKeys)
	}
	var out jose.JSONWebKeySet
	for _, k := range raw.Keys {
		if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		out.Keys = append(out.Keys, k)
	}
	if len(out.Keys) == 0 {
		return jose.JSONWebKeySet{}, errors.New("jwks: no public signing key")
	}
	return out, nil
}

// validateJWTRules checks the JWT rules of a service; the error names the
// field, e.g. "jwt_rules[1].jwks_uri: scheme must be https or file".
func validateJWTRules(rules []*JwtRule) error {
	if len(rules) > MaxJWTRules {
		return fmt.Errorf("jwt_rules: %d rules, at most %d", len(rules), MaxJWTRules)
	}
	issuers := make(map[string]int, len(rules))
	for i, r := range rules {
		if err := ValidateJWTRule(r); err != nil {
			return fmt.Errorf("jwt_rules[%d].%w", i, err)
		}
		if j, dup := issuers[r.GetIssuer()]; dup {
			return fmt.Errorf("jwt_rules[%d].issuer: %q is also the issuer of jwt_rules[%d] (%s)", i, r.GetIssuer(), j, rules[j].GetPolicy())
		}
		issuers[r.GetIssuer()] = i
	}
	return nil
}

// ValidateJWTRule reports whether a proxy can compile r; the error starts
// with the offending field's name.
func ValidateJWTRule(r *JwtRule) error {
	if r.GetPolicy() == "" {
		return errors.New("policy: must not be empty")
	}
	if r.GetIssuer() == "" {
		return errors.New("issuer: must not be empty")
	}
	switch {
	case (r.GetJwks() == "") == (r.GetJwksUri() == ""):
		return errors.New("jwks: set exactly one of jwks and jwks_uri")
	case r.GetJwks() != "":
		if _, err := ParseJWKS([]byte(r.GetJwks())); err != nil {
			return fmt.Errorf("jwks: %w", err)
		}
	default:
		u, err := url.Parse(r.GetJwksUri())
		switch {
		case err != nil:
			return fmt.Errorf("jwks_uri: %w", err)
		case u.Scheme == "https" && u.Host != "" && u.User == nil:
		case u.Scheme == "file" && u.Host == "" && strings.HasPrefix(u.Path, "/"):
		default:
			return fmt.Errorf("jwks_uri: %q must be https://host/path or file:///path", r.GetJwksUri())
		}
	}
	if len(r.GetFromHeaders()) == 0 {
		return errors.New("from_headers: must not be empty")
	}
	for i, h := range r.GetFromHeaders() {
		if !validToken(h.GetName()) {
			return fmt.Errorf("from_headers[%d].name: invalid header name %q", i, h.GetName())
		}
	}
	for i, c := range r.GetOutputClaimToHeaders() {
		if !validToken(c.GetHeader()) {
			return fmt.Errorf("output_claim_to_headers[%d].header: invalid header name %q", i, c.GetHeader())
		}
		if c.GetClaim() == "" {
			return fmt.Errorf("output_claim_to_headers[%d].claim: must not be empty", i)
		}
	}
	if r.GetClockSkewMs() > MaxClockSkewMs {
		return fmt.Errorf("clock_skew_ms: %d exceeds %d", r.GetClockSkewMs(), MaxClockSkewMs)
	}
	return nil
}

// validToken reports whether s is an RFC 9110 token (a header name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
