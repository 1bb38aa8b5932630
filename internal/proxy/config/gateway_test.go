package config

import (
	"strings"
	"testing"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestGatewayHost: a request's Host picks the exact hostname, else the
// longest wildcard covering it, else the any-host routes.
func TestGatewayHost(t *testing.T) {
	route := func(name string) *weftv1.Service {
		return &weftv1.Service{Name: "gw", Namespace: "edge", Routes: []*weftv1.Route{{Name: name, Matches: []*weftv1.RouteMatch{{}}, Backends: []*weftv1.Backend{{Service: "app", Namespace: "shop", Weight: 1}}}}}
	}
	g, err := BuildGateway(&weftv1.Gateway{Name: "gw", Namespace: "edge", Listeners: []*weftv1.GatewayListener{{
		Name: "web", Port: 80, Protocol: "HTTP",
		Hosts: []*weftv1.GatewayHost{
			{Hostname: "", Routes: route("any")},
			{Hostname: "*.example.com", Routes: route("wild")},
			{Hostname: "*.shop.example.com", Routes: route("shopwild")},
			{Hostname: "a.example.com", Routes: route("exact")},
		},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	l := &g.Listeners[0]
	for _, tt := range []struct{ host, want string }{
		{"a.example.com", "exact"},
		{"A.Example.com:8080", "exact"},
		{"b.example.com", "wild"},
		{"x.shop.example.com", "shopwild"},
		{"example.com", "any"},
		{"other.test", "any"},
	} {
		svc := l.Host(tt.host)
		if svc == nil || svc.Routes[0].Name != tt.want {
			t.Errorf("Host(%q) = %v, want routes %s", tt.host, svc, tt.want)
		}
	}
	l.Hosts = l.Hosts[1:] // without the any-host routes
	if svc := l.Host("other.test"); svc != nil {
		t.Errorf("Host(other.test) without any-host routes = %v, want nil", svc)
	}
}

// TestBuildGatewayRefuses a listener a proxy cannot serve.
func TestBuildGatewayRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		l    *weftv1.GatewayListener
		want string
	}{
		{"port", &weftv1.GatewayListener{Name: "a", Protocol: "HTTP"}, "port 0 out of range"},
		{"protocol", &weftv1.GatewayListener{Name: "a", Port: 80, Protocol: "UDP"}, `unsupported protocol "UDP"`},
		{"certificate", &weftv1.GatewayListener{Name: "a", Port: 443, Protocol: "HTTPS", CertPem: []byte("x")}, "certificate:"},
		{"routes", &weftv1.GatewayListener{Name: "a", Port: 80, Protocol: "HTTP", Hosts: []*weftv1.GatewayHost{{Routes: &weftv1.Service{}}}}, "hosts[0]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := BuildGateway(&weftv1.Gateway{Name: "gw", Namespace: "edge", Listeners: []*weftv1.GatewayListener{tt.l}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
