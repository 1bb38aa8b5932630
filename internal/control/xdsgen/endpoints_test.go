package xdsgen

import (
	"testing"

	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestEndpointsPlaintext: the pods without a sidecar serve a Service only
// while it has no mesh endpoint, marked plaintext and with no identity,
// and what comes out is an Endpoints resource the proxies accept.
func TestEndpointsPlaintext(t *testing.T) {
	svc := &mesh.Service{Name: "legacy", Namespace: "shop", Declared: true}
	meshed := []*mesh.Workload{{ID: "legacy-7f", Address: "10.0.0.9:15006", Identity: "spiffe://cluster.local/ns/shop/sa/legacy"}}
	plain := []mesh.PlainEndpoint{{Address: "10.0.0.5:8080", Pod: "legacy-0"}, {Address: "10.0.0.6:8080"}}
	tests := []struct {
		name string
		eps  []*mesh.Workload
		want []*weftv1.Endpoint
	}{
		{"no mesh endpoint: the pods, in plaintext", nil, []*weftv1.Endpoint{
			{Address: "10.0.0.5:8080", Workload: "pod/shop/legacy-0", Plaintext: true},
			{Address: "10.0.0.6:8080", Workload: "pod/shop/10.0.0.6:8080", Plaintext: true},
		}},
		{"a mesh endpoint: only it", meshed, []*weftv1.Endpoint{
			{Address: "10.0.0.9:15006", Identity: "spiffe://cluster.local/ns/shop/sa/legacy", Workload: "legacy-7f"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Endpoints(svc, tt.eps, plain)
			if len(got.Endpoints) != len(tt.want) {
				t.Fatalf("endpoints %v, want %v", got.Endpoints, tt.want)
			}
			for i, w := range tt.want {
				g := got.Endpoints[i]
				if g.Address != w.Address || g.Identity != w.Identity || g.Workload != w.Workload || g.Plaintext != w.Plaintext {
					t.Errorf("endpoint %d = %v, want %v", i, g, w)
				}
			}
			if err := weftv1.ValidateEndpoints(got); err != nil {
				t.Errorf("a proxy would refuse it: %v", err)
			}
		})
	}
	// The proxies refuse a plaintext endpoint that names an identity,
	// and an mTLS one that names none.
	for _, ep := range []*weftv1.Endpoint{
		{Address: "10.0.0.5:8080", Identity: "spiffe://cluster.local/ns/shop/sa/legacy", Plaintext: true},
		{Address: "10.0.0.5:8080"},
	} {
		if err := weftv1.ValidateEndpoints(&weftv1.Endpoints{Service: "legacy", Namespace: "shop", Endpoints: []*weftv1.Endpoint{ep}}); err == nil {
			t.Errorf("endpoint %v accepted", ep)
		}
	}
}
