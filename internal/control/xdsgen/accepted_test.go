package xdsgen_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/control/xdsgen"
	"weft.dev/weft/internal/proxy/config"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestAcceptedCompiles is the property "validity is decided once":
// for random configurations — routes with and without matches, backends,
// weights, timeouts, across namespaces, for services that do and do not
// exist — everything the API accepts (Decode, which validates, and
// CheckSupported) generates xDS resources that the proxy's compiler,
// config.Build, accepts. This test is in the control plane's tree but
// imports the proxy's compiler: tests are not part of the dependency
// graph internal/archtest checks.
func TestAcceptedCompiles(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 11))
	workloads := []*mesh.Workload{
		{ID: "a1", Service: "a", Namespace: "default", Address: "127.0.0.1:1", Identity: "spiffe://cluster.local/ns/default/sa/a", Labels: map[string]string{"app": "a"}},
		{ID: "b1", Service: "b", Namespace: "shop", Address: "127.0.0.1:2", Identity: "spiffe://cluster.local/ns/shop/sa/b", Labels: map[string]string{"app": "b"}},
	}
	accepted, rejected, policies := 0, 0, 0
	for i := range 400 {
		var objs []api.Object
		for j := range 1 + r.IntN(4) {
			doc := randomObject(r, fmt.Sprintf("o%d", j))
			decoded, err := api.Decode([]byte(doc))
			if err == nil {
				err = api.CheckSupported(decoded[0])
			}
			if err != nil {
				rejected++
				continue
			}
			accepted++
			if _, ok := decoded[0].(*api.AuthorizationPolicy); ok {
				policies++
			}
			objs = append(objs, decoded...)
		}
		set, err := api.NewSet(objs)
		if err != nil {
			continue // two MeshConfigs: refused by the store
		}
		res := xdsgen.Generate(mesh.Build(set, workloads))
		var services []*weftv1.Service
		var eps []*weftv1.Endpoints
		for key, s := range res.Services {
			services = append(services, s)
			eps = append(eps, res.Endpoints[key])
		}
		if _, err := config.Build("v", services, eps); err != nil {
			t.Fatalf("case %d: accepted configuration does not compile: %v\nobjects: %s", i, err, dump(objs))
		}
	}
	if policies < 20 {
		t.Errorf("accepted %d AuthorizationPolicies: the generator does not cover them", policies)
	}
	if accepted < 200 || rejected < 50 {
		t.Errorf("accepted %d and rejected %d objects: the generator does not cover both sides", accepted, rejected)
	}
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// randomObject returns one YAML object, valid or not.
func randomObject(r *rand.Rand, name string) string {
	ns := pick(r, "default", "shop")
	if r.IntN(8) == 0 {
		return randomFault(r, ns) // accepted_fault_test.go
	}
	switch r.IntN(6) {
	case 4:
		return randomAuthz(r, name, pick(r, ns, api.RootNamespace))
	case 0:
		return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: %s}\nspec: {selector: {app: %s}, ports: [{name: %s, port: %d}]}\n",
			pick(r, "a", "b", "c", name), ns, pick(r, "a", "b"), pick(r, "http", "grpc", "tcp", "h2c", "http2-x"), pick(r, 80, 8080, 0, 65535))
	case 1:
		return fmt.Sprintf("apiVersion: weft.dev/v1alpha1\nkind: DestinationPolicy\nmetadata: {name: %s, namespace: %s}\nspec: {targetRef: {name: %s}, loadBalancer: %s%s}\n",
			name, ns, pick(r, "a", "b", "nosuch"), pick(r, "ROUND_ROBIN", "RANDOM", "LEAST_REQUEST", "FAST"), randomBreaker(r))
	case 2:
		return fmt.Sprintf("apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: %s, namespace: %s}\nspec:\n  parentRefs: [%s]\n  rules:\n%s",
			name, ns, randomParent(r), randomRules(r, true))
	default:
		return fmt.Sprintf("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: %s, namespace: %s}\nspec:\n  parentRefs: [%s]\n  rules:\n%s",
			name, ns, randomParent(r), randomRules(r, false))
	}
}

// randomAuthz returns an AuthorizationPolicy, valid or not (one part in
// four picked from invalid values), with patterns at the edges of what
// the API accepts.
func randomAuthz(r *rand.Rand, name, ns string) string {
	part := func(valid, invalid []string) string {
		if r.IntN(16) == 0 {
			return pick(r, invalid...)
		}
		return pick(r, valid...)
	}
	target := part([]string{"targetRef: {name: a}\n  ", "selector: {matchLabels: {app: b}}\n  ", ""}, []string{"targetRef: {name: a}\n  selector: {matchLabels: {app: a}}\n  "})
	from := part([]string{`{identities: ["*"]}`, `{identities: ["*/sa/a"]}`, `{notIdentities: ["spiffe://cluster.local/ns/shop/*"]}`, `{namespaces: ["sh*"]}`,
		`{notNamespaces: ["*op"]}`, `{ipBlocks: ["10.0.0.0/8", "::1"]}`, `{requestPrincipals: ["iss/*"]}`}, []string{`{ipBlocks: ["10.0.0.0/40"]}`, `{identities: ["a*b*"]}`, `{}`})
	to := part([]string{`{paths: ["/api/*", "*.json", "*"]}`, `{methods: [GET], notMethods: [POST]}`, `{hosts: ["*.example.com"], notHosts: ["A.example.com"]}`,
		`{ports: [8080]}`}, []string{`{notPaths: ["/a*b"]}`, `{ports: [0]}`, `{paths: ["api"]}`, `{}`})
	when := part([]string{`{header: x-a, values: ["v*"]}`, `{key: "request.headers[x-b]", notValues: ["*"]}`, `{key: "request.auth.claims[groups]", values: [admin]}`,
		`{key: source.ip, values: ["10.0.0.1"]}`}, []string{`{key: source.ip, values: [x]}`, `{key: "request.body", values: [a]}`, `{header: x-a}`})
	action := part([]string{"ALLOW", "DENY", "AUDIT"}, []string{"LOG"})
	return fmt.Sprintf("apiVersion: weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: %s, namespace: %s}\nspec:\n  %saction: %s\n  rules: [{from: [%s], to: [%s], when: [%s]}]\n",
		name, ns, target, action, from, to, when)
}

