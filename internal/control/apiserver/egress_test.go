package apiserver

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
)

func TestCheckExternalHosts(t *testing.T) {
	snap := mesh.Build(nil, []*mesh.Workload{{ID: "o1", Service: "orders", Namespace: "shop"}})
	tests := []struct {
		host, want string
	}{
		{"api.example.com", ""},
		{"localhost", ""},
		{"*.shop.example.com", ""},
		{"orders", `"orders" is mesh service orders.shop`},
		{"orders.shop", `"orders.shop" is a name in mesh namespace shop`},
		{"payments.shop", `"payments.shop" is a name in mesh namespace shop`},
		{"orders.shop.svc.cluster.local", `"orders.shop.svc.cluster.local" is mesh service orders.shop`},
	}
	for _, tt := range tests {
		x := &api.ExternalService{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "default"}, Spec: api.ExternalServiceSpec{Hosts: []string{tt.host}}}
		err := checkExternalHosts(x, snap)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), "spec.hosts[0]: "+tt.want)) {
			t.Errorf("%s: err = %v, want %q", tt.host, err, tt.want)
		}
	}
}
