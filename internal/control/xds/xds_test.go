package xds

import (
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/control/registry"
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

// TestRebuildPushesOnlyChanges: a rebuild hands the cache only resources
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
	if err := s.rebuild(); err != nil {
		t.Fatal(err)
	}
	if got := s.Pushes(); got != 1 {
		t.Fatalf("pushes after first build = %d, want 1", got)
	}
	if err := s.rebuild(); err != nil {
		t.Fatal(err)
	}
	if got := s.Pushes(); got != 1 {
		t.Errorf("pushes after a no-op rebuild = %d, want still 1", got)
	}
	before := s.endpoints.GetResources()["a.default"]
	reg.Connect(w("b-1", "b", "127.0.0.1:2"))
	if err := s.rebuild(); err != nil {
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
	if err := s.rebuild(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.services.GetResources()["b.default"]; ok {
		t.Error("service b still in the cache after its only workload left")
	}
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

// BenchmarkRebuildOneEndpointChange: 500 services x 10 workloads; each
// iteration one workload leaves or comes back, as when a pod restarts.
func BenchmarkRebuildOneEndpointChange(b *testing.B) {
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
	if err := s.rebuild(); err != nil {
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
		if err := s.rebuild(); err != nil {
			b.Fatal(err)
		}
	}
}
