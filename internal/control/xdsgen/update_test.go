package xdsgen

import (
	stdcmp "cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// parent is a parentRef to Service name, in namespace ns ("" for the
// route's own).
func parent(name, ns string) gatewayv1.ParentReference {
	p := gatewayv1.ParentReference{Group: new(gatewayv1.Group("")), Kind: new(gatewayv1.Kind("Service")), Name: gatewayv1.ObjectName(name)}
	if ns != "" {
		p.Namespace = new(gatewayv1.Namespace(ns))
	}
	return p
}

func httpRoute(ns, name, prefix, backend string, parents ...gatewayv1.ParentReference) *gatewayv1.HTTPRoute {
	return &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: parents},
			Rules: []gatewayv1.HTTPRouteRule{{
				Matches:     []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchPathPrefix), Value: new(prefix)}}},
				BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(backend)}}}},
			}},
		},
	}
}

func grpcRoute(ns, name, service string, parents ...gatewayv1.ParentReference) *gatewayv1.GRPCRoute {
	return &gatewayv1.GRPCRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: gatewayv1.GRPCRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: parents},
			Rules:           []gatewayv1.GRPCRouteRule{{Matches: []gatewayv1.GRPCRouteMatch{{Method: &gatewayv1.GRPCMethodMatch{Service: new(service)}}}}},
		},
	}
}

func destinationPolicy(ns, name, target, lb string) *api.DestinationPolicy {
	return &api.DestinationPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: api.DestinationPolicySpec{TargetRef: api.PolicyTargetRef{Kind: "Service", Name: target}, LoadBalancer: lb}}
}

