package authz

import (
	"fmt"
	"testing"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// twentyRules is one DENY policy and one ALLOW policy with 20 rules in
// all, none of which the benchmark request matches until the last ALLOW
// rule: the worst case for a 20-rule configuration.
func twentyRules(tb testing.TB) *Set {
	var deny, allow []*weftv1.AuthzRule
	for i := range 10 {
		deny = append(deny, &weftv1.AuthzRule{
			From: []*weftv1.AuthzFrom{{Namespaces: []string{fmt.Sprintf("ns-%d", i)}}},
			To:   []*weftv1.AuthzTo{{Paths: []string{fmt.Sprintf("/admin/%d/*", i)}, Methods: []string{"DELETE"}}},
		})
	}
	for i := range 9 {
		allow = append(allow, &weftv1.AuthzRule{
			From: []*weftv1.AuthzFrom{{Identities: []string{fmt.Sprintf("spiffe://cluster.local/ns/x/sa/s%d", i)}}},
			To:   []*weftv1.AuthzTo{{Paths: []string{"/api/*"}, Methods: []string{"GET", "POST"}}},
			When: []*weftv1.AuthzCondition{{Key: "request.headers[x-tenant]", Values: []string{fmt.Sprintf("t%d", i)}}},
		})
	}
	allow = append(allow, &weftv1.AuthzRule{
		From: []*weftv1.AuthzFrom{{Namespaces: []string{"shop"}}},
		To:   []*weftv1.AuthzTo{{Paths: []string{"/api/*"}, Methods: []string{"GET"}}},
		When: []*weftv1.AuthzCondition{{Key: "request.headers[x-tenant]", Values: []string{"acme"}}},
	})
	set, err := Compile([]*weftv1.AuthzPolicy{pol("ns/deny", weftv1.AuthzPolicy_DENY, deny...), pol("ns/allow", weftv1.AuthzPolicy_ALLOW, allow...)}, true)
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

func BenchmarkAuthorize20Rules(b *testing.B) {
	set := twentyRules(b)
	req := get("/api/orders/42")
	req.Header["X-Tenant"] = []string{"acme"}
	if d := set.Authorize(req); !d.Allowed || d.Policy != "ns/allow" {
		b.Fatalf("decision %+v, want allowed by ns/allow", d)
	}
	b.ReportAllocs()
	for b.Loop() {
		set.Authorize(req)
	}
}

func BenchmarkAuthorize20RulesWithNormalize(b *testing.B) {
	set := twentyRules(b)
	req := get("")
	req.Header["X-Tenant"] = []string{"acme"}
	b.ReportAllocs()
	for b.Loop() {
		p, _ := NormalizePath("/api/orders/42")
		req.Path = p
		req.Host, req.Port = NormalizeHost("web.shop:8080")
		set.JoinHeader(req.Header)
		set.Authorize(req)
	}
}
