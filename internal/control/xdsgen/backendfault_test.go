package xdsgen

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

const backendFaultRoutes = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: backend}
spec:
  parentRefs: [{group: "", kind: Service, name: backend}]
  rules:
  - backendRefs:
    - {name: backend, weight: 80, filters: [{type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 80}, percent: 50}}]}
    - {name: canary, weight: 20, filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: flaky}}]}
`

// TestBackendFaultMirror: the ExtensionRef and RequestMirror filters of
// backendRefs are translated onto their backends; a change of the
// FaultInjection re-pushes the route's service; a missing FaultInjection
// fails only that backend's share with 500.
func TestBackendFaultMirror(t *testing.T) {
	backend := &mesh.Service{Name: "backend", Namespace: "default"}
	mirrored := &weftv1.Backend{Service: "backend", Namespace: "default", Weight: 80,
		Mirrors: []*weftv1.RequestMirror{{Service: "shadow", Namespace: "default", PerMillion: 500000}}}
	steps := []struct {
		name  string
		fault string
		want  []*weftv1.Backend
	}{
		{"abort", "abort: {httpStatus: 503}", []*weftv1.Backend{mirrored,
			{Service: "canary", Namespace: "default", Weight: 20, Fault: &weftv1.FaultInjection{Name: "default/flaky", Abort: &weftv1.FaultAbort{HttpStatus: 503, PerMillion: 1000000}}}}},
		{"deleted", "", []*weftv1.Backend{mirrored,
			{Service: "canary", Namespace: "default", Weight: 20, FailStatus: 500, FailReason: "its ExtensionRef filter names FaultInjection default/flaky, which does not exist"}}},
	}
	r := NewRouting(decodeSet(t, backendFaultRoutes))
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			doc := backendFaultRoutes
			if st.fault != "" {
				doc += "---\napiVersion: weft.dev/v1alpha1\nkind: FaultInjection\nmetadata: {name: flaky}\nspec: {" + st.fault + "}\n"
			}
			cfg := decodeSet(t, doc)
			next, keys, all := r.Update(cfg)
			if all || !slices.Equal(keys, []string{"backend.default"}) {
				t.Fatalf("Update keys = %v, all = %v; want only backend.default", keys, all)
			}
			for _, rr := range []*Routing{next, NewRouting(cfg)} {
				svc := rr.Service(backend)
				if err := weftv1.ValidateService(svc); err != nil {
					t.Fatal(err)
				}
				got := svc.GetRoutes()[0]
				if got.GetFault() != nil || len(got.GetMirrors()) != 0 {
					t.Errorf("rule got a fault or mirrors: %v", got)
				}
				if len(got.GetBackends()) != len(st.want) {
					t.Fatalf("backends %v, want %v", got.GetBackends(), st.want)
				}
				for i, b := range got.GetBackends() {
					if !proto.Equal(b, st.want[i]) {
						t.Errorf("backends[%d] = %v, want %v", i, b, st.want[i])
					}
				}
			}
			r = next
		})
	}
}
