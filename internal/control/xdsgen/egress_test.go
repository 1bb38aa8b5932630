package xdsgen

import (
	"testing"

	"google.golang.org/protobuf/testing/protocmp"

	"github.com/google/go-cmp/cmp"

	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

const esPayments = `apiVersion: weft.dev/v1alpha1
kind: ExternalService
metadata: {name: payments, namespace: shop}
spec:
  hosts: [api.pay.example.com, "*.cdn.example.com"]
  ports: [{number: 80, protocol: HTTP}, {number: 8080}]
  tls: {mode: ORIGINATE, sni: api.pay.example.com}
`

// TestEgressTranslation checks every field of MeshConfig
// outboundTrafficPolicy and ExternalService as it lands on every Service
// resource, and that a configuration with neither leaves Service resources
// without egress.
func TestEgressTranslation(t *testing.T) {
	orders := &mesh.Service{Name: "orders", Namespace: "default"}
	tests := []struct {
		name string
		doc  string
		want *weftv1.Egress
	}{
		{"none", "", nil},
		{"allow any only", "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec:\n  outboundTrafficPolicy: {mode: ALLOW_ANY}\n", nil},
		{"registry only", "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec:\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n  accessLog: {mode: errors}\n",
			&weftv1.Egress{RegistryOnly: true}},
		{"external service", "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec:\n  accessLog: {mode: all}\n---\n" + esPayments,
			&weftv1.Egress{ExternalServices: []*weftv1.ExternalService{{
				Name: "payments", Namespace: "shop", Hosts: []string{"api.pay.example.com", "*.cdn.example.com"},
				Ports:     []*weftv1.ExternalServicePort{{Number: 80, Protocol: "HTTP"}, {Number: 8080, Protocol: "TCP"}},
				Tls:       &weftv1.ExternalServiceTLS{Sni: "api.pay.example.com"},
				AccessLog: weftv1.AccessLogMode_ACCESS_LOG_ON,
			}}}},
		{"mesh default gateway", "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec:\n  outboundTrafficPolicy: {egressGateway: {name: egress-gw}}\n---\n" + esPayments +
			"---\napiVersion: weft.dev/v1alpha1\nkind: ExternalService\nmetadata: {name: own, namespace: shop}\nspec:\n  hosts: [own.example.com]\n  egressGateway: shop-gw\n",
			&weftv1.Egress{ExternalServices: []*weftv1.ExternalService{{
				Name: "own", Namespace: "shop", Hosts: []string{"own.example.com"}, EgressGateway: "shop-gw.shop",
			}, {
				Name: "payments", Namespace: "shop", Hosts: []string{"api.pay.example.com", "*.cdn.example.com"},
				Ports:         []*weftv1.ExternalServicePort{{Number: 80, Protocol: "HTTP"}, {Number: 8080, Protocol: "TCP"}},
				Tls:           &weftv1.ExternalServiceTLS{Sni: "api.pay.example.com"},
				EgressGateway: "egress-gw.default",
			}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := decodeSet(t, tt.doc)
			got := NewRouting(set).Service(orders)
			if diff := cmp.Diff(tt.want, got.GetEgress(), protocmp.Transform()); diff != "" {
				t.Errorf("egress (-want +got):\n%s", diff)
			}
			if err := weftv1.ValidateService(got); err != nil {
				t.Errorf("ValidateService: %v", err)
			}
		})
	}
}

// TestEgressUpdateAll: an ExternalService change regenerates every
// Service resource.
func TestEgressUpdateAll(t *testing.T) {
	prev := NewRouting(decodeSet(t, ""))
	next, _, all := prev.Update(decodeSet(t, esPayments))
	if !all {
		t.Fatal("adding an ExternalService did not report all services")
	}
	if e := next.Service(&mesh.Service{Name: "orders", Namespace: "default"}).GetEgress(); len(e.GetExternalServices()) != 1 {
		t.Fatalf("egress after Update = %v", e)
	}
	if _, _, all := next.Update(decodeSet(t, esPayments)); all {
		t.Error("an unchanged ExternalService reported all services")
	}
}
