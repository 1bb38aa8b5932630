package apiserver

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/control/store"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

const routeHead = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: shop}
spec:
`

// newMeshServer is newServer with a mesh of workloads (services web and
// api in namespace shop) and a metrics registry.
func newMeshServer(t *testing.T) (*httptest.Server, *store.Bolt, *prometheus.Registry) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "weft.db"))
	if err != nil {
		t.Fatal(err)
	}
	snap := mesh.Build(nil, []*mesh.Workload{
		{ID: "w1", Service: "web", Namespace: "shop", Address: "127.0.0.1:1", Identity: "spiffe://cluster.local/ns/shop/sa/web", Labels: map[string]string{"app": "web"}},
		{ID: "w2", Service: "api", Namespace: "shop", Address: "127.0.0.1:2", Identity: "spiffe://cluster.local/ns/shop/sa/api", Labels: map[string]string{"app": "api"}},
	})
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(New(st, token, slog.New(slog.DiscardHandler), Options{
		Snapshot: func() *mesh.Snapshot { return snap }, TrustDomain: "cluster.local", Registerer: reg,
	}))
	t.Cleanup(func() {
		srv.Close()
		st.Close()
	})
	return srv, st, reg
}

// TestApplyRefusals: each configuration that would be stored and silently
// ignored is refused with the field named, nothing is stored, and the
// refusal is counted.
func TestApplyRefusals(t *testing.T) {
	srv, st, reg := newMeshServer(t)
	tests := []struct {
		name, path, body, want string
	}{
		{"gateway UDP listener", "/api/v1/apply", "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec: {gatewayClassName: weft, listeners: [{name: dns, protocol: UDP, port: 5353}]}\n",
			`document 1: Gateway \"gw\": spec.listeners[0].protocol: UDP is valid Gateway API/weft configuration but not enforced`},
		{"hostnames", "/api/v1/apply", routeHead + "  parentRefs: [{group: \"\", kind: Service, name: web}]\n  hostnames: [web.example.com]\n  rules: [{backendRefs: [{name: web}]}]\n",
			`document 1: HTTPRoute \"web\": spec.hostnames: must be empty`},
		{"trust domain change", "/api/v1/apply", "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec: {trustDomain: other.example}\n",
			`document 1: MeshConfig \"default\": spec.trustDomain: is \"other.example\", but the control plane's CA was created for trust domain \"cluster.local\"`},
		{"second document of many", "/api/v1/apply", good + "---\n" + routeHead + "  parentRefs: [{group: \"\", kind: Service, name: web}, {kind: Gateway, group: gateway.networking.k8s.io, name: gw}]\n  hostnames: [web.example.com]\n  rules: [{backendRefs: [{name: web}]}]\n",
			`document 4: HTTPRoute \"web\": spec.hostnames: must be empty when the route has a Service parent`},
		{"file of many", "/api/v1/apply/files", filesBody(t, "a.yaml", good, "b.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {selector: {app: x}, ports: [{port: 0}]}\n"),
			`b.yaml: document 1: Service \"x\": spec.ports[0].port: must be between 1 and 65535`},
		{"duplicate across files", "/api/v1/apply/files", filesBody(t, "a.yaml", good, "b.yaml", good),
			`b.yaml: document 1: Service \"web\": duplicates a.yaml: document 1`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, srv, "POST", tt.path, tt.body, token)
			if code != 400 || !strings.Contains(body, tt.want) {
				t.Errorf("apply = %d %s\nwant 400 containing %s", code, body, tt.want)
			}
			if st.Revision() != 0 {
				t.Fatalf("Revision = %d after a refused apply, want 0", st.Revision())
			}
			if got := testutil.ToFloat64(counter(t, reg)); got != float64(i+1) {
				t.Errorf("refusals counted = %v, want %d", got, i+1)
			}
		})
	}
	// The CA's trust domain, or none, is accepted; none is stored as the CA's.
	if code, body := do(t, srv, "POST", "/api/v1/apply", "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec: {}\n", token); code != 200 {
		t.Fatalf("MeshConfig without a trust domain: %d %s", code, body)
	}
	if _, body := do(t, srv, "GET", "/api/v1/resources/meshconfig/default", "", token); !strings.Contains(body, `"trustDomain": "cluster.local"`) {
		t.Errorf("stored MeshConfig = %s, want the CA's trust domain filled in", body)
	}
}

func counter(t *testing.T, reg *prometheus.Registry) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || mfs[0].GetName() != "weft_api_apply_refused_total" {
		t.Fatalf("metrics = %v, %v", mfs, err)
	}
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return mfs[0].GetMetric()[0].GetCounter().GetValue() })
}

