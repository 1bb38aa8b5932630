package xdsgen

import (
	"slices"
	"strings"
	"testing"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

func decodeSet(t *testing.T, doc string) *api.Set {
	t.Helper()
	objs, err := api.Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	set, err := api.NewSet(objs)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

const raOrders = `apiVersion: weft.dev/v1alpha1
kind: RequestAuthentication
metadata: {name: orders-jwt}
spec:
  targetRef: {name: orders}
  jwtRules:
  - issuer: https://issuer.test
    audiences: [orders]
    jwksUri: https://issuer.test/jwks
    outputClaimToHeaders: [{header: x-user, claim: sub}]
    clockSkew: 30s
`

// TestJWTRulesCompiledAndAttributed checks that a RequestAuthentication
// lands, defaulted, in its target Service's resource (and in no other), that
// the result passes weftv1.ValidateService, and that Routing.Update reports
// exactly the target when it changes.
func TestJWTRulesCompiledAndAttributed(t *testing.T) {
	orders := &mesh.Service{Name: "orders", Namespace: "default"}
	web := &mesh.Service{Name: "web", Namespace: "default"}
	r := NewRouting(&api.Set{})
	if got := r.Service(orders).GetJwtRules(); len(got) != 0 {
		t.Fatalf("rules without a RequestAuthentication: %v", got)
	}
	cfg := decodeSet(t, raOrders)
	next, keys, all := r.Update(cfg)
	if all || !slices.Equal(keys, []string{weftv1.ResourceName("orders", "default")}) {
		t.Fatalf("Update keys = %v, all = %v; want only orders", keys, all)
	}
	for _, rr := range []*Routing{next, NewRouting(cfg)} {
		svc := rr.Service(orders)
		if err := weftv1.ValidateService(svc); err != nil {
			t.Fatal(err)
		}
		rules := svc.GetJwtRules()
		if len(rules) != 1 {
			t.Fatalf("rules = %v", rules)
		}
		jr := rules[0]
		if jr.GetPolicy() != "default/orders-jwt" || jr.GetIssuer() != "https://issuer.test" || jr.GetClockSkewMs() != 30000 ||
			len(jr.GetFromHeaders()) != 1 || jr.GetFromHeaders()[0].GetName() != "Authorization" || jr.GetFromHeaders()[0].GetPrefix() != "Bearer " ||
			len(jr.GetOutputClaimToHeaders()) != 1 || jr.GetForwardOriginalToken() {
			t.Fatalf("rule = %v", jr)
		}
		if got := rr.Service(web).GetJwtRules(); len(got) != 0 {
			t.Fatalf("web got orders' rules: %v", got)
		}
	}
	// Removing it reports orders again and clears its rules.
	gone, keys, _ := next.Update(&api.Set{})
	if !slices.Equal(keys, []string{weftv1.ResourceName("orders", "default")}) || len(gone.Service(orders).GetJwtRules()) != 0 {
		t.Fatalf("after delete: keys %v, rules %v", keys, gone.Service(orders).GetJwtRules())
	}
}

// TestValidateServiceJWT checks the shared validation of JWT rules.
func TestValidateServiceJWT(t *testing.T) {
	ok := func() *weftv1.JwtRule {
		return &weftv1.JwtRule{Policy: "ns/p", Issuer: "i", JwksUri: "https://idp/jwks", FromHeaders: []*weftv1.JwtHeader{{Name: "Authorization", Prefix: "Bearer "}}}
	}
	tests := []struct {
		name  string
		mod   func(*weftv1.JwtRule)
		rules int
		want  string
	}{
		{"ok", func(*weftv1.JwtRule) {}, 1, ""},
		{"no policy", func(r *weftv1.JwtRule) { r.Policy = "" }, 1, "jwt_rules[0].policy: must not be empty"},
		{"no issuer", func(r *weftv1.JwtRule) { r.Issuer = "" }, 1, "jwt_rules[0].issuer: must not be empty"},
		{"both key sources", func(r *weftv1.JwtRule) { r.Jwks = `{"keys":[]}` }, 1, "jwt_rules[0].jwks: set exactly one"},
		{"bad inline", func(r *weftv1.JwtRule) { r.JwksUri, r.Jwks = "", `{"keys":[]}` }, 1, "jwt_rules[0].jwks: jwks: no public signing key"},
		{"http uri", func(r *weftv1.JwtRule) { r.JwksUri = "http://idp/jwks" }, 1, "jwt_rules[0].jwks_uri:"},
		{"no headers", func(r *weftv1.JwtRule) { r.FromHeaders = nil }, 1, "jwt_rules[0].from_headers: must not be empty"},
		{"bad claim header", func(r *weftv1.JwtRule) {
			r.OutputClaimToHeaders = []*weftv1.JwtClaimToHeader{{Header: "a b", Claim: "sub"}}
		}, 1, "jwt_rules[0].output_claim_to_headers[0].header"},
		{"skew", func(r *weftv1.JwtRule) { r.ClockSkewMs = weftv1.MaxClockSkewMs + 1 }, 1, "jwt_rules[0].clock_skew_ms"},
		{"duplicate issuer", func(*weftv1.JwtRule) {}, 2, "jwt_rules[1].issuer: \"i\" is also the issuer of jwt_rules[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &weftv1.Service{Name: "s", Namespace: "ns"}
			for range tt.rules {
				r := ok()
				tt.mod(r)
				svc.JwtRules = append(svc.JwtRules, r)
			}
			err := weftv1.ValidateService(svc)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestJWTRulesAcrossPolicies checks that two RequestAuthentications for one
// Service add up, in configuration order, and that the same issuer in both
// is caught by the shared validation the API runs before storing.
func TestJWTRulesAcrossPolicies(t *testing.T) {
	orders := &mesh.Service{Name: "orders", Namespace: "default"}
	second := `---
apiVersion: weft.dev/v1alpha1
kind: RequestAuthentication
metadata: {name: orders-batch}
spec:
  targetRef: {name: orders}
  jwtRules: [{issuer: ISSUER, jwksUri: "file:///etc/batch.json"}]
`
	svc := NewRouting(decodeSet(t, raOrders+strings.ReplaceAll(second, "ISSUER", "batch"))).Service(orders)
	if err := weftv1.ValidateService(svc); err != nil {
		t.Fatal(err)
	}
	var policies []string
	for _, r := range svc.GetJwtRules() {
		policies = append(policies, r.GetPolicy())
	}
	if !slices.Equal(policies, []string{"default/orders-batch", "default/orders-jwt"}) {
		t.Fatalf("policies = %v", policies)
	}
	dup := NewRouting(decodeSet(t, raOrders+strings.ReplaceAll(second, "ISSUER", "https://issuer.test"))).Service(orders)
	if err := weftv1.ValidateService(dup); err == nil || !strings.Contains(err.Error(), `jwt_rules[1].issuer: "https://issuer.test" is also the issuer of jwt_rules[0] (default/orders-batch)`) {
		t.Fatalf("err = %v, want the duplicate issuer named", err)
	}
}
