package api

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// TestDecodeGolden decodes every testdata/*.yaml|json input and compares the
// defaulted objects with testdata/<input>.golden.
func TestDecodeGolden(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/*.yaml")
	jsons, _ := filepath.Glob("testdata/*.json")
	inputs = append(inputs, jsons...)
	if len(inputs) == 0 {
		t.Fatal("no inputs")
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Decode(data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			var got bytes.Buffer
			for _, o := range objs {
				b, err := Marshal(o)
				if err != nil {
					t.Fatal(err)
				}
				y, err := yaml.JSONToYAML(b)
				if err != nil {
					t.Fatal(err)
				}
				got.WriteString("--- # " + KeyOf(o).String() + "\n")
				got.Write(y)
			}
			golden := in + ".golden"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if diff := cmp.Diff(string(want), got.String()); diff != "" {
				t.Errorf("decode output mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

const route = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - backendRefs: [{name: web, port: 80}]
`

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // substring of the error
	}{
		{"unknown field", strings.Replace(route, "backendRefs:", "matchs: [{}]\n    backendRefs:", 1),
			`document 1: HTTPRoute "web": spec.rules[0].matchs: unknown field`},
		{"duplicate field", route + "  parentRefs: []\n",
			`document 1: invalid YAML`},
		{"no apiVersion", "kind: Service\nmetadata: {name: a}\n", `document 1: apiVersion: required`},
		{"no kind", "apiVersion: v1\nmetadata: {name: a}\n", `document 1: kind: required`},
		{"unknown kind", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n", `document 1: kind: unsupported kind "Pod"`},
		{"wrong apiVersion", "apiVersion: v1\nkind: HTTPRoute\nmetadata: {name: a}\n", `apiVersion: HTTPRoute is "gateway.networking.k8s.io/v1", got "v1"`},
		{"not a mapping", "- a\n- b\n", `document 1: must be an object`},
		{"bad yaml", "a: [\n", `document 1: invalid YAML`},
		{"second document", route + "---\n" + strings.Replace(route, "port: 80}", "port: 80, weight: -1}", 1),
			`document 2: HTTPRoute "web": spec.rules[0].backendRefs[0].weight: must be between 0 and 1000000`},
		{"duplicate object", route + "---\n" + route, `document 2: HTTPRoute "web": duplicates document 1`},
		{"type error", strings.Replace(route, "port: 80", "port: eighty", 1), `HTTPRoute "web": spec.rules.backendRefs.port: cannot be string, want an integer`},
		{"bad json", `{"apiVersion": "v1",`, `document 1: invalid JSON`},
		{"list item", `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{}}]}`,
			`document 1: items[0]: Service "a": spec.selector: required`},
		{"meshconfig namespace", "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default, namespace: x}\n",
			`metadata.namespace: must be empty: MeshConfig is cluster-scoped`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode succeeded with %d objects, want error containing %q", len(objs), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
		})
	}
}

func TestDecodeDefaults(t *testing.T) {
	objs, err := Decode([]byte(route + "---\n# only a comment\n---\n" +
		"apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: default}\nspec: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var keys []Key
	for _, o := range objs {
		keys = append(keys, KeyOf(o))
	}
	want := []Key{{KindHTTPRoute, "default", "web"}, {KindMeshConfig, "", "default"}}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	mc := objs[1].(*MeshConfig)
	if mc.Spec.TrustDomain != "" || mc.Spec.MTLS == nil || mc.Spec.MTLS.Mode != MTLSStrict {
		t.Errorf("MeshConfig defaults not applied (the trust domain is left empty, for the control plane to fill in): %+v", mc.Spec)
	}
}

func TestDecodeEmpty(t *testing.T) {
	for _, in := range []string{"", "\n", "---\n", "# nothing\n---\n# still nothing\n"} {
		objs, err := Decode([]byte(in))
		if err != nil || len(objs) != 0 {
			t.Errorf("Decode(%q) = %d objects, %v; want none", in, len(objs), err)
		}
	}
}

func TestUnmarshalRoundTrip(t *testing.T) {
	objs, err := Decode(mustRead(t, "testdata/mesh.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		b, err := Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(o, back); diff != "" {
			t.Errorf("%s round trip (-want +got):\n%s", KeyOf(o), diff)
		}
		// DeepCopyObject yields an equal, independent object.
		cp := o.DeepCopyObject().(Object)
		if diff := cmp.Diff(o, cp); diff != "" {
			t.Errorf("%s deep copy (-want +got):\n%s", KeyOf(o), diff)
		}
		cp.SetName("changed")
		if o.GetName() == "changed" {
			t.Errorf("%s deep copy shares metadata", KeyOf(o))
		}
	}
}

func TestNewSetSorted(t *testing.T) {
	svc := func(ns, name string) Object {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	s, err := NewSet([]Object{svc("b", "a"), svc("a", "z"), svc("a", "b"), &gatewayv1.HTTPRoute{}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range s.Services {
		got = append(got, x.Namespace+"/"+x.Name)
	}
	if diff := cmp.Diff([]string{"a/b", "a/z", "b/a"}, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if len(s.HTTPRoutes) != 1 {
		t.Errorf("HTTPRoutes = %d, want 1", len(s.HTTPRoutes))
	}
	if _, err := NewSet([]Object{&MeshConfig{}, &MeshConfig{}}); err == nil {
		t.Error("two MeshConfigs accepted")
	}
}

func TestNormalizeKind(t *testing.T) {
	tests := map[string]string{
		"svc": KindService, "Services": KindService, "service": KindService,
		"httproute": KindHTTPRoute, "httproutes": KindHTTPRoute, "HTTPRoute": KindHTTPRoute,
		"httproutes.gateway.networking.k8s.io": KindHTTPRoute, "grpcroute": KindGRPCRoute,
		"meshconfig": KindMeshConfig, "dp": KindDestinationPolicy, "destinationpolicy": KindDestinationPolicy,
		"authz": KindAuthorizationPolicy, "authorizationpolicies": KindAuthorizationPolicy,
	}
	for in, want := range tests {
		got, err := NormalizeKind(in)
		if err != nil || got != want {
			t.Errorf("NormalizeKind(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"pod", "", "httproute.weft.dev", "svc.gateway.networking.k8s.io"} {
		if got, err := NormalizeKind(bad); err == nil {
			t.Errorf("NormalizeKind(%q) = %q, want error", bad, got)
		}
	}
	if q := mustKind(t, KindHTTPRoute).Qualified(); q != "httproute.gateway.networking.k8s.io" {
		t.Errorf("Qualified = %q", q)
	}
	if q := mustKind(t, KindService).Qualified(); q != "service" {
		t.Errorf("Qualified = %q", q)
	}
}

func mustKind(t *testing.T, k string) KindInfo {
	t.Helper()
	info, ok := LookupKind(k)
	if !ok {
		t.Fatalf("LookupKind(%q) failed", k)
	}
	return info
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		f.Add(b)
	}
	f.Add([]byte(route))
	f.Add([]byte(`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"List"}]}`))
	f.Add([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {selector: {a: b}, ports: [{port: 0}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := DecodeLocated(data)
		if err != nil {
			// Every error says where: the document, and for an
			// invalid object the field.
			if !strings.HasPrefix(err.Error(), "document ") {
				t.Fatalf("error does not name the document: %v", err)
			}
			var inv *InvalidError
			if errors.As(err, &inv) && (len(inv.Errors) == 0 || inv.Errors[0].Field == "") {
				t.Fatalf("invalid object without a field: %v", err)
			}
			return
		}
		for _, o := range objs {
			if !strings.HasPrefix(o.Where, "document ") {
				t.Fatalf("object located at %q", o.Where)
			}
			if err := Validate(o.Object); err != nil {
				t.Fatalf("decoded object fails validation: %v", err)
			}
			if err := CheckSupported(o.Object); err != nil {
				var inv *InvalidError
				if !errors.As(err, &inv) || len(inv.Errors) == 0 || inv.Errors[0].Field == "" {
					t.Fatalf("unsupported object without a field: %v", err)
				}
			}
			b, err := Marshal(o.Object)
			if err != nil {
				t.Fatalf("decoded object does not marshal: %v", err)
			}
			if _, err := Decode(b); err != nil {
				t.Fatalf("decoded object does not decode again: %v\n%s", err, b)
			}
		}
	})
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func TestCheckSupported(t *testing.T) {
	tests := []struct {
		name, doc, wantField string
	}{
		{"regex path", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{group: "", kind: Service, name: a}]
  rules: [{matches: [{path: {type: RegularExpression, value: "/a.*"}}], backendRefs: [{name: a}]}]
`, ""},
		{"header modifier filter", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{group: "", kind: Service, name: a}]
  rules: [{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x, value: "v"}]}}], backendRefs: [{name: a}]}]
`, ""},
		{"cors filter is enforced", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{group: "", kind: Service, name: a}]
  rules: [{filters: [{type: CORS, cors: {allowOrigins: ["https://a.example"]}}], backendRefs: [{name: a}]}]
`, ""},
		{"cors filter on a backendRef is enforced", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{group: "", kind: Service, name: a}]
  rules: [{backendRefs: [{name: a, filters: [{type: CORS, cors: {allowOrigins: ["https://a.example"]}}]}]}]
`, ""},
		{"http external auth is enforced", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{group: "", kind: Service, name: a}]
  rules: [{filters: [{type: ExternalAuth, externalAuth: {protocol: HTTP, backendRef: {name: auth, port: 80}, http: {}}}], backendRefs: [{name: a}]}]
`, ""},
		{"grpc external auth is enforced", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{group: "", kind: Service, name: a}]
  rules: [{filters: [{type: ExternalAuth, externalAuth: {protocol: GRPC, backendRef: {name: auth, port: 80}, grpc: {}}}], backendRefs: [{name: a}]}]
`, ""},
		{"external auth on a backendRef is enforced", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{group: "", kind: Service, name: a}]
  rules: [{backendRefs: [{name: a, filters: [{type: ExternalAuth, externalAuth: {protocol: HTTP, backendRef: {name: auth, port: 80}, http: {}}}]}]}]
`, ""},
		{"mirror and fault filters are enforced", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{group: "", kind: Service, name: a}]
  rules:
  - filters:
    - {type: RequestMirror, requestMirror: {backendRef: {name: b, port: 80}, percent: 50}}
    - {type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: f}}
    backendRefs: [{name: a}]
`, ""},
		{"grpc mirror and fault filters are enforced", `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: r}
spec:
  parentRefs: [{group: "", kind: Service, name: a}]
  rules:
  - filters:
    - {type: RequestMirror, requestMirror: {backendRef: {name: b, port: 80}}}
    - {type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: f}}
    backendRefs: [{name: a}]
`, ""},
		{"gateway parent (served by weft gateway)", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{group: "", kind: Service, name: a}, {name: public-gw}]
  rules: [{backendRefs: [{name: a}]}]
`, ""},
		{"explicit gateway parent on a grpc route", `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: r}
spec:
  parentRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: public-gw}]
  rules: [{backendRefs: [{name: a}]}]
`, ""},
		{"hostnames", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{group: "", kind: Service, name: a}]
  hostnames: [shop.example.com]
  rules: [{backendRefs: [{name: a}]}]
`, "spec.hostnames"},
		{"grpc hostnames", `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: r}
spec:
  parentRefs: [{group: "", kind: Service, name: a}]
  hostnames: [shop.example.com]
  rules: [{backendRefs: [{name: a}]}]
`, "spec.hostnames"},
		{"supported route", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{group: "", kind: Service, name: a}]
  rules: [{matches: [{path: {type: PathPrefix, value: /a}, headers: [{name: x, value: "1"}]}], backendRefs: [{name: a}]}]
`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Decode([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			err = CheckSupported(objs[0])
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantField+": ") || !strings.Contains(err.Error(), "not enforced") && !strings.Contains(err.Error(), "would be ignored") {
				t.Fatalf("err = %v, want it to name %s as not enforced or ignored", err, tt.wantField)
			}
		})
	}
}

// TestDecodeJSONDocumentsWithSeparators reads JSON documents separated by
// YAML's "---", as a kubectl user may write them: JSON is YAML.
func TestDecodeJSONDocumentsWithSeparators(t *testing.T) {
	in := `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"selector":{"app":"a"},"ports":[{"port":80}]}}
---
{"apiVersion":"v1","kind":"Service","metadata":{"name":"b"},"spec":{"selector":{"app":"b"},"ports":[{"port":80}]}}
`
	objs, err := Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].GetName() != "a" || objs[1].GetName() != "b" {
		t.Fatalf("decoded %d objects, want services a and b", len(objs))
	}
	// Broken JSON without separators still names the document.
	if _, err := Decode([]byte(`{"kind":"Service"} {"kind":`)); err == nil || !strings.Contains(err.Error(), "document 2: invalid JSON") {
		t.Fatalf("err = %v, want document 2: invalid JSON", err)
	}
}