func filesBody(t *testing.T, nameContent ...string) string {
	t.Helper()
	var req FilesRequest
	for i := 0; i+1 < len(nameContent); i += 2 {
		req.Files = append(req.Files, File{Name: nameContent[i], Content: nameContent[i+1]})
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestApplyFilesAllOrNothing: the files of one request are stored in one
// transaction.
func TestApplyFilesAllOrNothing(t *testing.T) {
	srv, st, _ := newMeshServer(t)
	code, body := do(t, srv, "POST", "/api/v1/apply/files", filesBody(t, "a.yaml", good, "b.yaml", strings.ReplaceAll(strings.Split(good, "---")[1], "web", "api")+"---\napiVersion: weft.dev/v1alpha1\nkind: DestinationPolicy\nmetadata: {name: p, namespace: shop}\nspec: {targetRef: {name: api}}\n"), token)
	if code != 200 || strings.Count(body, `"created"`) != 5 {
		t.Fatalf("apply = %d %s", code, body)
	}
	if st.Revision() != 1 {
		t.Errorf("Revision = %d, want 1 (one transaction)", st.Revision())
	}
}

// TestRouteStatus: a route's status, computed on read from the stored
// configuration and the current workloads, says per parent whether it is
// accepted and whether its backends resolve, with the Gateway API reasons;
// it names the rules that answer 500 (no backendRefs — unless the rule
// redirects — or every weight 0).
func TestRouteStatus(t *testing.T) {
	srv, _, _ := newMeshServer(t)
	cfg := routeHead + `  parentRefs: [{group: "", kind: Service, name: web}, {group: "", kind: Service, name: gone}]
  rules:
  - matches: [{path: {value: /missing}}]
    backendRefs: [{name: nosuch}]
  - matches: [{path: {value: /empty}}]
  - backendRefs: [{name: api}]
  - matches: [{path: {value: /moved}}]
    filters: [{type: RequestRedirect, requestRedirect: {hostname: elsewhere}}]
  - matches: [{path: {value: /off}}]
    backendRefs: [{name: api, weight: 0}]
---
apiVersion: weft.dev/v1alpha1
kind: DestinationPolicy
metadata: {name: p, namespace: shop}
spec: {targetRef: {name: nosuch}}
---
apiVersion: weft.dev/v1alpha1
kind: DestinationPolicy
metadata: {name: q, namespace: shop}
spec: {targetRef: {name: web}}
`
	if code, body := do(t, srv, "POST", "/api/v1/apply", cfg, token); code != 200 {
		t.Fatalf("apply = %d %s", code, body)
	}
	_, body := do(t, srv, "GET", "/api/v1/resources/httproute/shop/web", "", token)
	o, err := api.Unmarshal([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	parents := o.(*gatewayv1.HTTPRoute).Status.Parents
	if len(parents) != 2 {
		t.Fatalf("status parents = %+v, want one per parentRef", parents)
	}
	type cond struct{ typ, status, reason, msg string }
	want := [][]cond{
		{{"Accepted", "True", "Accepted", "attached to Service shop/web"},
			{"ResolvedRefs", "False", "BackendNotFound", `spec.rules[0].backendRefs[0]: no Service "nosuch" in namespace "shop"`}},
		{{"Accepted", "False", "NoMatchingParent", `no Service "gone" in namespace "shop"`},
			{"ResolvedRefs", "False", "BackendNotFound", "spec.rules[1] has no backendRefs: the requests it matches are answered 500; every backendRef of spec.rules[4] has weight 0: the requests it matches are answered 500"}},
	}
	for i, p := range parents {
		if p.ControllerName != ControllerName || string(p.ParentRef.Name) != []string{"web", "gone"}[i] {
			t.Errorf("parent %d = %+v", i, p)
		}
		for j, c := range p.Conditions {
			w := want[i][j]
			if c.Type != w.typ || string(c.Status) != w.status || c.Reason != w.reason || !strings.Contains(c.Message, w.msg) || c.ObservedGeneration != 1 {
				t.Errorf("parent %d condition %d = %+v, want %+v", i, j, c, w)
			}
		}
	}
	_, body = do(t, srv, "GET", "/api/v1/resources/destinationpolicy?namespace=shop", "", token)
	if !strings.Contains(body, `"reason": "TargetNotFound"`) || !strings.Contains(body, `"reason": "Accepted"`) {
		t.Errorf("policy statuses = %s, want TargetNotFound for p and Accepted for q", body)
	}
}

// TestAttribute: a generated Service resource that does not validate is
// blamed on the applied route rule it was compiled from, or on the
// applied Service.
func TestAttribute(t *testing.T) {
	objs, err := api.DecodeLocated([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	res := &weftv1.Service{Name: "web", Namespace: "default", Routes: []*weftv1.Route{{Name: "default/web/0"}}}
	got := attribute(objs, "web.default", res, weftv1.ValidateService(res)).Error()
	if want := `document 2: HTTPRoute "web": spec.rules[0]: generates Service resource "web.default", which proxies would reject: routes[0]: backends: must not be empty`; !strings.HasPrefix(got, want) {
		t.Errorf("route blamed as %q, want %q", got, want)
	}
	got = attribute(objs, "web.shop", &weftv1.Service{}, errors.New("ports[0].port: 0 out of range")).Error()
	if want := `document 1: Service "web": spec: generates Service resource "web.shop", which proxies would reject: ports[0].port`; !strings.HasPrefix(got, want) {
		t.Errorf("service blamed as %q, want %q", got, want)
	}
}
