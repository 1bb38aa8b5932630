package config

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestUpdateMatchesBuild applies random deltas with Update and checks after
// each one that the result equals Build of the same resources, and that the
// previous Config was left as it was.
func TestUpdateMatchesBuild(t *testing.T) {
	for seed := range uint64(10) {
		rng := rand.New(rand.NewPCG(seed, 7))
		services := map[string]*weftv1.Service{}
		endpoints := map[string]*weftv1.Endpoints{}
		cfg := Empty()
		for step := range 60 {
			var d Delta
			if rng.IntN(2) == 0 {
				d.Services = map[string]*weftv1.Service{}
				for range rng.IntN(4) {
					s := randService(rng)
					d.Services[weftv1.ResourceName(s.Name, s.Namespace)] = s
				}
				for name := range services {
					if rng.IntN(6) == 0 {
						if _, updated := d.Services[name]; !updated {
							d.RemovedServices = append(d.RemovedServices, name)
						}
					}
				}
			} else {
				d.Endpoints = map[string]*weftv1.Endpoints{}
				for range rng.IntN(4) {
					e := randEndpoints(rng)
					d.Endpoints[weftv1.ResourceName(e.Service, e.Namespace)] = e
				}
				for name := range endpoints {
					if rng.IntN(6) == 0 {
						if _, updated := d.Endpoints[name]; !updated {
							d.RemovedEndpoints = append(d.RemovedEndpoints, name)
						}
					}
				}
			}
			before := snapshotOf(cfg)
			next, err := cfg.Update(fmt.Sprint(step), d)
			if err != nil {
				t.Fatalf("seed %d step %d: Update: %v", seed, step, err)
			}
			if after := snapshotOf(cfg); after != before {
				t.Fatalf("seed %d step %d: Update changed the previous Config", seed, step)
			}
			for _, n := range d.RemovedServices {
				delete(services, n)
			}
			for n, s := range d.Services {
				services[n] = s
			}
			for _, n := range d.RemovedEndpoints {
				delete(endpoints, n)
			}
			for n, e := range d.Endpoints {
				endpoints[n] = e
			}
			want, err := Build(fmt.Sprint(step), sorted(services), sorted(endpoints))
			if err != nil {
				t.Fatalf("seed %d step %d: Build: %v", seed, step, err)
			}
			if !reflect.DeepEqual(next, want) {
				t.Fatalf("seed %d step %d: Update result differs from Build:\n got %s\nwant %s", seed, step, snapshotOf(next), snapshotOf(want))
			}
			cfg = next
		}
	}
}

func TestUpdateRejects(t *testing.T) {
	base, err := Build("1", []*weftv1.Service{svc("a")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		delta   Delta
		wantErr string
	}{
		{"service under another name", Delta{Services: map[string]*weftv1.Service{"b.default": svc("a")}}, `Service "b.default": name and namespace say "a.default"`},
		{"invalid service", Delta{Services: map[string]*weftv1.Service{"a.default": svc("a", &weftv1.Route{})}}, `Service "a.default": routes[0]: backends: must not be empty`},
		{"endpoints under another name", Delta{Endpoints: map[string]*weftv1.Endpoints{"b.default": {Service: "a", Namespace: "default"}}}, `Endpoints "b.default": service and namespace say "a.default"`},
		{"invalid endpoint", Delta{Endpoints: map[string]*weftv1.Endpoints{"a.default": {Service: "a", Namespace: "default", Endpoints: []*weftv1.Endpoint{{Address: "nope"}}}}}, `Endpoints "a.default": endpoints[0].address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := base.Update("2", tt.delta)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Update error = %v, want it to contain %q", err, tt.wantErr)
			}
			if _, ok := base.Services["a.default"]; !ok || len(base.Services) != 1 {
				t.Errorf("a rejected Update changed the previous Config: %v", base.Services)
			}
		})
	}
}

func randService(rng *rand.Rand) *weftv1.Service {
	name := fmt.Sprintf("s%d", rng.IntN(8))
	ns := []string{"default", "shop"}[rng.IntN(2)]
	s := &weftv1.Service{Name: name, Namespace: ns, LoadBalancer: weftv1.LoadBalancer(rng.IntN(3))}
	if rng.IntN(2) == 0 {
		s.Ports = []*weftv1.ServicePort{{Name: "http", Port: uint32(8000 + rng.IntN(3)), Protocol: "http"}}
	}
	for i := range rng.IntN(3) {
		s.Routes = append(s.Routes, &weftv1.Route{
			Name:     fmt.Sprintf("r%d", i),
			Matches:  []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Value: fmt.Sprintf("/p%d", rng.IntN(3))}, Headers: []*weftv1.HeaderMatch{{Name: "x-v", Value: "1"}}}},
			Backends: []*weftv1.Backend{{Service: name, Namespace: ns, Weight: uint32(1 + rng.IntN(5))}},
			// A consumer route of a namespace without services.
			ConsumerNamespace: []string{"", "", "evil"}[rng.IntN(3)],
		})
	}
	return s
}

func randEndpoints(rng *rand.Rand) *weftv1.Endpoints {
	name := fmt.Sprintf("s%d", rng.IntN(8))
	ns := []string{"default", "shop"}[rng.IntN(2)]
	e := &weftv1.Endpoints{Service: name, Namespace: ns}
	for i := range rng.IntN(4) {
		e.Endpoints = append(e.Endpoints, &weftv1.Endpoint{
			Address:  fmt.Sprintf("127.0.0.%d:%d", 1+rng.IntN(3), 15006+i),
			Identity: "spiffe://cluster.local/ns/" + ns + "/sa/" + name,
			Workload: fmt.Sprintf("w%d", i),
		})
	}
	return e
}

func sorted[T any](m map[string]T) []T {
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

// snapshotOf renders a Config's contents, to compare a Config before and
// after an Update derived from it.
func snapshotOf(c *Config) string {
	var b strings.Builder
	for _, m := range []map[string]bool{c.Namespaces} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(&b, "ns=%v ", keys)
	}
	keys := make([]string, 0, len(c.Services))
	for k := range c.Services {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "svc %s=%+v ", k, *c.Services[k])
	}
	keys = keys[:0]
	for k := range c.Endpoints {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "eps %s=%+v ", k, c.Endpoints[k])
	}
	return b.String()
}

// BenchmarkApplyOneServiceChange compares what a proxy that knows 500
// services pays for a push of one changed Service: Update against a full
// Build.
func BenchmarkApplyOneServiceChange(b *testing.B) {
	var services []*weftv1.Service
	for i := range 500 {
		name := fmt.Sprintf("svc-%03d", i)
		services = append(services, &weftv1.Service{Name: name, Namespace: "default",
			Ports: []*weftv1.ServicePort{{Name: "http", Port: 8080, Protocol: "http"}},
			Routes: []*weftv1.Route{{Name: "r", Matches: []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Value: "/api"}}},
				Backends: []*weftv1.Backend{{Service: name, Namespace: "default", Weight: 1}}}}})
	}
	base, err := Build("1", services, nil)
	if err != nil {
		b.Fatal(err)
	}
	changed := services[7]
	b.Run("update", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := base.Update("2", Delta{Services: map[string]*weftv1.Service{"svc-007.default": changed}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Build("2", services, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