func randomParent(r *rand.Rand) string {
	p := fmt.Sprintf(`{group: "", kind: Service, name: %s`, pick(r, "a", "b", "nosuch"))
	if r.IntN(3) == 0 {
		p += ", namespace: " + pick(r, "default", "shop", "other")
	}
	if r.IntN(5) == 0 {
		p += ", port: " + pick(r, "80", "0", "70000")
	}
	return p + "}"
}

func randomRules(r *rand.Rand, grpc bool) string {
	var b strings.Builder
	for range r.IntN(4) {
		b.WriteString("  - matches: [")
		for k := range r.IntN(3) {
			if k > 0 {
				b.WriteString(", ")
			}
			if grpc {
				fmt.Fprintf(&b, "{method: {%s}}", pick(r, "service: a.B", "service: a.B, method: M", "method: M", "service: '1bad'", ""))
				continue
			}
			var parts []string
			if r.IntN(2) == 0 {
				parts = append(parts, fmt.Sprintf("path: {type: %s, value: %q}", pick(r, "PathPrefix", "Exact"), pick(r, "/", "/a", "/a/b/", "", "a", "/a b", "/a//b")))
			}
			if r.IntN(2) == 0 {
				parts = append(parts, fmt.Sprintf("headers: [{name: %q, value: %q}]", pick(r, "x", "X-Canary", "", "bad name", ":path"), pick(r, "1", "", "a\x01")))
			}
			if r.IntN(3) == 0 {
				parts = append(parts, "method: "+pick(r, "GET", "POST", "get"))
			}
			b.WriteString("{" + strings.Join(parts, ", ") + "}")
		}
		b.WriteString("]\n")
		if n := r.IntN(3); n > 0 || r.IntN(2) == 0 {
			b.WriteString("    backendRefs: [")
			for k := range n {
				if k > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "{name: %s", pick(r, "a", "b", "nosuch", `""`))
				if r.IntN(2) == 0 {
					b.WriteString(", namespace: " + pick(r, "default", "shop"))
				}
				if r.IntN(2) == 0 {
					b.WriteString(", weight: " + pick(r, "0", "1", "1000000", "1000001", "-1"))
				}
				if r.IntN(3) == 0 {
					b.WriteString(", port: " + pick(r, "80", "0"))
				}
				b.WriteString("}")
			}
			b.WriteString("]\n")
		}
		if !grpc && r.IntN(4) == 0 {
			b.WriteString("    timeouts: {request: " + pick(r, "1s", "0s", "500ms", "1h", "-1s") + "}\n")
		}
		b.WriteString(randomFilters(r)) // accepted_fault_test.go
	}
	if b.Len() == 0 {
		return "  []\n"
	}
	return b.String()
}

func dump(objs []api.Object) string {
	var out []string
	for _, o := range objs {
		b, _ := api.Marshal(o)
		out = append(out, string(b))
	}
	return strings.Join(out, "\n")
}

// FuzzAcceptedCompiles is TestAcceptedCompiles with the configuration
// from the fuzzer: whatever bytes the API accepts generate resources the
// proxy compiles.
func FuzzAcceptedCompiles(f *testing.F) {
	f.Add([]byte(randomObject(rand.New(rand.NewPCG(1, 2)), "seed")))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := api.Decode(data)
		if err != nil {
			return
		}
		for _, o := range objs {
			if api.CheckSupported(o) != nil {
				return
			}
		}
		set, err := api.NewSet(objs)
		if err != nil {
			return
		}
		res := xdsgen.Generate(mesh.Build(set, nil))
		var services []*weftv1.Service
		for _, s := range res.Services {
			services = append(services, s)
		}
		if _, err := config.Build("v", services, nil); err != nil {
			t.Fatalf("accepted configuration does not compile: %v", err)
		}
	})
}

// randomBreaker is an optional connectionPool and adaptiveConcurrency with
// values around their bounds (breaker.go).
func randomBreaker(r *rand.Rand) string {
	var b strings.Builder
	if r.IntN(2) == 0 {
		fmt.Fprintf(&b, ", connectionPool: {maxConnections: %d, maxPendingRequests: %d, maxConcurrentRequests: %d}",
			pick(r, 0, 1, 7, -1, 1000000, 1000001), pick(r, 0, 0, 3, -2), pick(r, 0, 1, 10, 1000000))
	}
	if r.IntN(2) == 0 {
		var fields []string
		for _, f := range []struct{ name, values string }{
			{"updateInterval", "10ms 9ms 100ms 10s 10.9ms 11s 1m"},
			{"minRTTInterval", "1s 999ms 10s 10000100us 1h 2h"},
			{"minLimit", "1 0 3 50 1001 100000 100001"},
			{"maxLimit", "1 2 10 1000 100000 100001"},
			{"initialLimit", "1 5 20 999 1001"},
			{"latencyBufferPercent", "1 0 25 1000 1001"},
		} {
			if r.IntN(3) == 0 {
				vs := strings.Fields(f.values)
				fields = append(fields, f.name+": "+vs[r.IntN(len(vs))])
			}
		}
		b.WriteString(", adaptiveConcurrency: {" + strings.Join(fields, ", ") + "}")
	}
	return b.String()
}
