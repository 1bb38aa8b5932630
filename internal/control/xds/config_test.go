package xds

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/registry"
)

// objects is a configuration being edited: objects by key, each with the
// resourceVersion the store would give it.
type objects struct {
	m  map[api.Key]api.Object
	rv int
}

// put stores o as a new version.
func (c *objects) put(o api.Object) {
	c.rv++
	o.SetResourceVersion(strconv.Itoa(c.rv))
	c.m[api.KeyOf(o)] = o
}

// set reads the configuration as the store does: every object a new copy.
func (c *objects) set(t testing.TB) *api.Set {
	t.Helper()
	var objs []api.Object
	for _, o := range c.m {
		objs = append(objs, o.DeepCopyObject().(api.Object))
	}
	set, err := api.NewSet(objs)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func declaredService(name string, sel map[string]string, ports ...int32) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.ServiceSpec{Selector: sel}}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "http", Port: p})
	}
	return s
}

// routeTo is an HTTPRoute in default attached to Service parent.
func routeTo(name, parent, prefix string) *gatewayv1.HTTPRoute {
	hr := benchRoute(0, prefix, "")
	hr.Name = name
	hr.Spec.ParentRefs[0].Name = gatewayv1.ObjectName(parent)
	return hr
}

func policy(target, lb string) *api.DestinationPolicy {
	return &api.DestinationPolicy{ObjectMeta: metav1.ObjectMeta{Name: target, Namespace: "default"},
		Spec: api.DestinationPolicySpec{TargetRef: api.PolicyTargetRef{Kind: "Service", Name: target}, LoadBalancer: lb}}
}

// TestApplyConfigRegeneratesOnlyAffected: a configuration change generates
// and pushes only the resources of the services it affects, and leaves the
// caches equal to a full Generate of the same state.
func TestApplyConfigRegeneratesOnlyAffected(t *testing.T) {
	reg, err := registry.New(&blobs{m: map[string][]byte{}}, 0, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		svc := "svc-" + strconv.Itoa(i%5)
		reg.Connect(testWorkload(svc+"-"+strconv.Itoa(i), svc, "default", "v"+strconv.Itoa(i/5+1), "10.0.0.1:"+strconv.Itoa(10000+i)))
	}
	objs := &objects{m: map[api.Key]api.Object{}}
	objs.put(declaredService("svc-1-v2", map[string]string{"app": "svc-1", "version": "v2"}))
	objs.put(routeTo("svc-1", "svc-1", "/api"))
	objs.put(policy("svc-2", api.LBRandom))
	cfg := &mutableConfig{set: objs.set(t)}
	s := New(Options{Config: cfg, Registry: reg, Logger: quiet})
	if _, err := s.rebuild(); err != nil {
		t.Fatal(err)
	}
	checkPublished(t, s, cfg.set, reg)

	tests := []struct {
		name          string
		do            func()
		wantGenerated int
		wantServices  []string
		wantEndpoints []string
	}{
		{"nothing changed, read again", func() {}, 0, nil, nil},
		{"one HTTPRoute changed", func() { objs.put(routeTo("svc-1", "svc-1", "/v2")) }, 1, []string{"svc-1.default"}, nil},
		{"HTTPRoute moved to another parent", func() { objs.put(routeTo("svc-1", "svc-3", "/v2")) }, 2, []string{"svc-1.default", "svc-3.default"}, nil},
		{"HTTPRoute to no service", func() { objs.put(routeTo("ghost", "ghost", "/")) }, 0, nil, nil},
		{"DestinationPolicy changed", func() { objs.put(policy("svc-2", api.LBLeastRequest)) }, 1, []string{"svc-2.default"}, nil},
		{"implicit service declared with a port", func() { objs.put(declaredService("svc-0", map[string]string{"app": "svc-0"}, 80)) }, 1, []string{"svc-0.default"}, nil},
		{"selector narrowed", func() { objs.put(declaredService("svc-0", map[string]string{"app": "svc-0", "version": "v1"}, 80)) }, 2, nil, []string{"svc-0.default"}},
		{"service declared", func() { objs.put(declaredService("all-v2", map[string]string{"version": "v2"})) }, 2, []string{"all-v2.default"}, []string{"all-v2.default"}},
		{"declared service removed", func() { delete(objs.m, api.Key{Kind: api.KindService, Namespace: "default", Name: "all-v2"}) }, 0, []string{"all-v2.default"}, []string{"all-v2.default"}},
		// Every Service resource is regenerated (a policy may be
		// namespace- or mesh-wide); only the target's differs and is pushed.
		{"AuthorizationPolicy added", func() {
			objs.put(&api.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default"}, Spec: api.AuthorizationPolicySpec{TargetRef: api.PolicyTargetRef{Name: "svc-1"}}})
		}, 6, []string{"svc-1.default"}, nil},
		{"route change and a workload leaving in one batch", func() {
			objs.put(routeTo("svc-1", "svc-3", "/v3"))
			reg.Disconnect("svc-4-4")
		}, 2, []string{"svc-3.default"}, []string{"svc-4.default"}},
		{"MeshConfig: every Service resource", func() {
			objs.put(&api.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: api.MeshConfigName}, Spec: api.MeshConfigSpec{Defaults: &api.MeshDefaults{LoadBalancer: api.LBRandom}}})
		}, 6, []string{"svc-0.default", "svc-1-v2.default", "svc-1.default", "svc-3.default", "svc-4.default"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.do()
			cfg.set = objs.set(t)
			p, err := s.applyConfig()
			if err != nil {
				t.Fatal(err)
			}
			checkPush(t, p, tt.wantGenerated, tt.wantServices, tt.wantEndpoints)
			checkPublished(t, s, cfg.set, reg)
			if s.Snapshot() != s.builder.Snapshot() || s.Snapshot().Config != cfg.set {
				t.Error("the API's snapshot is not the latest")
			}
		})
	}
}

