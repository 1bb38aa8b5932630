package apiserver

import (
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestConfigStatus: MeshConfig, ExternalService and FaultInjection get an
// Accepted condition, and ResolvedRefs where an egress gateway is named,
// False while that gateway is not a mesh service.
func TestConfigStatus(t *testing.T) {
	const routes = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orders, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: orders}]
  rules:
  - backendRefs: [{name: orders, port: 8080}]
  - filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: chaos}}]
    backendRefs: [{name: orders, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: greeter, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: greeter}]
  rules:
  - backendRefs:
    - name: greeter
      port: 9000
      filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: chaos}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: elsewhere, namespace: other}
spec:
  parentRefs: [{group: "", kind: Service, name: x}]
  rules:
  - filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: idle}}]
    backendRefs: [{name: x, port: 80}]
`
	objs, err := api.Decode([]byte(routes))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := api.NewSet(objs)
	if err != nil {
		t.Fatal(err)
	}
	services := map[string]*mesh.Service{weftv1.ResourceName("egress", "default"): {}, weftv1.ResourceName("egress", "shop"): {}}
	meta := func(ns string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "chaos", Namespace: ns, Generation: 2}
	}
	gw := func(name, ns string) *api.MeshConfig {
		return &api.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: "default", Generation: 2}, Spec: api.MeshConfigSpec{
			OutboundTrafficPolicy: &api.OutboundTrafficPolicy{Mode: "REGISTRY_ONLY", EgressGateway: &api.EgressGatewayRef{Name: name, Namespace: ns}}}}
	}
	type cond struct{ typ, status, reason, msg string }
	tests := []struct {
		name string
		obj  api.Object
		mc   *api.MeshConfig
		td   string
		want []cond
	}{
		{"mesh config defaults", &api.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: "default", Generation: 2}}, nil, "",
			[]cond{{"Accepted", "True", ReasonAccepted, "trust domain cluster.local, mutual TLS STRICT, outbound traffic ALLOW_ANY"}}},
		{"mesh config names the CA's trust domain", &api.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: "default", Generation: 2}}, nil, "prod.example.com",
			[]cond{{"Accepted", "True", ReasonAccepted, "trust domain prod.example.com, mutual TLS STRICT"}}},
		{"mesh config on another trust domain", &api.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: "default", Generation: 2}, Spec: api.MeshConfigSpec{TrustDomain: "other.example"}}, nil, "prod.example.com",
			[]cond{{"Accepted", "True", ReasonAccepted, `trust domain prod.example.com, mutual TLS STRICT, outbound traffic ALLOW_ANY; spec.trustDomain "other.example" is ignored`}}},
		{"mesh config with a gateway", gw("egress", ""), nil, "",
			[]cond{{"Accepted", "True", ReasonAccepted, "outbound traffic REGISTRY_ONLY"}, {"ResolvedRefs", "True", ReasonResolvedRefs, "egress gateway default/egress"}}},
		{"mesh config with a missing gateway", gw("egress", "edge"), nil, "",
			[]cond{{"Accepted", "True", ReasonAccepted, ""}, {"ResolvedRefs", "False", ReasonEgressGatewayNotFound, `spec.outboundTrafficPolicy.egressGateway: no Service "egress" in namespace "edge"`}}},
		{"external service direct", &api.ExternalService{ObjectMeta: meta("shop"), Spec: api.ExternalServiceSpec{Hosts: []string{"api.example.com", "*.cdn.example.com"}}}, nil, "",
			[]cond{{"Accepted", "True", ReasonAccepted, "declares api.example.com, *.cdn.example.com"}}},
		{"external service through its gateway", &api.ExternalService{ObjectMeta: meta("shop"), Spec: api.ExternalServiceSpec{Hosts: []string{"a.example"}, EgressGateway: "egress"}}, nil, "",
			[]cond{{"Accepted", "True", ReasonAccepted, ""}, {"ResolvedRefs", "True", ReasonResolvedRefs, "shop/egress"}}},
		{"external service through a missing gateway", &api.ExternalService{ObjectMeta: meta("shop"), Spec: api.ExternalServiceSpec{Hosts: []string{"a.example"}, EgressGateway: "gone"}}, nil, "",
			[]cond{{"Accepted", "True", ReasonAccepted, ""}, {"ResolvedRefs", "False", ReasonEgressGatewayNotFound, `spec.egressGateway: no Service "gone" in namespace "shop": calls that should go through it are answered 503`}}},
		{"external service through the mesh default gateway", &api.ExternalService{ObjectMeta: meta("shop"), Spec: api.ExternalServiceSpec{Hosts: []string{"a.example"}}}, gw("missing", ""), "",
			[]cond{{"Accepted", "True", ReasonAccepted, ""}, {"ResolvedRefs", "False", ReasonEgressGatewayNotFound, `MeshConfig spec.outboundTrafficPolicy.egressGateway: no Service "missing" in namespace "default"`}}},
		{"fault used by two routes", &api.FaultInjection{ObjectMeta: meta("shop")}, nil, "",
			[]cond{{"Accepted", "True", ReasonAccepted, "injected by HTTPRoute orders rule 1, GRPCRoute greeter rule 0"}}},
		{"fault used by nothing in its namespace", &api.FaultInjection{ObjectMeta: meta("other")}, nil, "",
			[]cond{{"Accepted", "False", ReasonNotReferenced, `no HTTPRoute or GRPCRoute rule in namespace "other" names it`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := *cfg
			c.MeshConfig = tc.mc
			setConfigStatus(tc.obj, &c, services, tc.td)
			var st *api.PolicyStatus
			switch o := tc.obj.(type) {
			case *api.MeshConfig:
				st = o.Status
			case *api.ExternalService:
				st = o.Status
			case *api.FaultInjection:
				st = o.Status
			}
			if st == nil || len(st.Conditions) != len(tc.want) {
				t.Fatalf("status = %+v, want %d conditions", st, len(tc.want))
			}
			for i, w := range tc.want {
				got := st.Conditions[i]
				if got.Type != w.typ || string(got.Status) != w.status || got.Reason != w.reason || !strings.Contains(got.Message, w.msg) || got.ObservedGeneration != 2 {
					t.Errorf("condition %d = %+v, want %s=%s/%s containing %q at generation 2", i, got, w.typ, w.status, w.reason, w.msg)
				}
			}
			api.ClearStatus(tc.obj)
			if b, _ := jsonOf(tc.obj); strings.Contains(b, `"status"`) {
				t.Errorf("ClearStatus left the status: %s", b)
			}
		})
	}
}

func jsonOf(o api.Object) (string, error) {
	b, err := json.Marshal(o)
	return string(b), err
}
