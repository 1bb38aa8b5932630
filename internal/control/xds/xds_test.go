package xds

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/protobuf/testing/protocmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/control/registry"
	"weft.dev/weft/internal/control/xdsgen"
	"weft.dev/weft/internal/xdsapi/weftv1"
	"weft.dev/weft/internal/xdsmeta"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type blobs struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (b *blobs) BlobsWithPrefix(prefix string) (map[string][]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range b.m {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out, nil
}

func (b *blobs) UpdateBlobs(put map[string][]byte, del []string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, v := range put {
		b.m[k] = v
	}
	for _, k := range del {
		delete(b.m, k)
	}
	return nil
}

type staticConfig struct{ set *api.Set }

func (s staticConfig) Set() (*api.Set, error)               { return s.set, nil }
func (s staticConfig) Subscribe() (<-chan struct{}, func()) { return make(chan struct{}), func() {} }

// TestRebuildPushesOnlyChanges: an update hands the cache only resources
// that changed, so an unrelated event pushes nothing.
func TestRebuildPushesOnlyChanges(t *testing.T) {
	reg, err := registry.New(&blobs{m: map[string][]byte{}}, 0, quiet)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Config: staticConfig{&api.Set{}}, Registry: reg, Logger: quiet})
	w := func(id, svc, addr string) mesh.Workload {
		return mesh.Workload{ID: id, Service: svc, Namespace: "default", Address: addr, Identity: "spiffe://cluster.local/ns/default/sa/" + svc, Labels: map[string]string{"app": svc}}
	}
	reg.Connect(w("a-1", "a", "127.0.0.1:1"))
	if _, err := s.rebuild(); err != nil {
		t.Fatal(err)
	}
	if got := s.Pushes(); got != 1 {
		t.Fatalf("pushes after first build = %d, want 1", got)
	}
	if _, err := s.rebuild(); err != nil {
		t.Fatal(err)
	}
	if got := s.Pushes(); got != 1 {
		t.Errorf("pushes after a no-op rebuild = %d, want still 1", got)
	}
	before := s.endpoints.GetResources()["a.default"]
	reg.Connect(w("b-1", "b", "127.0.0.1:2"))
	if _, err := s.applyWorkloads(); err != nil {
		t.Fatal(err)
	}
	if got := s.Pushes(); got != 2 {
		t.Errorf("pushes after adding b = %d, want 2", got)
	}
	if after := s.endpoints.GetResources()["a.default"]; after != before {
		t.Error("a's endpoints were replaced although they did not change")
	}
	if _, ok := s.services.GetResources()[weftv1.ResourceName("b", "default")]; !ok {
		t.Error("service b missing from the cache")
	}
	reg.Disconnect("b-1")
	if _, err := s.applyWorkloads(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.services.GetResources()["b.default"]; ok {
		t.Error("service b still in the cache after its only workload left")
	}
}

// mutableConfig is a ConfigSource whose set can be replaced.
type mutableConfig struct {
	mu      sync.Mutex
	set     *api.Set
	changes chan struct{}
}

func (c *mutableConfig) Set() (*api.Set, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.set, nil
}

func (c *mutableConfig) Subscribe() (<-chan struct{}, func()) { return c.changes, func() {} }

func (c *mutableConfig) replace(set *api.Set) {
	c.mu.Lock()
	c.set = set
	c.mu.Unlock()
	c.changes <- struct{}{}
}

func testWorkload(id, svc, ns, version, addr string) mesh.Workload {
	return mesh.Workload{ID: id, Service: svc, Namespace: ns, Version: version, Address: addr,
		Identity: "spiffe://cluster.local/ns/" + ns + "/sa/" + svc, Labels: mesh.WorkloadLabels(svc, version, nil)}
}

// checkPublished compares what the caches hold with a full Generate of
// the same configuration and workloads.
func checkPublished(t *testing.T, s *Server, cfg *api.Set, reg *registry.Registry) {
	t.Helper()
	want := xdsgen.Generate(mesh.Build(cfg, reg.List()))
	got := xdsgen.Resources{Services: map[string]*weftv1.Service{}, Endpoints: map[string]*weftv1.Endpoints{}}
	for k, r := range s.services.GetResources() {
		got.Services[k] = r.(*weftv1.Service)
	}
	for k, r := range s.endpoints.GetResources() {
		got.Endpoints[k] = r.(*weftv1.Endpoints)
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("published resources differ from a full Generate (-want +got):\n%s", diff)
	}
}

