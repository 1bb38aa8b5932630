package mesh

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weft.dev/weft/internal/api"
)

// builderConfig declares services of every selector shape the builder
// indexes differently: by app, by app and version, without app, with an
// empty selector, and one that shadows an implicit service.
func builderConfig() *api.Set {
	svc := func(name, ns string, sel map[string]string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.ServiceSpec{Selector: sel}}
	}
	return &api.Set{Services: []*corev1.Service{
		svc("orders-v2", "default", map[string]string{"app": "orders", "version": "v2"}),
		svc("tier-x", "default", map[string]string{"tier": "x"}),
		svc("tier-x", "shop", map[string]string{"tier": "x"}),
		svc("empty", "default", nil),
		// Declared with the name of an implicit service: it stays when
		// the last "payments" workload leaves.
		svc("payments", "default", map[string]string{"app": "payments"}),
	}}
}

// current applies changed to ws (by ID) and returns the live workloads.
func current(ws map[string]*Workload, changed map[string]*Workload) []*Workload {
	for id, w := range changed {
		if w == nil {
			delete(ws, id)
		} else {
			ws[id] = w
		}
	}
	return slices.Collect(maps.Values(ws))
}

// checkSnapshot compares an incremental snapshot with Build of the same
// inputs: services and keys by value, endpoints and workloads by pointer.
func checkSnapshot(t *testing.T, want, got *Snapshot) {
	t.Helper()
	if diff := cmp.Diff(want.Keys, got.Keys); diff != "" {
		t.Errorf("keys (-build +incremental):\n%s", diff)
	}
	// An unchanged Service resource read again may hold an empty selector
	// where the snapshot's has nil, or the reverse.
	if !reflect.DeepEqual(serviceValues(want.Services), serviceValues(got.Services)) {
		t.Errorf("services (-build +incremental):\n%s", cmp.Diff(want.Services, got.Services, cmpopts.EquateEmpty()))
	}
	if diff := cmp.Diff(endpointIDs(want.Endpoints), endpointIDs(got.Endpoints)); diff != "" {
		t.Errorf("endpoints (-build +incremental):\n%s", diff)
	}
	for key, eps := range want.Endpoints {
		if !slices.Equal(eps, got.Endpoints[key]) {
			t.Errorf("endpoints of %s hold other workload values than Build's", key)
		}
	}
	if !slices.Equal(want.Workloads, got.Workloads) {
		t.Errorf("workloads: Build %v, incremental %v", workloadIDs(want.Workloads), workloadIDs(got.Workloads))
	}
	if want.Config != got.Config {
		t.Error("config differs")
	}
}

// serviceValues copies services by value, with empty selectors and port
// lists made nil.
func serviceValues(services map[string]*Service) map[string]Service {
	out := make(map[string]Service, len(services))
	for k, s := range services {
		v := *s
		if len(v.Selector) == 0 {
			v.Selector = nil
		}
		if len(v.Ports) == 0 {
			v.Ports = nil
		}
		out[k] = v
	}
	return out
}

func endpointIDs(eps map[string][]*Workload) map[string][]string {
	out := map[string][]string{}
	for key, ws := range eps {
		out[key] = workloadIDs(ws)
	}
	return out
}

func workloadIDs(ws []*Workload) []string {
	out := []string{}
	for _, w := range ws {
		out = append(out, w.ID+"@"+strconv.FormatUint(w.Revision, 10))
	}
	return out
}

