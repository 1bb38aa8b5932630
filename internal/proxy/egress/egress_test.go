package egress

import (
	"testing"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

func testTable(t testing.TB) *Table {
	t.Helper()
	tab, err := Compile(&weftv1.Egress{RegistryOnly: true, ExternalServices: []*weftv1.ExternalService{
		{Name: "api", Namespace: "default", Hosts: []string{"api.example.com"}, Ports: []*weftv1.ExternalServicePort{{Number: 443, Protocol: "HTTPS"}, {Number: 80, Protocol: "HTTP"}}},
		{Name: "cdn", Namespace: "default", Hosts: []string{"*.example.com"}},
		{Name: "deep", Namespace: "shop", Hosts: []string{"*.eu.example.com"}, Tls: &weftv1.ExternalServiceTLS{Sni: "eu.example.com"}},
		{Name: "local", Namespace: "default", Hosts: []string{"localhost"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestLookup(t *testing.T) {
	tab := testTable(t)
	tests := []struct {
		authority string
		defPort   uint32
		want      string // key of the match, "" none
		hostOnly  string // key of the declaring service of a refused port
	}{
		{"api.example.com", 80, "api.default", ""},
		{"API.Example.COM.:443", 80, "api.default", ""},
		{"api.example.com:8080", 80, "cdn.default", ""}, // the exact entry lacks the port; the wildcard has any
		{"a.example.com", 80, "cdn.default", ""},
		{"a.b.example.com:9", 80, "cdn.default", ""},
		{"x.eu.example.com", 443, "deep.shop", ""}, // the longest wildcard wins
		{"example.com", 80, "", ""},                // a wildcard does not match its own suffix
		{"example.org", 80, "", ""},
		{"localhost:41234", 80, "local.default", ""},
		{"127.0.0.1:41234", 80, "", ""},
		{"[::1]:80", 80, "", ""},
	}
	for _, tt := range tests {
		got, hostOnly := tab.Lookup(tt.authority, tt.defPort)
		var key, hk string
		if got != nil {
			key = got.Key
		}
		if hostOnly != nil {
			hk = hostOnly.Key
		}
		if key != tt.want || hk != tt.hostOnly {
			t.Errorf("Lookup(%q, %d) = %q, hostOnly %q; want %q, %q", tt.authority, tt.defPort, key, hk, tt.want, tt.hostOnly)
		}
	}
	if s, _ := tab.Lookup("x.eu.example.com", 443); s.Originate == nil || s.Originate.TLSClientConfig.ServerName != "eu.example.com" {
		t.Errorf("deep.shop: no originating transport with the SNI")
	}
}

func TestLookupPortOnly(t *testing.T) {
	tab, err := Compile(&weftv1.Egress{RegistryOnly: true, ExternalServices: []*weftv1.ExternalService{
		{Name: "api", Namespace: "default", Hosts: []string{"api.example.com"}, Ports: []*weftv1.ExternalServicePort{{Number: 443, Protocol: "HTTPS"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s, hostOnly := tab.Lookup("api.example.com:8443", 80)
	if s != nil || hostOnly == nil || hostOnly.Key != "api.default" {
		t.Fatalf("Lookup on an undeclared port = %v, %v; want nil, api.default", s, hostOnly)
	}
}

func TestTableModes(t *testing.T) {
	tests := []struct {
		name                string
		e                   *weftv1.Egress
		registryOnly, empty bool
	}{
		{"nil", nil, false, true},
		{"allow any", &weftv1.Egress{}, false, true},
		{"registry only", &weftv1.Egress{RegistryOnly: true}, true, false},
		{"declared", &weftv1.Egress{ExternalServices: []*weftv1.ExternalService{{Name: "a", Namespace: "b", Hosts: []string{"a.example.com"}}}}, false, false},
	}
	for _, tt := range tests {
		tab, err := Compile(tt.e)
		if err != nil {
			t.Fatal(err)
		}
		if tab.RegistryOnly() != tt.registryOnly || tab.Empty() != tt.empty {
			t.Errorf("%s: RegistryOnly %v Empty %v, want %v %v", tt.name, tab.RegistryOnly(), tab.Empty(), tt.registryOnly, tt.empty)
		}
	}
	var nilTable *Table
	if nilTable.RegistryOnly() || !nilTable.Empty() {
		t.Error("nil table: want ALLOW_ANY and empty")
	}
}

func TestCompileRejectsBadCA(t *testing.T) {
	_, err := Compile(&weftv1.Egress{ExternalServices: []*weftv1.ExternalService{
		{Name: "a", Namespace: "b", Hosts: []string{"a.example.com"}, Tls: &weftv1.ExternalServiceTLS{CaCertificates: "not pem"}},
	}})
	if err == nil {
		t.Fatal("Compile accepted CA certificates that are not PEM")
	}
}

func TestHostClass(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:80": "ip", "[::1]:443": "ip", "10.1.2.3": "ip",
		"localhost:80": "name", "api.example.com": "name",
	} {
		if got := HostClass(in); got != want {
			t.Errorf("HostClass(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	tab := testTable(b)
	b.ReportAllocs()
	for b.Loop() {
		tab.Lookup("a.b.eu.example.com:443", 80)
		tab.Lookup("nowhere.example.org", 80)
	}
}
