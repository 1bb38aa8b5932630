// Package jwtauthn verifies JSON Web Tokens on the server-side proxy, as
// declared by RequestAuthentication resources. A Verifier is compiled once
// per config push and is immutable; key sets named by jwksUri live in a
// JWKSCache shared across pushes that fetches, caches and refreshes them.
//
// Semantics follow Istio: a request that carries a token (in one of the
// configured headers, with the configured prefix) must present a valid one
// or it is refused with 401; a request without a token passes
// unauthenticated, and an AuthorizationPolicy that requires a request
// principal is what refuses it.
package jwtauthn

import (
	"context"
)

// Principal is the verified identity of a request's JWT. The authorization
// layer reads it with FromContext: from.requestPrincipals matches
// RequestPrincipal() ("iss/sub") and when conditions on
// request.auth.claims[name] read Claim(name).
type Principal struct {
	// Issuer is the token's verified "iss" claim.
	Issuer string
	// Subject is the token's "sub" claim ("" when absent).
	Subject string
	// Audiences is the token's "aud" claim.
	Audiences []string
	// Claims holds every claim of the token as decoded from JSON (strings,
	// float64 numbers, bools, []any, map[string]any). Treat it as read-only.
	Claims map[string]any
	// Policy is "namespace/name" of the RequestAuthentication whose rule
	// accepted the token.
	Policy string
}

// RequestPrincipal returns "iss/sub", the form AuthorizationPolicy's
// from.requestPrincipals matches.
func (p *Principal) RequestPrincipal() string { return p.Issuer + "/" + p.Subject }

// Principal returns RequestPrincipal(); with Claim it lets *Principal serve
// as the authorization layer's view of a request's authentication
// (interface { Principal() string; Claim(string) []string }).
func (p *Principal) Principal() string { return p.RequestPrincipal() }

// Claim returns claim name as a list of strings: a string claim is one
// element, a list keeps its string elements, anything else is nil. It is
// how when conditions on request.auth.claims[name] should read a claim.
func (p *Principal) Claim(name string) []string {
	switch v := p.Claims[name].(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

type ctxKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the verified principal of the request whose context
// is ctx, or nil and false when the request carried no token (or no
// RequestAuthentication applies).
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(*Principal)
	return p, ok && p != nil
}