// TestApplyWorkloadsRegeneratesOnlyAffected: a registry-only batch
// generates and pushes only the resources of the services it affects, and
// leaves the caches equal to a full Generate of the same state.
func TestApplyWorkloadsRegeneratesOnlyAffected(t *testing.T) {
	reg, err := registry.New(&blobs{m: map[string][]byte{}}, 0, quiet)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &api.Set{Services: []*corev1.Service{{
		ObjectMeta: metav1.ObjectMeta{Name: "svc-1-v2", Namespace: "default"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "svc-1", "version": "v2"}},
	}}}
	s := New(Options{Config: staticConfig{cfg}, Registry: reg, Logger: quiet})
	for i := range 30 {
		svc := "svc-" + strconv.Itoa(i%10)
		reg.Connect(testWorkload(svc+"-"+strconv.Itoa(i), svc, "default", "v"+strconv.Itoa(i%2+1), "10.0.0.1:"+strconv.Itoa(10000+i)))
	}
	p, err := s.rebuild()
	if err != nil {
		t.Fatal(err)
	}
	if p.generated != 22 || len(p.services) != 11 || len(p.endpoints) != 11 {
		t.Fatalf("first build generated %d, pushed %d services and %d endpoints; want 22, 11, 11", p.generated, len(p.services), len(p.endpoints))
	}
	checkPublished(t, s, cfg, reg)

	tests := []struct {
		name          string
		do            func()
		wantGenerated int
		wantServices  []string
		wantEndpoints []string
	}{
		{"nothing changed", func() {}, 0, nil, nil},
		{"one workload leaves", func() { reg.Disconnect("svc-3-3") }, 1, nil, []string{"svc-3.default"}},
		{"a v2 workload leaves", func() { reg.Disconnect("svc-1-11") }, 2, nil, []string{"svc-1-v2.default", "svc-1.default"}},
		{"same workload reconnects unchanged", func() { reg.Connect(testWorkload("svc-4-4", "svc-4", "default", "v1", "10.0.0.1:10004")) }, 1, nil, nil},
		{"a client-only workload", func() { reg.Connect(testWorkload("cli-1", "cli", "default", "", "")) }, 2, []string{"cli.default"}, []string{"cli.default"}},
		{"two services in one batch", func() {
			reg.Disconnect("svc-5-5")
			reg.Connect(testWorkload("svc-6-99", "svc-6", "default", "v1", "10.0.0.1:10099"))
		}, 2, nil, []string{"svc-5.default", "svc-6.default"}},
		{"last workload of a service leaves", func() { reg.Disconnect("cli-1") }, 0, []string{"cli.default"}, []string{"cli.default"}},
		{"other namespace", func() { reg.Connect(testWorkload("svc-1-shop", "svc-1", "shop", "v2", "10.0.0.2:1")) }, 2, []string{"svc-1.shop"}, []string{"svc-1.shop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.do()
			p, err := s.applyWorkloads()
			if err != nil {
				t.Fatal(err)
			}
			checkPush(t, p, tt.wantGenerated, tt.wantServices, tt.wantEndpoints)
			checkPublished(t, s, cfg, reg)
			if s.Snapshot() != s.builder.Snapshot() {
				t.Error("the API's snapshot is not the latest")
			}
		})
	}
}

