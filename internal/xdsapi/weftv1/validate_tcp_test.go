package weftv1

import (
	"strings"
	"testing"
)

func TestValidateTCPRoutes(t *testing.T) {
	ok := &Backend{Service: "a", Namespace: "default", Weight: 1}
	tests := []struct {
		name string
		r    *TcpRoute
		want string // "" for valid
	}{
		{"valid", &TcpRoute{Name: "default/r", Port: 5432, Backends: []*Backend{ok}}, ""},
		{"consumer", &TcpRoute{Name: "shop/r", ConsumerNamespace: "shop", Backends: []*Backend{ok}}, ""},
		{"port", &TcpRoute{Port: 65536, Backends: []*Backend{ok}}, "tcp_routes[0].port: 65536 out of range"},
		{"own namespace", &TcpRoute{ConsumerNamespace: "default", Backends: []*Backend{ok}}, "tcp_routes[0].consumer_namespace"},
		{"no service", &TcpRoute{Backends: []*Backend{{Namespace: "default", Weight: 1}}}, "tcp_routes[0].backends[0]: service and namespace must not be empty"},
		{"fail status", &TcpRoute{Backends: []*Backend{{Service: "a", Namespace: "default", FailStatus: 500}}}, "no fail status or HTTP filters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateService(&Service{Name: "db", Namespace: "default", TcpRoutes: []*TcpRoute{tt.r}})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