func TestBuilderApply(t *testing.T) {
	rev := uint64(0)
	w := func(id, svc, ns, version, addr string, extra ...string) *Workload {
		rev++
		wl := workload(id, svc, ns, version, addr)
		for i := 0; i+1 < len(extra); i += 2 {
			wl.Labels[extra[i]] = extra[i+1]
		}
		wl.Revision = rev
		return wl
	}
	o1 := w("o1", "orders", "default", "v1", "10.0.0.1:1")
	o2 := w("o2", "orders", "default", "v2", "10.0.0.2:1")
	p1 := w("p1", "payments", "default", "", "10.0.0.3:1")
	c1 := w("c1", "client", "default", "", "")
	start := []*Workload{o1, o2, p1, c1}

	type step struct {
		name    string
		changed map[string]*Workload
		want    Changes
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"no change", []step{
			{"empty batch", nil, Changes{}},
			{"same pointers again", map[string]*Workload{"o1": o1, "gone": nil}, Changes{}},
		}},
		{"endpoint churn", []step{
			{"o1 restarts elsewhere", map[string]*Workload{"o1": w("o1", "orders", "default", "v1", "10.0.0.9:1")}, Changes{Endpoints: []string{"orders.default"}}},
			{"o2 leaves", map[string]*Workload{"o2": nil}, Changes{Endpoints: []string{"orders-v2.default", "orders.default"}}},
			{"o2 back as v1", map[string]*Workload{"o2": w("o2", "orders", "default", "v1", "10.0.0.2:1")}, Changes{Endpoints: []string{"orders.default"}}},
			{"client reconnects", map[string]*Workload{"c1": w("c1", "client", "default", "", "")}, Changes{}},
		}},
		{"implicit services", []step{
			{"first search workload", map[string]*Workload{"s1": w("s1", "search", "default", "", "10.0.1.1:1")}, Changes{Added: []string{"search.default"}}},
			{"second, without address", map[string]*Workload{"s2": w("s2", "search", "default", "", "")}, Changes{}},
			{"first leaves", map[string]*Workload{"s1": nil}, Changes{Endpoints: []string{"search.default"}}},
			{"last leaves", map[string]*Workload{"s2": nil}, Changes{Removed: []string{"search.default"}}},
			{"client-only service", map[string]*Workload{"c2": w("c2", "cron", "shop", "", "")}, Changes{Added: []string{"cron.shop"}}},
			{"leave and join in one batch", map[string]*Workload{"c2": nil, "c3": w("c3", "cron", "shop", "", "10.0.1.2:1")}, Changes{Endpoints: []string{"cron.shop"}}},
		}},
		{"declared services", []step{
			{"last payments workload leaves", map[string]*Workload{"p1": nil}, Changes{Endpoints: []string{"payments.default"}}},
			{"tier label selects", map[string]*Workload{"x1": w("x1", "batch", "default", "", "10.0.2.1:1", "tier", "x")}, Changes{Added: []string{"batch.default"}, Endpoints: []string{"tier-x.default"}}},
			{"other namespace", map[string]*Workload{"x2": w("x2", "batch", "shop", "", "10.0.2.2:1", "tier", "x")}, Changes{Added: []string{"batch.shop"}, Endpoints: []string{"tier-x.shop"}}},
			{"label dropped", map[string]*Workload{"x1": w("x1", "batch", "default", "", "10.0.2.1:1")}, Changes{Endpoints: []string{"batch.default", "tier-x.default"}}},
			{"service renamed", map[string]*Workload{"x2": w("x2", "etl", "shop", "", "10.0.2.2:1", "tier", "x")}, Changes{Added: []string{"etl.shop"}, Removed: []string{"batch.shop"}, Endpoints: []string{"tier-x.shop"}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := builderConfig()
			live := map[string]*Workload{}
			ws := current(live, map[string]*Workload{"o1": o1, "o2": o2, "p1": p1, "c1": c1})
			b := NewBuilder(cfg, start)
			checkSnapshot(t, Build(cfg, ws), b.Snapshot())
			for _, st := range tt.steps {
				prev := b.Snapshot()
				got, changes := b.Apply(st.changed)
				if diff := cmp.Diff(st.want, changes); diff != "" {
					t.Errorf("%s: changes (-want +got):\n%s", st.name, diff)
				}
				want := Build(cfg, current(live, st.changed))
				checkSnapshot(t, want, got)
				if diff := cmp.Diff(Diff(prev, want), changes); diff != "" {
					t.Errorf("%s: changes differ from Diff (-Diff +Apply):\n%s", st.name, diff)
				}
				if got != b.Snapshot() {
					t.Errorf("%s: Snapshot is not the last result of Apply", st.name)
				}
			}
		})
	}
}

// TestBuilderRandom applies random batches of workload changes, and now and
// then a random configuration change, and checks after each one that the
// incremental snapshot equals Build of the same configuration and
// workloads, that the reported changes equal Diff of the two, and that no
// earlier snapshot was modified.
func TestBuilderRandom(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			rc := newRandomConfig(rng)
			cfg := rc.set(t)
			rev := uint64(0)
			random := func(id string) *Workload {
				rev++
				pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
				w := workload(id, pick("orders", "payments", "search", "cron"), pick("default", "default", "shop"), pick("", "v1", "v2"), "")
				if rng.IntN(4) > 0 {
					w.Address = "10.0." + strconv.Itoa(rng.IntN(3)) + ".1:" + strconv.Itoa(rng.IntN(5))
				}
				if rng.IntN(3) == 0 {
					w.Labels["tier"] = "x"
				}
				if rng.IntN(10) == 0 {
					delete(w.Labels, "app") // not from WorkloadLabels, but Build handles it
				}
				w.Revision = rev
				return w
			}
			live := map[string]*Workload{}
			var initial map[string]*Workload
			if seed%2 == 0 {
				initial = map[string]*Workload{}
				for i := range 10 {
					id := "w" + strconv.Itoa(i)
					initial[id] = random(id)
				}
			}
			b := NewBuilder(cfg, current(live, initial))
			type kept struct {
				snap     *Snapshot
				ids      map[string][]string
				ws       []string
				services map[string]Service
				keys     []string
			}
			var history []kept
			keep := func(s *Snapshot) {
				history = append(history, kept{s, endpointIDs(s.Endpoints), workloadIDs(s.Workloads), serviceValues(s.Services), slices.Clone(s.Keys)})
			}
			for step := range 200 {
				if rng.IntN(4) == 0 {
					prev := b.Snapshot()
					keep(prev)
					cfg = rc.change(t)
					got, changes := b.ApplyConfig(cfg)
					want := Build(cfg, current(live, nil))
					checkSnapshot(t, want, got)
					if diff := cmp.Diff(Diff(prev, want), changes); diff != "" {
						t.Fatalf("step %d: config changes differ from Diff (-Diff +ApplyConfig):\n%s", step, diff)
					}
					if t.Failed() {
						t.Fatalf("step %d: configuration change failed", step)
					}
				}
				changed := map[string]*Workload{}
				for range 1 + rng.IntN(4) {
					id := "w" + strconv.Itoa(rng.IntN(25))
					switch rng.IntN(4) {
					case 0:
						changed[id] = nil
					case 1:
						changed[id] = live[id] // already current: ignored
					default:
						changed[id] = random(id)
					}
				}
				prev := b.Snapshot()
				keep(prev)
				got, changes := b.Apply(changed)
				want := Build(cfg, current(live, changed))
				checkSnapshot(t, want, got)
				if diff := cmp.Diff(Diff(prev, want), changes); diff != "" {
					t.Fatalf("step %d: changes differ from Diff (-Diff +Apply):\n%s", step, diff)
				}
				if t.Failed() {
					t.Fatalf("step %d (changed %v) failed", step, slices.Sorted(maps.Keys(changed)))
				}
			}
			for i, h := range history {
				if diff := cmp.Diff(h.ids, endpointIDs(h.snap.Endpoints)); diff != "" {
					t.Fatalf("snapshot %d was modified after it was handed out:\n%s", i, diff)
				}
				if diff := cmp.Diff(h.ws, workloadIDs(h.snap.Workloads)); diff != "" {
					t.Fatalf("workloads of snapshot %d were modified:\n%s", i, diff)
				}
				if services := serviceValues(h.snap.Services); !reflect.DeepEqual(h.services, services) || !slices.Equal(h.keys, h.snap.Keys) {
					t.Fatalf("services of snapshot %d were modified:\n%s", i, cmp.Diff(h.services, services))
				}
			}
		})
	}
}

// BenchmarkBuilderApply: the mesh of BenchmarkBuild; each iteration one
// workload leaves or comes back.
func BenchmarkBuilderApply(b *testing.B) {
	var ws []*Workload
	for s := range 500 {
		name := fmt.Sprintf("svc-%d", s)
		for i := range 10 {
			ws = append(ws, workload(fmt.Sprintf("%s-%d", name, i), name, "default", fmt.Sprintf("v%d", i%2), fmt.Sprintf("10.0.%d.%d:15006", s/200, i+s%200)))
		}
	}
	bl := NewBuilder(&api.Set{}, ws)
	leave, back := map[string]*Workload{ws[0].ID: nil}, map[string]*Workload{ws[0].ID: ws[0]}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			bl.Apply(leave)
		} else {
			bl.Apply(back)
		}
		i++
	}
}
