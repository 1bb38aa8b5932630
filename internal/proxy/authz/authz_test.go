package authz

import (
	"net/netip"
	"strings"
	"testing"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

const (
	orders  = "spiffe://cluster.local/ns/shop/sa/orders"
	billing = "spiffe://cluster.local/ns/money/sa/billing"
)

type fakeAuth struct {
	principal string
	claims    map[string][]string
}

func (f fakeAuth) Principal() string          { return f.principal }
func (f fakeAuth) Claim(name string) []string { return f.claims[name] }

func pol(name string, action weftv1.AuthzPolicy_Action, rules ...*weftv1.AuthzRule) *weftv1.AuthzPolicy {
	return &weftv1.AuthzPolicy{Name: name, Action: action, Rules: rules}
}

func get(path string) *Request {
	return &Request{Peer: orders, SourceIP: netip.MustParseAddr("10.1.2.3"), Method: "GET", Path: path, Host: "web.shop", Port: 8080, Header: map[string][]string{}}
}

func with(r *Request, f func(*Request)) *Request { f(r); return r }

func TestAuthorizeFields(t *testing.T) {
	from := func(f *weftv1.AuthzFrom) *weftv1.AuthzRule { return &weftv1.AuthzRule{From: []*weftv1.AuthzFrom{f}} }
	to := func(t *weftv1.AuthzTo) *weftv1.AuthzRule { return &weftv1.AuthzRule{To: []*weftv1.AuthzTo{t}} }
	when := func(c *weftv1.AuthzCondition) *weftv1.AuthzRule {
		return &weftv1.AuthzRule{When: []*weftv1.AuthzCondition{c}}
	}
	tests := []struct {
		name  string
		rule  *weftv1.AuthzRule
		req   *Request
		match bool
	}{
		{"identity exact", from(&weftv1.AuthzFrom{Identities: []string{orders}}), get("/"), true},
		{"identity other", from(&weftv1.AuthzFrom{Identities: []string{billing}}), get("/"), false},
		{"identity prefix", from(&weftv1.AuthzFrom{Identities: []string{"spiffe://cluster.local/ns/shop/*"}}), get("/"), true},
		{"identity suffix", from(&weftv1.AuthzFrom{Identities: []string{"*/sa/orders"}}), get("/"), true},
		{"identity suffix other", from(&weftv1.AuthzFrom{Identities: []string{"*/sa/billing"}}), get("/"), false},
		{"identity any", from(&weftv1.AuthzFrom{Identities: []string{"*"}}), get("/"), true},
		{"notIdentities", from(&weftv1.AuthzFrom{NotIdentities: []string{orders}}), get("/"), false},
		{"notIdentities other", from(&weftv1.AuthzFrom{NotIdentities: []string{billing}}), get("/"), true},
		{"namespace", from(&weftv1.AuthzFrom{Namespaces: []string{"shop"}}), get("/"), true},
		{"namespace other", from(&weftv1.AuthzFrom{Namespaces: []string{"money"}}), get("/"), false},
		{"notNamespaces", from(&weftv1.AuthzFrom{NotNamespaces: []string{"shop"}}), get("/"), false},
		{"namespaces and identities both", from(&weftv1.AuthzFrom{Namespaces: []string{"shop"}, Identities: []string{billing}}), get("/"), false},
		{"ipBlocks", from(&weftv1.AuthzFrom{IpBlocks: []string{"10.0.0.0/8"}}), get("/"), true},
		{"ipBlocks address", from(&weftv1.AuthzFrom{IpBlocks: []string{"10.1.2.4"}}), get("/"), false},
		{"notIpBlocks", from(&weftv1.AuthzFrom{NotIpBlocks: []string{"10.1.0.0/16"}}), get("/"), false},
		{"requestPrincipals no token", from(&weftv1.AuthzFrom{RequestPrincipals: []string{"*"}}), get("/"), false},
		{"requestPrincipals token", from(&weftv1.AuthzFrom{RequestPrincipals: []string{"https://idp/alice"}}), with(get("/"), func(r *Request) { r.Auth = fakeAuth{principal: "https://idp/alice"} }), true},
		{"notRequestPrincipals", from(&weftv1.AuthzFrom{NotRequestPrincipals: []string{"https://idp/*"}}), with(get("/"), func(r *Request) { r.Auth = fakeAuth{principal: "https://idp/alice"} }), false},
		{"method", to(&weftv1.AuthzTo{Methods: []string{"GET"}}), get("/"), true},
		{"method other", to(&weftv1.AuthzTo{Methods: []string{"POST"}}), get("/"), false},
		{"notMethods", to(&weftv1.AuthzTo{NotMethods: []string{"GET"}}), get("/"), false},
		{"path exact", to(&weftv1.AuthzTo{Paths: []string{"/admin"}}), get("/admin"), true},
		{"path exact longer", to(&weftv1.AuthzTo{Paths: []string{"/admin"}}), get("/admin/x"), false},
		{"path prefix", to(&weftv1.AuthzTo{Paths: []string{"/api/*"}}), get("/api/v1"), true},
		{"path prefix other", to(&weftv1.AuthzTo{Paths: []string{"/api/*"}}), get("/apix"), false},
		{"path suffix", to(&weftv1.AuthzTo{Paths: []string{"*.json"}}), get("/a/b.json"), true},
		{"path any", to(&weftv1.AuthzTo{Paths: []string{"*"}}), get("/x"), true},
		{"notPaths", to(&weftv1.AuthzTo{NotPaths: []string{"/healthz"}}), get("/healthz"), false},
		{"notPaths other", to(&weftv1.AuthzTo{NotPaths: []string{"/healthz"}}), get("/x"), true},
		{"ports", to(&weftv1.AuthzTo{Ports: []uint32{8080}}), get("/"), true},
		{"ports other", to(&weftv1.AuthzTo{Ports: []uint32{9090}}), get("/"), false},
		{"hosts case-insensitive", to(&weftv1.AuthzTo{Hosts: []string{"WEB.shop"}}), get("/"), true},
		{"hosts prefix", to(&weftv1.AuthzTo{Hosts: []string{"web.*"}}), get("/"), true},
		{"notHosts", to(&weftv1.AuthzTo{NotHosts: []string{"web.shop"}}), get("/"), false},
		{"tcp never matches an HTTP to", to(&weftv1.AuthzTo{Paths: []string{"*"}}), &Request{Peer: orders, TCP: true}, false},
		{"tcp has no port", to(&weftv1.AuthzTo{Ports: []uint32{8080}}), &Request{Peer: orders, TCP: true}, false},
		{"tcp matches from", from(&weftv1.AuthzFrom{Namespaces: []string{"shop"}}), &Request{Peer: orders, TCP: true}, true},
		{"header", when(&weftv1.AuthzCondition{Key: "request.headers[x-tenant]", Values: []string{"a"}}), with(get("/"), func(r *Request) { r.Header["X-Tenant"] = []string{"a"} }), true},
		{"header absent", when(&weftv1.AuthzCondition{Key: "request.headers[x-tenant]", Values: []string{"*"}}), get("/"), false},
		{"header not value", when(&weftv1.AuthzCondition{Key: "request.headers[x-tenant]", NotValues: []string{"a"}}), with(get("/"), func(r *Request) { r.Header["X-Tenant"] = []string{"a"} }), false},
		{"header repeated is joined", when(&weftv1.AuthzCondition{Key: "request.headers[x-tenant]", Values: []string{"a"}}), with(get("/"), func(r *Request) { r.Header["X-Tenant"] = []string{"a", "b"} }), false},
		{"source.namespace", when(&weftv1.AuthzCondition{Key: "source.namespace", Values: []string{"shop"}}), get("/"), true},
		{"source.ip", when(&weftv1.AuthzCondition{Key: "source.ip", Values: []string{"10.1.2.3"}}), get("/"), true},
		{"source.principal", when(&weftv1.AuthzCondition{Key: "source.principal", Values: []string{"*/sa/orders"}}), get("/"), true},
		{"claim", when(&weftv1.AuthzCondition{Key: "request.auth.claims[groups]", Values: []string{"admin"}}), with(get("/"), func(r *Request) { r.Auth = fakeAuth{claims: map[string][]string{"groups": {"dev", "admin"}}} }), true},
		{"claim no token", when(&weftv1.AuthzCondition{Key: "request.auth.claims[groups]", Values: []string{"admin"}}), get("/"), false},
		{"auth principal", when(&weftv1.AuthzCondition{Key: "request.auth.principal", Values: []string{"iss/sub"}}), with(get("/"), func(r *Request) { r.Auth = fakeAuth{principal: "iss/sub"} }), true},
		{"empty rule matches all", &weftv1.AuthzRule{}, get("/"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := Compile([]*weftv1.AuthzPolicy{pol("ns/deny", weftv1.AuthzPolicy_DENY, tt.rule)}, false)
			if err != nil {
				t.Fatal(err)
			}
			d := set.Authorize(tt.req)
			if d.Allowed == tt.match {
				t.Errorf("matched = %v, want %v (decision %+v)", !d.Allowed, tt.match, d)
			}
		})
	}
}

func TestPeerNamespace(t *testing.T) {
	for in, want := range map[string]string{
		orders: "shop", "spiffe://td/ns/a": "a", "spiffe://td/x/ns/a/sa/b": "", "spiffe://td": "", "ns/a": "",
	} {
		if got := peerNamespace(in); got != want {
			t.Errorf("peerNamespace(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAuthorizeOrder(t *testing.T) {
	admin := &weftv1.AuthzRule{To: []*weftv1.AuthzTo{{Paths: []string{"/admin"}}}}
	fromShop := &weftv1.AuthzRule{From: []*weftv1.AuthzFrom{{Namespaces: []string{"shop"}}}}
	tests := []struct {
		name        string
		policies    []*weftv1.AuthzPolicy
		defaultDeny bool
		req         *Request
		allowed     bool
		policy      string
		audit       string
		reason      string
	}{
		{"no policy allows", nil, false, get("/admin"), true, "", "", ""},
		{"default deny", nil, true, get("/"), false, "", "", ReasonDefaultDeny},
		{"deny matches", []*weftv1.AuthzPolicy{pol("ns/d", weftv1.AuthzPolicy_DENY, admin)}, false, get("/admin"), false, "ns/d", "", "weft: denied by policy ns/d"},
		{"deny does not match", []*weftv1.AuthzPolicy{pol("ns/d", weftv1.AuthzPolicy_DENY, admin)}, false, get("/x"), true, "", "", ""},
		{"deny before allow", []*weftv1.AuthzPolicy{pol("ns/a", weftv1.AuthzPolicy_ALLOW, fromShop), pol("ns/d", weftv1.AuthzPolicy_DENY, admin)}, false, get("/admin"), false, "ns/d", "", ""},
		{"allow matches", []*weftv1.AuthzPolicy{pol("ns/a", weftv1.AuthzPolicy_ALLOW, fromShop)}, false, get("/"), true, "ns/a", "", ""},
		{"allow present, no match", []*weftv1.AuthzPolicy{pol("ns/a", weftv1.AuthzPolicy_ALLOW, admin)}, false, get("/x"), false, "", "", ReasonNoAllow},
		{"allow without rules allows nothing", []*weftv1.AuthzPolicy{pol("ns/a", weftv1.AuthzPolicy_ALLOW)}, false, get("/x"), false, "", "", ReasonNoAllow},
		{"allow beats default deny", []*weftv1.AuthzPolicy{pol("ns/a", weftv1.AuthzPolicy_ALLOW, fromShop)}, true, get("/"), true, "ns/a", "", ""},
		{"audit never denies", []*weftv1.AuthzPolicy{pol("ns/au", weftv1.AuthzPolicy_AUDIT, admin)}, false, get("/admin"), true, "", "ns/au", ""},
		{"audit reported with deny", []*weftv1.AuthzPolicy{pol("ns/au", weftv1.AuthzPolicy_AUDIT, admin), pol("ns/d", weftv1.AuthzPolicy_DENY, admin)}, false, get("/admin"), false, "ns/d", "ns/au", ""},
		{"audit does not allow under default deny", []*weftv1.AuthzPolicy{pol("ns/au", weftv1.AuthzPolicy_AUDIT, fromShop)}, true, get("/"), false, "", "ns/au", ReasonDefaultDeny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := Compile(tt.policies, tt.defaultDeny)
			if err != nil {
				t.Fatal(err)
			}
			d := set.Authorize(tt.req)
			auditName := ""
			if d.Audit != nil {
				auditName = d.Audit.Name
			}
			if d.Allowed != tt.allowed || d.Policy != tt.policy || auditName != tt.audit || tt.reason != "" && d.Reason != tt.reason {
				t.Errorf("got allowed=%v policy=%q audit=%q reason=%q; want %v %q %q %q", d.Allowed, d.Policy, auditName, d.Reason, tt.allowed, tt.policy, tt.audit, tt.reason)
			}
		})
	}
}

func TestSelectAndView(t *testing.T) {
	p1 := pol("ns/v1only", weftv1.AuthzPolicy_DENY, &weftv1.AuthzRule{})
	p1.Selector = map[string]string{"version": "v1"}
	p2 := pol("ns/all", weftv1.AuthzPolicy_AUDIT, &weftv1.AuthzRule{})
	set, err := Compile([]*weftv1.AuthzPolicy{p1, p2}, false)
	if err != nil {
		t.Fatal(err)
	}
	loads := 0
	v1 := NewView(func() *Set { loads++; return set }, map[string]string{"app": "web", "version": "v1"})
	v2 := NewView(func() *Set { return set }, map[string]string{"app": "web", "version": "v2"})
	if d := v1.Current().Authorize(get("/")); d.Allowed {
		t.Errorf("v1 workload: allowed, want denied by ns/v1only")
	}
	if d := v2.Current().Authorize(get("/")); !d.Allowed || d.Audit == nil {
		t.Errorf("v2 workload: %+v, want allowed and audited", d)
	}
	if a, b := v1.Current(), v1.Current(); a != b || loads != 3 {
		t.Errorf("View recomputed its selection for the same Set (%p, %p, %d loads)", a, b, loads)
	}
	if NewView(func() *Set { return nil }, nil).Current() != nil {
		t.Error("nil Set: View.Current() != nil")
	}
}

func TestCompileRejects(t *testing.T) {
	tests := []struct {
		name string
		p    *weftv1.AuthzPolicy
		want string
	}{
		{"name", &weftv1.AuthzPolicy{Name: "x"}, "name:"},
		{"action", &weftv1.AuthzPolicy{Name: "a/b", Action: 9}, "action:"},
		{"ip", pol("a/b", 0, &weftv1.AuthzRule{From: []*weftv1.AuthzFrom{{IpBlocks: []string{"nope"}}}}), "rules[0].from[0].ip_blocks[0]"},
		{"path", pol("a/b", 0, &weftv1.AuthzRule{To: []*weftv1.AuthzTo{{Paths: []string{"x"}}}}), "rules[0].to[0].paths[0]"},
		{"star", pol("a/b", 0, &weftv1.AuthzRule{To: []*weftv1.AuthzTo{{Hosts: []string{"a*b*"}}}}), "rules[0].to[0].hosts[0]"},
		{"port", pol("a/b", 0, &weftv1.AuthzRule{To: []*weftv1.AuthzTo{{Ports: []uint32{70000}}}}), "rules[0].to[0].ports[0]"},
		{"key", pol("a/b", 0, &weftv1.AuthzRule{When: []*weftv1.AuthzCondition{{Key: "request.body", Values: []string{"a"}}}}), "rules[0].when[0].key"},
		{"values", pol("a/b", 0, &weftv1.AuthzRule{When: []*weftv1.AuthzCondition{{Key: "source.namespace"}}}), "rules[0].when[0].values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile([]*weftv1.AuthzPolicy{tt.p}, false)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to name %q", err, tt.want)
			}
		})
	}
}