// newSet sorts objs into a Set.
func newSet(t testing.TB, objs ...api.Object) *api.Set {
	t.Helper()
	set, err := api.NewSet(objs)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// checkRouting compares a Routing derived with Update with one compiled
// from scratch.
func checkRouting(t *testing.T, want, got *Routing) {
	t.Helper()
	sameRoutes := func(a, b []*weftv1.Route) bool {
		return slices.EqualFunc(a, b, func(x, y *weftv1.Route) bool { return proto.Equal(x, y) })
	}
	if !maps.EqualFunc(want.routes, got.routes, sameRoutes) {
		t.Errorf("routes (-NewRouting +Update):\n%s", cmp.Diff(want.routes, got.routes, protocmp.Transform()))
	}
	if !maps.Equal(want.lbs, got.lbs) || want.defLB != got.defLB {
		t.Errorf("load balancers (-NewRouting +Update), default %v, want %v:\n%s", got.defLB, want.defLB, cmp.Diff(want.lbs, got.lbs))
	}
	if want.cfg != got.cfg {
		t.Error("Update's Routing does not hold the new configuration")
	}
}

// TestRoutingUpdate: Update attributes each configuration change to the
// services whose Service resources it may change.
func TestRoutingUpdate(t *testing.T) {
	// base returns a fresh copy of the base configuration's objects,
	// as two reads of the store would.
	base := func() []api.Object {
		return []api.Object{
			httpRoute("default", "backend", "/api", "backend-v1", parent("backend", "")),
			httpRoute("shop", "cross", "/cart", "cart", parent("backend", "default"), parent("cart", "")),
			grpcRoute("default", "greeter", "weft.demo.v1.Greeter", parent("greeter", "")),
			destinationPolicy("default", "backend", "backend", "LEAST_REQUEST"),
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "backend-v1", Namespace: "default"}},
		}
	}
	with := func(objs ...api.Object) func([]api.Object) []api.Object {
		return func(b []api.Object) []api.Object {
			for _, o := range objs {
				i := slices.IndexFunc(b, func(x api.Object) bool { return api.KeyOf(x) == api.KeyOf(o) })
				if i < 0 {
					b = append(b, o)
				} else {
					b[i] = o
				}
			}
			return b
		}
	}
	without := func(k api.Key) func([]api.Object) []api.Object {
		return func(b []api.Object) []api.Object {
			return slices.DeleteFunc(b, func(x api.Object) bool { return api.KeyOf(x) == k })
		}
	}
	labelled := httpRoute("default", "backend", "/api", "backend-v1", parent("backend", ""))
	labelled.Labels = map[string]string{"team": "a"}
	gatewayParent := parent("gw", "")
	gatewayParent.Group, gatewayParent.Kind = new(gatewayv1.Group(api.GroupGateway)), new(gatewayv1.Kind("Gateway"))
	defaultGroup := parent("backend", "")
	defaultGroup.Group = nil
	mc := func(lb string) *api.MeshConfig {
		return &api.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: api.MeshConfigName}, Spec: api.MeshConfigSpec{Defaults: &api.MeshDefaults{LoadBalancer: lb}}}
	}
	tests := []struct {
		name     string
		prev     func([]api.Object) []api.Object
		edit     func([]api.Object) []api.Object
		wantKeys []string
		wantAll  bool
	}{
		{"nothing changed", nil, nil, nil, false},
		{"only metadata changed", nil, with(labelled), []string{"backend.default"}, false},
		{"route rule changed", nil, with(httpRoute("default", "backend", "/v2", "backend-v1", parent("backend", ""))), []string{"backend.default"}, false},
		{"only backends changed: backends carry no routes", nil, with(httpRoute("default", "backend", "/api", "backend-v2", parent("backend", ""))), []string{"backend.default"}, false},
		{"route moved to another parent", nil, with(httpRoute("default", "backend", "/api", "backend-v1", parent("frontend", ""))), []string{"backend.default", "frontend.default"}, false},
		{"route in another namespace, parents in two", nil, with(httpRoute("shop", "cross", "/basket", "cart", parent("backend", "default"), parent("cart", ""))), []string{"backend.default", "cart.shop"}, false},
		{"route removed", nil, without(api.Key{Kind: api.KindHTTPRoute, Namespace: "shop", Name: "cross"}), []string{"backend.default", "cart.shop"}, false},
		{"consumer route added in a third namespace", nil, with(httpRoute("evil", "hijack", "/", "sink", parent("backend", "default"))), []string{"backend.default"}, false},
		{"consumer route removed", nil, without(api.Key{Kind: api.KindHTTPRoute, Namespace: "shop", Name: "cross"}), []string{"backend.default", "cart.shop"}, false},
		{"consumer route made a producer route", nil, with(httpRoute("shop", "cross", "/cart", "cart", parent("cart", ""))), []string{"backend.default", "cart.shop"}, false},
		{"route added", nil, with(httpRoute("other", "new", "/", "x", parent("x", ""))), []string{"x.other"}, false},
		{"route to a Gateway", nil, with(httpRoute("default", "gw", "/", "x", gatewayParent)), nil, false},
		{"parent without group is not a Service", nil, with(httpRoute("default", "nogroup", "/", "x", defaultGroup)), nil, false},
		{"GRPCRoute changed", nil, with(grpcRoute("default", "greeter", "weft.demo.v2.Greeter", parent("greeter", ""))), []string{"greeter.default"}, false},
		{"GRPCRoute removed", nil, without(api.Key{Kind: api.KindGRPCRoute, Namespace: "default", Name: "greeter"}), []string{"greeter.default"}, false},
		{"policy changed", nil, with(destinationPolicy("default", "backend", "backend", "RANDOM")), []string{"backend.default"}, false},
		{"policy retargeted", nil, with(destinationPolicy("default", "backend", "frontend", "RANDOM")), []string{"backend.default", "frontend.default"}, false},
		{"policy removed", nil, without(api.Key{Kind: api.KindDestinationPolicy, Namespace: "default", Name: "backend"}), []string{"backend.default"}, false},
		{"second policy for one service", nil, with(destinationPolicy("default", "z-backend", "backend", "RANDOM")), []string{"backend.default"}, false},
		{"policy in another namespace", nil, with(destinationPolicy("shop", "cart", "cart", "RANDOM")), []string{"cart.shop"}, false},
		{"Service resource: the mesh snapshot's to report", nil, with(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "new", Namespace: "default"}}), nil, false},
		{"authorization policy: every service", nil, with(&api.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default"}}), nil, true},
		{"MeshConfig added", nil, with(mc("RANDOM")), nil, true},
		{"MeshConfig changed", with(mc("RANDOM")), with(mc("LEAST_REQUEST")), nil, true},
		{"MeshConfig removed", with(mc("RANDOM")), without(api.Key{Kind: api.KindMeshConfig, Name: api.MeshConfigName}), nil, true},
		{"MeshConfig read again", with(mc("RANDOM")), with(mc("RANDOM")), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apply := func(objs []api.Object, f func([]api.Object) []api.Object) []api.Object {
				if f == nil {
					return objs
				}
				return f(objs)
			}
			prevObjs := apply(base(), tt.prev)
			prev := newSet(t, prevObjs...)
			next := newSet(t, apply(apply(base(), tt.prev), tt.edit)...)
			r := NewRouting(prev)
			got, keys, all := r.Update(next)
			if diff := cmp.Diff(tt.wantKeys, keys); diff != "" || all != tt.wantAll {
				t.Errorf("all = %v, want %v; keys (-want +got):\n%s", all, tt.wantAll, diff)
			}
			checkRouting(t, NewRouting(next), got)
			// The Routing Update started from is unchanged.
			checkRouting(t, NewRouting(prev), r)
		})
	}
}

