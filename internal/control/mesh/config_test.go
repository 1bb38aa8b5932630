package mesh

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weft.dev/weft/internal/api"
)

// configWith returns builderConfig with the Service resources of edit
// applied by (name, namespace): a nil one is removed.
func configWith(t testing.TB, edit map[[2]string]*corev1.Service) *api.Set {
	t.Helper()
	byName := map[[2]string]*corev1.Service{}
	for _, s := range builderConfig().Services {
		byName[[2]string{s.Name, s.Namespace}] = s
	}
	for nn, s := range edit {
		if s == nil {
			delete(byName, nn)
		} else {
			byName[nn] = s
		}
	}
	var objs []api.Object
	for _, s := range byName {
		objs = append(objs, s)
	}
	set, err := api.NewSet(objs)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func declared(name, ns string, sel map[string]string, ports ...int32) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.ServiceSpec{Selector: sel}}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "http", Port: p})
	}
	return s
}

func TestBuilderApplyConfig(t *testing.T) {
	ws := []*Workload{
		workload("o1", "orders", "default", "v1", "10.0.0.1:1"),
		workload("o2", "orders", "default", "v2", "10.0.0.2:1"),
		workload("p1", "payments", "default", "", "10.0.0.3:1"),
		workload("c1", "client", "default", "", ""),
	}
	ws[0].Labels["tier"] = "x"
	relabelled := declared("tier-x", "default", map[string]string{"tier": "x"})
	relabelled.Labels = map[string]string{"team": "a"}
	tests := []struct {
		name string
		edit map[[2]string]*corev1.Service
		mc   *api.MeshConfig
		want Changes
	}{
		{"nothing changed", nil, nil, Changes{}},
		{"one resource read again, same content", map[[2]string]*corev1.Service{
			{"tier-x", "default"}: declared("tier-x", "default", map[string]string{"tier": "x"}),
		}, nil, Changes{}},
		{"only metadata changed", map[[2]string]*corev1.Service{{"tier-x", "default"}: relabelled}, nil, Changes{}},
		{"trust domain", nil, &api.MeshConfig{Spec: api.MeshConfigSpec{TrustDomain: "prod.example.com"}}, Changes{}},
		{"implicit service declared with ports", map[[2]string]*corev1.Service{
			{"orders", "default"}: declared("orders", "default", map[string]string{"app": "orders"}, 80),
		}, nil, Changes{Redefined: []string{"orders.default"}}},
		{"selector narrowed", map[[2]string]*corev1.Service{
			{"orders", "default"}: declared("orders", "default", map[string]string{"app": "orders", "version": "v2"}),
		}, nil, Changes{Redefined: []string{"orders.default"}, Endpoints: []string{"orders.default"}}},
		{"selector without app", map[[2]string]*corev1.Service{
			{"orders-v2", "default"}: declared("orders-v2", "default", map[string]string{"version": "v2"}),
		}, nil, Changes{Redefined: []string{"orders-v2.default"}}},
		{"declaration removed, workloads remain", map[[2]string]*corev1.Service{{"payments", "default"}: nil}, nil,
			Changes{Redefined: []string{"payments.default"}}},
		{"declaration removed, no workloads", map[[2]string]*corev1.Service{{"tier-x", "shop"}: nil, {"empty", "default"}: nil}, nil,
			Changes{Removed: []string{"empty.default", "tier-x.shop"}}},
		{"services added", map[[2]string]*corev1.Service{
			{"all-v1", "default"}: declared("all-v1", "default", map[string]string{"version": "v1"}, 8080),
			{"orders", "shop"}:    declared("orders", "shop", map[string]string{"app": "orders"}),
		}, nil, Changes{Added: []string{"all-v1.default", "orders.shop"}}},
		{"selector emptied", map[[2]string]*corev1.Service{{"tier-x", "default"}: declared("tier-x", "default", nil)}, nil,
			Changes{Redefined: []string{"tier-x.default"}, Endpoints: []string{"tier-x.default"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder(builderConfig(), ws)
			prev := b.Snapshot()
			cfg := configWith(t, tt.edit)
			cfg.MeshConfig = tt.mc
			got, changes := b.ApplyConfig(cfg)
			if diff := cmp.Diff(tt.want, changes); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			want := Build(cfg, ws)
			checkSnapshot(t, want, got)
			if diff := cmp.Diff(Diff(prev, want), changes); diff != "" {
				t.Errorf("changes differ from Diff (-Diff +ApplyConfig):\n%s", diff)
			}
			if got != b.Snapshot() {
				t.Error("Snapshot is not the last result of ApplyConfig")
			}
			// The builder's indexes follow: a workload change after the
			// configuration change is applied as Build would.
			o3 := workload("o3", "orders", "default", "v2", "10.0.0.4:1")
			o3.Labels["tier"] = "x"
			got, _ = b.Apply(map[string]*Workload{"o3": o3, "o1": nil})
			checkSnapshot(t, Build(cfg, []*Workload{ws[1], ws[2], ws[3], o3}), got)
		})
	}
}

// randomConfig keeps a random set of Service resources of every selector
// shape the builder indexes differently, some named after implicit
// services, and changes a few of them at a time.
type randomConfig struct {
	rng      *rand.Rand
	services map[[2]string]*corev1.Service
	rv       int
}

// change adds, removes, replaces or copies unchanged 1 to 3 Service
// resources and returns the new configuration.
func (c *randomConfig) change(t testing.TB) *api.Set {
	pick := func(xs ...string) string { return xs[c.rng.IntN(len(xs))] }
	for range 1 + c.rng.IntN(3) {
		nn := [2]string{pick("orders", "payments", "search", "orders-v2", "tier-x", "v1", "empty"), pick("default", "default", "shop")}
		old := c.services[nn]
		switch c.rng.IntN(5) {
		case 0:
			delete(c.services, nn)
		case 1:
			if old != nil {
				// A copy as the store would read it again: same
				// content, new pointer.
				c.services[nn] = old.DeepCopy()
			}
		default:
			var sel map[string]string
			switch c.rng.IntN(6) {
			case 0:
				sel = map[string]string{"app": pick("orders", "payments", "search", "cron")}
			case 1:
				sel = map[string]string{"app": pick("orders", "payments"), "version": pick("v1", "v2")}
			case 2:
				sel = map[string]string{"tier": "x"}
			case 3:
				sel = map[string]string{"version": pick("v1", "v2")}
			case 4:
				sel = map[string]string{}
			}
			s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: nn[0], Namespace: nn[1]}, Spec: corev1.ServiceSpec{Selector: sel}}
			if c.rng.IntN(2) == 0 {
				s.Spec.Ports = []corev1.ServicePort{{Name: pick("http", "grpc"), Port: int32(80 + c.rng.IntN(2))}}
			}
			if c.rng.IntN(2) == 0 {
				// As stored: compared by resourceVersion.
				c.rv++
				s.ResourceVersion = strconv.Itoa(c.rv)
			}
			c.services[nn] = s
		}
	}
	return c.set(t)
}

