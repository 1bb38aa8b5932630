package xdsgen

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

const faultRoutes = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: backend}
spec:
  parentRefs: [{group: "", kind: Service, name: backend}]
  rules:
  - filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: flaky}}]
    backendRefs: [{name: backend}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: other}
spec:
  parentRefs: [{group: "", kind: Service, name: other}]
  rules:
  - backendRefs: [{name: other}]
`

// TestFaultInjectionUpdate checks that changing, deleting and creating a
// FaultInjection re-pushes exactly the services whose routes reference it,
// with the same result as compiling the configuration from scratch, and
// that a reference to a missing FaultInjection answers 500.
func TestFaultInjectionUpdate(t *testing.T) {
	backend := &mesh.Service{Name: "backend", Namespace: "default"}
	steps := []struct {
		name  string
		fault string // FaultInjection document, "" for none
		want  *weftv1.Route
	}{
		{"abort", "abort: {httpStatus: 503, percentage: 20}", &weftv1.Route{
			Fault:    &weftv1.FaultInjection{Name: "default/flaky", Abort: &weftv1.FaultAbort{HttpStatus: 503, PerMillion: 200000}},
			Backends: []*weftv1.Backend{{Service: "backend", Namespace: "default", Weight: 1}}}},
		{"changed to a delay", "delay: {fixedDelay: 1s}", &weftv1.Route{
			Fault:    &weftv1.FaultInjection{Name: "default/flaky", Delay: &weftv1.FaultDelay{DelayMs: 1000, PerMillion: 1000000}},
			Backends: []*weftv1.Backend{{Service: "backend", Namespace: "default", Weight: 1}}}},
		{"deleted", "", &weftv1.Route{
			Backends: []*weftv1.Backend{{Weight: 1, FailStatus: 500, FailReason: "its ExtensionRef filter names FaultInjection default/flaky, which does not exist"}}}},
		{"created again", "abort: {grpcStatus: UNAVAILABLE, percentage: 0.5}", &weftv1.Route{
			Fault:    &weftv1.FaultInjection{Name: "default/flaky", Abort: &weftv1.FaultAbort{GrpcStatus: 14, PerMillion: 5000}},
			Backends: []*weftv1.Backend{{Service: "backend", Namespace: "default", Weight: 1}}}},
	}
	r := NewRouting(decodeSet(t, faultRoutes))
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			doc := faultRoutes
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
				got := proto.Clone(svc.GetRoutes()[0]).(*weftv1.Route)
				got.Name, got.Matches = "", nil
				if !proto.Equal(got, st.want) {
					t.Fatalf("route = %v, want %v", got, st.want)
				}
			}
			r = next
		})
	}
	// An unchanged FaultInjection re-pushes nothing.
	cfg := decodeSet(t, faultRoutes+"---\napiVersion: weft.dev/v1alpha1\nkind: FaultInjection\nmetadata: {name: flaky}\nspec: {abort: {grpcStatus: UNAVAILABLE, percentage: 0.5}}\n")
	if _, keys, all := r.Update(cfg); all || len(keys) != 0 {
		t.Fatalf("unchanged: keys %v, all %v", keys, all)
	}
}

// TestShares checks the translation of percentages and mirror shares to
// parts per million.
func TestShares(t *testing.T) {
	for _, tc := range []struct {
		pct  *float64
		want uint32
	}{{nil, 1000000}, {new(0.0), 0}, {new(100.0), 1000000}, {new(20.0), 200000}, {new(0.0001), 1}, {new(33.3333), 333333}} {
		if got := percentShare(tc.pct); got != tc.want {
			t.Errorf("percentShare(%v) = %d, want %d", tc.pct, got, tc.want)
		}
	}
	set := decodeSet(t, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{group: "", kind: Service, name: a}]
  rules:
  - filters:
    - {type: RequestMirror, requestMirror: {backendRef: {name: m}}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: m}, percent: 0}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: m}, percent: 7}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: m}, fraction: {numerator: 1}}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: m}, fraction: {numerator: 2, denominator: 3}}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: m}, fraction: {numerator: 7, denominator: 7}}}
    backendRefs: [{name: a}]
`)
	var got []uint32
	for _, m := range NewRouting(set).Service(&mesh.Service{Name: "a", Namespace: "default"}).GetRoutes()[0].GetMirrors() {
		got = append(got, m.GetPerMillion())
	}
	if want := []uint32{1000000, 0, 70000, 10000, 666666, 1000000}; !slices.Equal(got, want) {
		t.Errorf("mirror shares = %v, want %v", got, want)
	}
}