// randomRouting keeps a random configuration of routes and policies and
// changes a few of its objects at a time.
type randomRouting struct {
	rng  *rand.Rand
	objs map[api.Key]api.Object
	rv   int
}

func (c *randomRouting) pick(xs ...string) string { return xs[c.rng.IntN(len(xs))] }

// change adds, removes, replaces or copies unchanged 1 to 3 objects and
// returns the new configuration.
func (c *randomRouting) change(t testing.TB) *api.Set {
	for range 1 + c.rng.IntN(3) {
		ns := c.pick("default", "shop", "evil")
		var o api.Object
		parents := func() []gatewayv1.ParentReference {
			var ps []gatewayv1.ParentReference
			for range c.rng.IntN(3) {
				ps = append(ps, parent(c.pick("a", "b", "c"), c.pick("", "", "default", "shop", "evil")))
			}
			return ps
		}
		switch c.rng.IntN(4) {
		case 0, 1:
			hr := httpRoute(ns, "h"+c.pick("1", "2", "3"), c.pick("/", "/api", "/v2"), c.pick("a", "b"), parents()...)
			// Vary the precedence criteria.
			m := &hr.Spec.Rules[0].Matches[0]
			switch c.rng.IntN(4) {
			case 0:
				m.Method = new(gatewayv1.HTTPMethod("GET"))
			case 1:
				m.Headers = []gatewayv1.HTTPHeaderMatch{{Name: "x-a", Value: "1"}}
			case 2:
				m.Path = nil
			}
			o = hr
		case 2:
			o = grpcRoute(ns, "g"+c.pick("1", "2"), c.pick("s.A", "s.B"), parents()...)
		default:
			o = destinationPolicy(ns, "p"+c.pick("1", "2", "3"), c.pick("a", "b", "c"), c.pick("", "RANDOM", "LEAST_REQUEST"))
		}
		if c.rng.IntN(10) == 0 {
			o = &api.MeshConfig{ObjectMeta: metav1.ObjectMeta{Name: api.MeshConfigName},
				Spec: api.MeshConfigSpec{Defaults: &api.MeshDefaults{LoadBalancer: c.pick("RANDOM", "LEAST_REQUEST")}}}
		}
		k := api.KeyOf(o)
		switch old := c.objs[k]; {
		case c.rng.IntN(4) == 0:
			delete(c.objs, k)
		case old != nil && c.rng.IntN(3) == 0:
			// Read again: same content, new pointer.
			c.objs[k] = old.DeepCopyObject().(api.Object)
		default:
			if c.rng.IntN(2) == 0 {
				// As stored: compared by resourceVersion.
				c.rv++
				o.SetResourceVersion(strconv.Itoa(c.rv))
			}
			o.SetCreationTimestamp(metav1.Unix(int64(c.rng.IntN(3)), 0))
			c.objs[k] = o
		}
	}
	var objs []api.Object
	for _, o := range c.objs {
		objs = append(objs, o)
	}
	return newSet(t, objs...)
}

// TestRoutingUpdateRandom applies random configuration changes and checks
// after each one that Update's Routing equals NewRouting's, and that every
// service whose Service resource changed is among the keys Update
// returned.
func TestRoutingUpdateRandom(t *testing.T) {
	var services []*mesh.Service
	for _, ns := range []string{"default", "shop", "evil"} {
		for _, name := range []string{"a", "b", "c"} {
			services = append(services, &mesh.Service{Name: name, Namespace: ns})
		}
	}
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			c := &randomRouting{rng: rand.New(rand.NewPCG(seed, 7)), objs: map[api.Key]api.Object{}}
			r := NewRouting(nil)
			for step := range 100 {
				cfg := c.change(t)
				next, keys, all := r.Update(cfg)
				checkRouting(t, NewRouting(cfg), next)
				for _, s := range services {
					if !all && !slices.Contains(keys, s.Key()) && !proto.Equal(r.Service(s), next.Service(s)) {
						t.Errorf("Service resource of %s changed, but it is not among the keys %v", s.Key(), keys)
					}
					checkGroups(t, next.Service(s))
				}
				if t.Failed() {
					t.Fatalf("step %d failed", step)
				}
				r = next
			}
		})
	}
}