// set is the current configuration.
func (c *randomConfig) set(t testing.TB) *api.Set {
	var objs []api.Object
	for _, s := range c.services {
		objs = append(objs, s)
	}
	if c.rng.IntN(4) == 0 {
		objs = append(objs, &api.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: api.MeshConfigName}, Spec: api.MeshConfigSpec{TrustDomain: "example.com"}})
	}
	set, err := api.NewSet(objs)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func newRandomConfig(rng *rand.Rand) *randomConfig {
	c := &randomConfig{rng: rng, services: map[[2]string]*corev1.Service{}}
	for _, s := range builderConfig().Services {
		c.services[[2]string{s.Name, s.Namespace}] = s
	}
	return c
}

// BenchmarkBuilderApplyConfig: the mesh of BenchmarkBuild; each iteration
// the selector of one of its 100 declared services changes.
func BenchmarkBuilderApplyConfig(b *testing.B) {
	var ws []*Workload
	var sets [2]*api.Set
	for s := range 500 {
		name := fmt.Sprintf("svc-%d", s)
		for i := range 10 {
			ws = append(ws, workload(fmt.Sprintf("%s-%d", name, i), name, "default", fmt.Sprintf("v%d", i%2), fmt.Sprintf("10.0.%d.%d:15006", s/200, i+s%200)))
		}
		if s < 100 {
			for i := range sets {
				if sets[i] == nil {
					sets[i] = &api.Set{}
				}
				version := "v1"
				if s == 0 && i == 1 {
					version = "v0"
				}
				sets[i].Services = append(sets[i].Services, &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Name: name + "-v1", Namespace: "default", ResourceVersion: version},
					Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": name, "version": version}},
				})
			}
		}
	}
	for _, set := range sets {
		slices.SortFunc(set.Services, func(a, b *corev1.Service) int { return strings.Compare(a.Name, b.Name) })
	}
	bl := NewBuilder(sets[0], ws)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, ch := bl.ApplyConfig(sets[i%2]); len(ch.Redefined) != 1 {
			b.Fatalf("changes %+v, want one service redefined", ch)
		}
	}
}
