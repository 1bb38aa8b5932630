package api

import (
	"strings"
	"testing"
)

// TestValidateRequestAuthentication decodes RequestAuthentication documents
// that are each wrong in one way and checks that the error names the field.
func TestValidateRequestAuthentication(t *testing.T) {
	const head = "apiVersion: weft.dev/v1alpha1\nkind: RequestAuthentication\nmetadata: {name: ra}\nspec:\n  targetRef: {name: web}\n"
	const uri = "jwksUri: https://idp.example.com/jwks"
	const okJWKS = `{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`
	const privJWKS = `{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}]}`
	tests := []struct {
		name, in, want string
	}{
		{"ok uri", head + "  jwtRules: [{issuer: a, " + uri + "}]\n", ""},
		{"ok file", head + "  jwtRules: [{issuer: a, jwksUri: \"file:///etc/jwks.json\"}]\n", ""},
		{"ok inline", head + "  jwtRules: [{issuer: a, jwks: '" + okJWKS + "'}]\n", ""},
		{"no target", "apiVersion: weft.dev/v1alpha1\nkind: RequestAuthentication\nmetadata: {name: ra}\nspec:\n  jwtRules: [{issuer: a, " + uri + "}]\n", "spec.targetRef.name: required"},
		{"target kind", "apiVersion: weft.dev/v1alpha1\nkind: RequestAuthentication\nmetadata: {name: ra}\nspec:\n  targetRef: {kind: Pod, name: x}\n  jwtRules: [{issuer: a, " + uri + "}]\n", `spec.targetRef.kind: must be Service, got "Pod"`},
		{"no rules", head, "spec.jwtRules: at least one rule is required"},
		{"too many rules", head + "  jwtRules: [" + strings.Repeat("{issuer: a, "+uri+"},", 17) + "]\n", "spec.jwtRules: at most 16 rules, got 17"},
		{"no issuer", head + "  jwtRules: [{" + uri + "}]\n", "spec.jwtRules[0].issuer: required"},
		{"dup issuer", head + "  jwtRules: [{issuer: a, " + uri + "}, {issuer: a, " + uri + "}]\n", "spec.jwtRules[1].issuer: duplicates jwtRules[0]"},
		{"empty audience", head + "  jwtRules: [{issuer: a, audiences: [\"\"], " + uri + "}]\n", "spec.jwtRules[0].audiences[0]: must not be empty"},
		{"no keys source", head + "  jwtRules: [{issuer: a}]\n", "spec.jwtRules[0]: set jwks (inline) or jwksUri"},
		{"both sources", head + "  jwtRules: [{issuer: a, jwks: '" + okJWKS + "', " + uri + "}]\n", "spec.jwtRules[0]: set only one of jwks and jwksUri"},
		{"http uri", head + "  jwtRules: [{issuer: a, jwksUri: \"http://idp/jwks\"}]\n", `spec.jwtRules[0].jwksUri: must be an https:// or file:// URL`},
		{"relative file", head + "  jwtRules: [{issuer: a, jwksUri: \"file://etc/jwks\"}]\n", `spec.jwtRules[0].jwksUri: a file URL must be file:///absolute/path`},
		{"uri user", head + "  jwtRules: [{issuer: a, jwksUri: \"https://u:p@idp/jwks\"}]\n", `spec.jwtRules[0].jwksUri: must be https://host/path without user info`},
		{"bad inline", head + "  jwtRules: [{issuer: a, jwks: '{\"keys\": 1}'}]\n", "spec.jwtRules[0].jwks: not a JSON Web Key Set"},
		{"empty inline", head + "  jwtRules: [{issuer: a, jwks: '{\"keys\": []}'}]\n", "spec.jwtRules[0].jwks: holds no keys"},
		{"private inline", head + "  jwtRules: [{issuer: a, jwks: '" + privJWKS + "'}]\n", `spec.jwtRules[0].jwks: key 0 (kid "k1") is not a public key`},
		{"header name", head + "  jwtRules: [{issuer: a, " + uri + ", fromHeaders: [{name: \"x y\"}]}]\n", `spec.jwtRules[0].fromHeaders[0].name: invalid header name "x y"`},
		{"claim header", head + "  jwtRules: [{issuer: a, " + uri + ", outputClaimToHeaders: [{header: \"a:b\", claim: sub}]}]\n", `spec.jwtRules[0].outputClaimToHeaders[0].header: invalid header name`},
		{"claim header is token header", head + "  jwtRules: [{issuer: a, " + uri + ", outputClaimToHeaders: [{header: authorization, claim: sub}]}]\n", `spec.jwtRules[0].outputClaimToHeaders[0].header: "authorization" is also a token header`},
		{"claim header host", head + "  jwtRules: [{issuer: a, " + uri + ", outputClaimToHeaders: [{header: host, claim: sub}]}]\n", `spec.jwtRules[0].outputClaimToHeaders[0].header: "host" cannot be set from a claim`},
		{"claim name", head + "  jwtRules: [{issuer: a, " + uri + ", outputClaimToHeaders: [{header: x-user}]}]\n", "spec.jwtRules[0].outputClaimToHeaders[0].claim: required"},
		{"skew format", head + "  jwtRules: [{issuer: a, " + uri + ", clockSkew: \"5\"}]\n", `spec.jwtRules[0].clockSkew: invalid duration "5"`},
		{"skew too long", head + "  jwtRules: [{issuer: a, " + uri + ", clockSkew: 1h}]\n", "spec.jwtRules[0].clockSkew: must be between 0s and 5m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestRequestAuthenticationDefaults checks the Authorization: Bearer default
// and the short name.
func TestRequestAuthenticationDefaults(t *testing.T) {
	objs, err := Decode([]byte("apiVersion: weft.dev/v1alpha1\nkind: RequestAuthentication\nmetadata: {name: ra}\nspec:\n  targetRef: {name: web}\n  jwtRules: [{issuer: a, jwksUri: \"https://idp/jwks\"}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	ra := objs[0].(*RequestAuthentication)
	if got := ra.Spec.JWTRules[0].FromHeaders; len(got) != 1 || got[0].Name != DefaultJWTHeader || got[0].Prefix != DefaultJWTPrefix {
		t.Fatalf("fromHeaders = %+v, want Authorization/Bearer", got)
	}
	if ra.Spec.TargetRef.Kind != KindService {
		t.Fatalf("targetRef.kind = %q", ra.Spec.TargetRef.Kind)
	}
	if k, err := NormalizeKind("ra"); err != nil || k != KindRequestAuthentication {
		t.Fatalf("NormalizeKind(ra) = %q, %v", k, err)
	}
}
