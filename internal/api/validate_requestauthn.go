package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Default fills in defaults: targetRef kind Service and, per rule, the
// Authorization: Bearer header.
func (r *RequestAuthentication) Default() {
	if r.Spec.TargetRef.Kind == "" {
		r.Spec.TargetRef.Kind = KindService
	}
	for i := range r.Spec.JWTRules {
		if len(r.Spec.JWTRules[i].FromHeaders) == 0 {
			r.Spec.JWTRules[i].FromHeaders = []JWTHeader{{Name: DefaultJWTHeader, Prefix: DefaultJWTPrefix}}
		}
	}
}

// Validate checks the RequestAuthentication and names every offending field.
func (r *RequestAuthentication) Validate() error { return Validate(r) }

func (r *RequestAuthentication) validate(e *errs) {
	p := fieldPath("spec")
	validateTargetRef(e, p.child("targetRef"), r.Spec.TargetRef)
	switch n := len(r.Spec.JWTRules); {
	case n == 0:
		e.add(p.child("jwtRules"), "at least one rule is required")
	case n > MaxJWTRules:
		e.add(p.child("jwtRules"), "at most %d rules, got %d", MaxJWTRules, n)
	}
	issuers := map[string]int{}
	for i, rule := range r.Spec.JWTRules {
		rp := p.child("jwtRules").index(i)
		if rule.Issuer == "" {
			e.add(rp.child("issuer"), "required")
		} else if j, dup := issuers[rule.Issuer]; dup {
			e.add(rp.child("issuer"), "duplicates jwtRules[%d]: one rule per issuer", j)
		} else {
			issuers[rule.Issuer] = i
		}
		for k, a := range rule.Audiences {
			if a == "" {
				e.add(rp.child("audiences").index(k), "must not be empty")
			}
		}
		validateJWKSSource(e, rp, rule)
		seen := map[string]bool{}
		for k, h := range rule.FromHeaders {
			hp := rp.child("fromHeaders").index(k)
			if !validHeaderName(h.Name) {
				e.add(hp.child("name"), "invalid header name %q", h.Name)
			}
			seen[http.CanonicalHeaderKey(h.Name)] = true
		}
		for k, c := range rule.OutputClaimToHeaders {
			cp := rp.child("outputClaimToHeaders").index(k)
			if !validHeaderName(c.Header) {
				e.add(cp.child("header"), "invalid header name %q", c.Header)
			} else if seen[http.CanonicalHeaderKey(c.Header)] {
				e.add(cp.child("header"), "%q is also a token header (fromHeaders)", c.Header)
			} else if ch := http.CanonicalHeaderKey(c.Header); ch == "Host" || ch == "Content-Length" || ch == "Transfer-Encoding" || ch == "Connection" {
				e.add(cp.child("header"), "%q cannot be set from a claim", c.Header)
			}
			if c.Claim == "" {
				e.add(cp.child("claim"), "required")
			}
		}
		if rule.ClockSkew != "" {
			d, err := time.ParseDuration(rule.ClockSkew)
			maxSkew, _ := time.ParseDuration(MaxClockSkew)
			switch {
			case err != nil:
				e.add(rp.child("clockSkew"), "invalid duration %q: use a number with a unit, e.g. \"30s\"", rule.ClockSkew)
			case d < 0 || d > maxSkew:
				e.add(rp.child("clockSkew"), "must be between 0s and %s, got %s", MaxClockSkew, rule.ClockSkew)
			}
		}
	}
}

// validateJWKSSource checks that exactly one of jwks and jwksUri is set and
// that it is usable.
func validateJWKSSource(e *errs, rp fieldPath, rule JWTRule) {
	switch {
	case rule.JWKS == "" && rule.JWKSURI == "":
		e.add(rp, "set jwks (inline) or jwksUri")
	case rule.JWKS != "" && rule.JWKSURI != "":
		e.add(rp, "set only one of jwks and jwksUri")
	case rule.JWKS != "":
		if len(rule.JWKS) > MaxInlineJWKSBytes {
			e.add(rp.child("jwks"), "at most %d bytes, got %d", MaxInlineJWKSBytes, len(rule.JWKS))
			return
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal([]byte(rule.JWKS), &set); err != nil {
			e.add(rp.child("jwks"), "not a JSON Web Key Set: %v", err)
			return
		}
		if len(set.Keys) == 0 {
			e.add(rp.child("jwks"), "holds no keys")
		}
		for k, key := range set.Keys {
			if !key.IsPublic() {
				e.add(rp.child("jwks"), "key %d (kid %q) is not a public key", k, key.KeyID)
			}
		}
	default:
		u, err := url.Parse(rule.JWKSURI)
		switch {
		case err != nil:
			e.add(rp.child("jwksUri"), "invalid URL: %v", err)
		case u.Scheme == "https":
			if u.Host == "" || u.User != nil || u.Fragment != "" {
				e.add(rp.child("jwksUri"), "must be https://host/path without user info or fragment, got %q", rule.JWKSURI)
			}
		case u.Scheme == "file":
			if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
				e.add(rp.child("jwksUri"), "a file URL must be file:///absolute/path, got %q", rule.JWKSURI)
			}
		default:
			e.add(rp.child("jwksUri"), "must be an https:// or file:// URL, got %q", rule.JWKSURI)
		}
	}
}