// TestRunRebuildsOnConfigChange: the update loop applies registry events
// incrementally and rebuilds on a configuration change, and stops with its
// context.
func TestRunRebuildsOnConfigChange(t *testing.T) {
	reg, err := registry.New(&blobs{m: map[string][]byte{}}, 0, quiet)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &mutableConfig{set: &api.Set{}, changes: make(chan struct{})}
	s := New(Options{Config: cfg, Registry: reg, Logger: quiet, Debounce: time.Millisecond, MaxDelay: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	reg.Connect(testWorkload("a-1", "a", "default", "", "127.0.0.1:1"))
	waitFor("a's endpoints", func() bool {
		eps, ok := s.endpoints.GetResources()["a.default"].(*weftv1.Endpoints)
		return ok && len(eps.GetEndpoints()) == 1
	})
	declared := &api.Set{Services: []*corev1.Service{{
		ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "a"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}}}
	cfg.replace(declared)
	waitFor("a's declared port", func() bool {
		svc, ok := s.services.GetResources()["a.default"].(*weftv1.Service)
		return ok && len(svc.GetPorts()) == 1
	})
	reg.Disconnect("a-1")
	waitFor("a's endpoints to empty", func() bool {
		eps, ok := s.endpoints.GetResources()["a.default"].(*weftv1.Endpoints)
		return ok && len(eps.GetEndpoints()) == 0
	})
	checkPublished(t, s, declared, reg)
}

func TestWorkloadFromNode(t *testing.T) {
	id := spiffeid.RequireFromString("spiffe://cluster.local/ns/default/sa/orders")
	node := func(w xdsmeta.Workload) *corev3.Node {
		md, err := xdsmeta.Encode(w)
		if err != nil {
			t.Fatal(err)
		}
		return &corev3.Node{Id: "orders-1", Metadata: md}
	}
	good := xdsmeta.Workload{Service: "orders", Namespace: "default", ServiceAccount: "orders", Version: "v2", Address: "127.0.0.1:9"}
	tests := []struct {
		name    string
		node    *corev3.Node
		wantErr string
	}{
		{"matching identity", node(good), ""},
		{"no node", nil, "no node id"},
		{"other service account", node(xdsmeta.Workload{Service: "orders", Namespace: "default", ServiceAccount: "payments"}), "claims service account default/payments"},
		{"other namespace", node(xdsmeta.Workload{Service: "orders", Namespace: "shop", ServiceAccount: "orders"}), "claims service account shop/orders"},
		{"bad service name", node(xdsmeta.Workload{Service: "Orders!", Namespace: "default", ServiceAccount: "orders"}), "service:"},
		{"no metadata", &corev3.Node{Id: "x"}, "metadata is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := workloadFromNode(tt.node, id)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if w.Identity != id.String() || w.Labels["version"] != "v2" || w.Labels["app"] != "orders" {
					t.Errorf("workload = %+v", w)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// benchmarkOneEndpointChange: 500 services x 10 workloads; each iteration
// one workload leaves or comes back, as when a pod restarts, and update
// publishes the change.
func benchmarkOneEndpointChange(b *testing.B, update func(*Server) (push, error)) {
	reg, err := registry.New(&blobs{m: map[string][]byte{}}, 0, quiet)
	if err != nil {
		b.Fatal(err)
	}
	s := New(Options{Config: staticConfig{&api.Set{}}, Registry: reg, Logger: quiet})
	var ws []mesh.Workload
	for i := range 5000 {
		svc := "svc-" + strconv.Itoa(i/10)
		w := mesh.Workload{ID: svc + "-" + strconv.Itoa(i), Service: svc, Namespace: "default", Address: "10.0.0.1:" + strconv.Itoa(10000+i), Identity: "spiffe://cluster.local/ns/default/sa/" + svc, Labels: map[string]string{"app": svc}}
		ws = append(ws, w)
		reg.Connect(w)
	}
	if _, err := s.rebuild(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			reg.Disconnect(ws[0].ID)
		} else {
			reg.Connect(ws[0])
		}
		i++
		p, err := update(s)
		if err != nil {
			b.Fatal(err)
		}
		if len(p.endpoints) != 1 {
			b.Fatalf("pushed endpoints %v, want one", p.endpoints)
		}
	}
}

// BenchmarkRebuildOneEndpointChange measures the incremental path taken
// for registry events.
func BenchmarkRebuildOneEndpointChange(b *testing.B) {
	benchmarkOneEndpointChange(b, (*Server).applyWorkloads)
}

// BenchmarkRebuildFullOneEndpointChange measures the full path taken for a
// configuration change, on the same event for comparison.
func BenchmarkRebuildFullOneEndpointChange(b *testing.B) {
	benchmarkOneEndpointChange(b, (*Server).rebuild)
}

// benchRoute is an HTTPRoute attached to service svc-<i> that sends
// requests under prefix to it; rv is its resourceVersion, as the store
// sets it.
func benchRoute(i int, prefix, rv string) *gatewayv1.HTTPRoute {
	svc := gatewayv1.ObjectName("svc-" + strconv.Itoa(i))
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: string(svc), Namespace: "default", ResourceVersion: rv},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Group: new(gatewayv1.Group("")), Kind: new(gatewayv1.Kind("Service")), Name: svc}}},
			Rules: []gatewayv1.HTTPRouteRule{{
				Matches:     []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchPathPrefix), Value: new(prefix)}}},
				BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: svc}}}},
			}},
		},
	}
}

