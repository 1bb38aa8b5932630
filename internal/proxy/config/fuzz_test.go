package config

import (
	"net/http/httptest"
	"regexp"
	"testing"

	"google.golang.org/protobuf/proto"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// fieldNamed matches a compile error that names the resource and a field:
// `Service "a.b": routes[0]: backends[1].weight: ...`.
var fieldNamed = regexp.MustCompile(`^(Service|Endpoints) "(?:[^"\\]|\\.)*": [a-z_]+(\[\d+\])?[.:\[ ]`)

// FuzzBuild feeds arbitrary Service and Endpoints resources (protobuf wire
// bytes, as the xDS client receives them) to the compiler: it must never
// panic, an error must name the resource and the field, and a compiled
// config must serve route matching and backend picking without panicking.
func FuzzBuild(f *testing.F) {
	seed := func(s *weftv1.Service, e *weftv1.Endpoints) {
		sb, _ := proto.Marshal(s)
		eb, _ := proto.Marshal(e)
		f.Add(sb, eb)
	}
	seed(&weftv1.Service{Name: "a", Namespace: "default", Ports: []*weftv1.ServicePort{{Name: "http", Port: 80, Protocol: "http"}},
		Routes: []*weftv1.Route{{Name: "default/r/0",
			Matches:  []*weftv1.RouteMatch{{Path: &weftv1.PathMatch{Kind: weftv1.PathMatch_EXACT, Value: "/x"}, Headers: []*weftv1.HeaderMatch{{Name: "x", Value: "1"}}, Method: "GET"}},
			Backends: []*weftv1.Backend{{Service: "a", Namespace: "default", Weight: 3}, {Weight: 1, FailStatus: 500, FailReason: "no backendRefs"}}}}},
		&weftv1.Endpoints{Service: "a", Namespace: "default", Endpoints: []*weftv1.Endpoint{{Address: "127.0.0.1:1", Identity: "spiffe://cluster.local/ns/default/sa/a"}}})
	seed(&weftv1.Service{Name: "b", Namespace: "x", Routes: []*weftv1.Route{{}}}, &weftv1.Endpoints{Service: "b", Namespace: "x", Endpoints: []*weftv1.Endpoint{{Address: "nope"}}})
	seed(&weftv1.Service{Name: "c", Namespace: "x", LoadBalancer: 7, Routes: []*weftv1.Route{{Backends: []*weftv1.Backend{{Weight: 4000000000, FailStatus: 200}}}}}, &weftv1.Endpoints{})
	f.Fuzz(func(t *testing.T, svcBytes, epBytes []byte) {
		s, e := &weftv1.Service{}, &weftv1.Endpoints{}
		if proto.Unmarshal(svcBytes, s) != nil || proto.Unmarshal(epBytes, e) != nil {
			return
		}
		cfg, err := Build("fuzz", []*weftv1.Service{s}, []*weftv1.Endpoints{e})
		if err != nil {
			if !fieldNamed.MatchString(err.Error()) {
				t.Fatalf("error does not name the resource and field: %q", err)
			}
			if weftv1.ValidateService(s) == nil && weftv1.ValidateEndpoints(e) == nil {
				t.Fatalf("Build failed although the shared validation passes: %v", err)
			}
			return
		}
		if weftv1.ValidateService(s) != nil {
			t.Fatal("Build accepted a Service that the shared validation rejects")
		}
		req := httptest.NewRequest("GET", "http://a/x", nil)
		req.Header.Set("X", "1")
		for _, svc := range cfg.Services {
			callers := []string{"", svc.Namespace}
			for ns := range svc.ConsumerRoutes {
				callers = append(callers, ns)
			}
			for _, caller := range callers {
				rt := svc.Match(req, caller)
				if rt == nil {
					continue
				}
				for _, n := range []uint32{0, 1, 7, 1 << 31, ^uint32(0)} {
					if b := rt.Pick(n); b != nil && b.FailStatus == 0 && b.Service == "" {
						t.Fatalf("picked a forwarding backend without a service: %+v", b)
					}
				}
			}
		}
	})
}