// checkGroups checks that the routes of svc come in groups, producer
// routes first, then consumer routes by namespace, and that the routes of
// a namespace are producer routes of its services, never consumer ones.
func checkGroups(t *testing.T, svc *weftv1.Service) {
	t.Helper()
	for i, r := range svc.Routes {
		ns := r.GetConsumerNamespace()
		if ns == svc.Namespace {
			t.Errorf("%s: route %d %s: consumer namespace is the service's own", weftv1.ResourceName(svc.Name, svc.Namespace), i, r.Name)
		}
		if from := stdcmp.Or(ns, svc.Namespace); !strings.HasPrefix(r.Name, from+"/") {
			t.Errorf("%s: route %d %s: consumer namespace %q, but not a route of namespace %s", weftv1.ResourceName(svc.Name, svc.Namespace), i, r.Name, ns, from)
		}
		if i > 0 && svc.Routes[i-1].GetConsumerNamespace() > ns {
			t.Errorf("%s: route %d %s: group %q after %q", weftv1.ResourceName(svc.Name, svc.Namespace), i, r.Name, ns, svc.Routes[i-1].GetConsumerNamespace())
		}
	}
}

// TestConfigKindsAttributed fails when api.Set gains a field: decide which
// Service resources a change of the new kind affects (Routing.Update, or
// mesh.Builder.ApplyConfig if the snapshot holds it) and add it here.
func TestConfigKindsAttributed(t *testing.T) {
	attributed := []string{
		"Revision",               // not a kind: the store revision the set was read at
		"Services",               // mesh.Builder.ApplyConfig
		"HTTPRoutes",             // Routing.Update: parents
		"GRPCRoutes",             // Routing.Update: parents
		"MeshConfig",             // Routing.Update: every service
		"DestinationPolicies",    // Routing.Update: targets
		"AuthorizationPolicies",  // Routing.Update: every service
		"RequestAuthentications", // Routing.Update: targets (requestauthn.go)
		"FaultInjections",        // Routing.Update: parents of the routes that reference them (fault.go)
		"Gateways",               // no Service resource; xds.Server.publishGateways regenerates every Gateway resource on each change
		"Secrets",                // as Gateways (gateway.go)
		"TLSRoutes",              // as Gateways: they attach to Gateways only
		"TCPRoutes",              // Routing.Update: parents (tcp.go); Gateway parents as Gateways
		"ExternalServices",       // Routing.Update: every service (egress.go)
	}
	var fields []string
	for f := range reflect.TypeFor[api.Set]().Fields() {
		fields = append(fields, f.Name)
	}
	if diff := cmp.Diff(attributed, fields); diff != "" {
		t.Errorf("api.Set fields (-attributed +declared):\n%s", diff)
	}
}

// BenchmarkRoutingUpdate: 500 services with one HTTPRoute each; each
// iteration one route changes.
func BenchmarkRoutingUpdate(b *testing.B) {
	var sets [2][]api.Object
	for i := range 500 {
		name := "svc-" + strconv.Itoa(i)
		for j := range sets {
			hr := httpRoute("default", name, "/api", name, parent(name, ""))
			hr.ResourceVersion = "1"
			if i == 0 {
				// The route that changes: a new version in each set.
				hr.Spec.Rules[0].Matches[0].Path.Value = new("/v" + strconv.Itoa(j))
				hr.ResourceVersion = strconv.Itoa(2 + j)
			}
			sets[j] = append(sets[j], hr)
		}
	}
	cfgs := [2]*api.Set{newSet(b, sets[0]...), newSet(b, sets[1]...)}
	r := NewRouting(cfgs[0])
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		var keys []string
		r, keys, _ = r.Update(cfgs[i%2])
		if len(keys) != 1 {
			b.Fatalf("keys %v, want one", keys)
		}
	}
}