// benchmarkOneRouteChange: 500 services x 10 workloads, each with an
// HTTPRoute; each iteration the route of one service changes its path
// prefix, as after a `weft apply`, and update publishes the change. The
// two configurations alternated share no object, as two reads of the
// store would not.
func benchmarkOneRouteChange(b *testing.B, update func(*Server) (push, error)) {
	reg, err := registry.New(&blobs{m: map[string][]byte{}}, 0, quiet)
	if err != nil {
		b.Fatal(err)
	}
	set := func(prefix, rv string) *api.Set {
		s := &api.Set{}
		for i := range 500 {
			if i == 0 {
				s.HTTPRoutes = append(s.HTTPRoutes, benchRoute(i, prefix, rv))
			} else {
				s.HTTPRoutes = append(s.HTTPRoutes, benchRoute(i, "/api", "1"))
			}
		}
		slices.SortFunc(s.HTTPRoutes, func(a, b *gatewayv1.HTTPRoute) int { return strings.Compare(a.Name, b.Name) })
		return s
	}
	sets := [2]*api.Set{set("/v1", "2"), set("/v2", "3")}
	cfg := &mutableConfig{set: sets[1]}
	s := New(Options{Config: cfg, Registry: reg, Logger: quiet})
	for i := range 5000 {
		svc := "svc-" + strconv.Itoa(i/10)
		reg.Connect(mesh.Workload{ID: svc + "-" + strconv.Itoa(i), Service: svc, Namespace: "default", Address: "10.0.0.1:" + strconv.Itoa(10000+i), Identity: "spiffe://cluster.local/ns/default/sa/" + svc, Labels: map[string]string{"app": svc}})
	}
	if _, err := s.rebuild(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		cfg.mu.Lock()
		cfg.set = sets[i%2]
		cfg.mu.Unlock()
		i++
		p, err := update(s)
		if err != nil {
			b.Fatal(err)
		}
		if !slices.Equal(p.services, []string{"svc-0.default"}) || len(p.endpoints) != 0 {
			b.Fatalf("pushed services %v and endpoints %v, want svc-0.default's Service", p.services, p.endpoints)
		}
	}
}

// BenchmarkRebuildFullOneRouteChange measures the full path, which
// rebuilds the snapshot and every Service resource, on one route change.
func BenchmarkRebuildFullOneRouteChange(b *testing.B) {
	benchmarkOneRouteChange(b, (*Server).rebuild)
}

// BenchmarkRebuildOneRouteChange measures the incremental path taken for
// a configuration change.
func BenchmarkRebuildOneRouteChange(b *testing.B) {
	benchmarkOneRouteChange(b, (*Server).applyConfig)
}

// checkPush checks what one update generated and handed to the caches.
func checkPush(t *testing.T, p push, wantGenerated int, wantServices, wantEndpoints []string) {
	t.Helper()
	if p.generated != wantGenerated {
		t.Errorf("generated %d resources, want %d", p.generated, wantGenerated)
	}
	if diff := cmp.Diff(wantServices, p.services); diff != "" {
		t.Errorf("services pushed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantEndpoints, p.endpoints); diff != "" {
		t.Errorf("endpoints pushed (-want +got):\n%s", diff)
	}
}