// TestUpdateRandom applies random batches of configuration and workload
// changes through the update paths Run takes and checks after each one
// that the caches hold what a full Generate of the same state yields.
func TestUpdateRandom(t *testing.T) {
	for seed := range uint64(10) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 3))
			pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
			reg, err := registry.New(&blobs{m: map[string][]byte{}}, 0, quiet)
			if err != nil {
				t.Fatal(err)
			}
			objs := &objects{m: map[api.Key]api.Object{}}
			cfg := &mutableConfig{set: objs.set(t)}
			s := New(Options{Config: cfg, Registry: reg, Logger: quiet})
			if _, err := s.rebuild(); err != nil {
				t.Fatal(err)
			}
			streams := map[string]int{}
			for step := range 100 {
				configChanged := rng.IntN(2) == 0
				if configChanged {
					for range 1 + rng.IntN(3) {
						var o api.Object
						switch rng.IntN(5) {
						case 0:
							o = declaredService(pick("a", "b", "a-v1"), map[string]string{"app": pick("a", "b"), "version": pick("v1", "v2")}, int32(80+rng.IntN(2)))
						case 1:
							o = declaredService(pick("a", "b", "tier"), map[string]string{"tier": "x"})
						case 2, 3:
							o = routeTo(pick("r1", "r2", "r3"), pick("a", "b", "c", "a-v1"), pick("/", "/api"))
						default:
							o = policy(pick("a", "b", "c"), pick(api.LBRandom, api.LBLeastRequest))
						}
						if rng.IntN(15) == 0 {
							o = &api.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: api.MeshConfigName}, Spec: api.MeshConfigSpec{Defaults: &api.MeshDefaults{LoadBalancer: pick(api.LBRandom, api.LBLeastRequest)}}}
						}
						if rng.IntN(4) == 0 {
							delete(objs.m, api.KeyOf(o))
						} else {
							objs.put(o)
						}
					}
					cfg.set = objs.set(t)
				}
				for range rng.IntN(3) {
					id := "w" + strconv.Itoa(rng.IntN(12))
					if streams[id] > 0 && rng.IntN(2) == 0 {
						for ; streams[id] > 0; streams[id]-- {
							reg.Disconnect(id)
						}
						continue
					}
					svc := pick("a", "b", "c")
					w := testWorkload(id, svc, "default", pick("", "v1", "v2"), "")
					if rng.IntN(4) > 0 {
						w.Address = "10.0.0." + strconv.Itoa(rng.IntN(20)) + ":1"
					}
					if rng.IntN(3) == 0 {
						w.Labels["tier"] = "x"
					}
					reg.Connect(w)
					streams[id]++
				}
				// Connect may replace another workload at the same
				// address: recount from the registry.
				live := map[string]bool{}
				for _, w := range reg.List() {
					live[w.ID] = true
				}
				for id := range streams {
					if !live[id] {
						delete(streams, id)
					}
				}
				update := s.applyWorkloads
				if configChanged {
					update = s.applyConfig
				}
				if _, err := update(); err != nil {
					t.Fatal(err)
				}
				checkPublished(t, s, cfg.set, reg)
				if t.Failed() {
					t.Fatalf("step %d failed", step)
				}
			}
		})
	}
}
