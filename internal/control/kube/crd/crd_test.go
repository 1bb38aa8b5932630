package crd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"weft.dev/weft/internal/api"
)

// TestKindsHaveCRDs checks that every non-core kind weft stores has a CRD
// with its group, version, plural, scope and (for weft's own kinds) short
// names, and that weft's directory holds nothing else.
func TestKindsHaveCRDs(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for _, c := range all {
		if byName[c.Name] != nil {
			t.Errorf("CRD %s embedded twice", c.Name)
		}
		byName[c.Name] = c
	}
	weftCRDs := 0
	for _, c := range all {
		if c.Spec.Group == api.GroupWeft {
			weftCRDs++
		}
	}
	weftKinds := 0
	for _, k := range api.Kinds() {
		if k.Group() == "" {
			continue // core Service and Secret: built in
		}
		c := byName[k.Plural+"."+k.Group()]
		if c == nil {
			t.Errorf("%s: no CRD %s.%s", k.Kind, k.Plural, k.Group())
			continue
		}
		if c.Spec.Names.Kind != k.Kind {
			t.Errorf("%s: CRD kind is %q", k.Kind, c.Spec.Names.Kind)
		}
		wantScope := apiextensionsv1.ClusterScoped
		if k.Namespaced {
			wantScope = apiextensionsv1.NamespaceScoped
		}
		if c.Spec.Scope != wantScope {
			t.Errorf("%s: scope %s, want %s", k.Kind, c.Spec.Scope, wantScope)
		}
		_, version, _ := strings.Cut(k.APIVersion, "/")
		served := false
		for _, v := range c.Spec.Versions {
			if v.Name == version && v.Served {
				served = true
			}
		}
		if !served {
			t.Errorf("%s: CRD %s does not serve %s", k.Kind, c.Name, version)
		}
		if k.Group() == api.GroupWeft {
			weftKinds++
			if !slices.Equal(c.Spec.Names.ShortNames, k.ShortNames) {
				t.Errorf("%s: CRD short names %v, KindInfo has %v", k.Kind, c.Spec.Names.ShortNames, k.ShortNames)
			}
		}
	}
	if weftCRDs != weftKinds {
		t.Errorf("%d weft.dev CRDs for %d weft.dev kinds", weftCRDs, weftKinds)
	}
	dp := byName["destinationpolicies.weft.dev"]
	if dp == nil || dp.Spec.Versions[0].Subresources == nil || dp.Spec.Versions[0].Subresources.Status == nil {
		t.Errorf("DestinationPolicy has a status and needs the status subresource")
	}
}

// TestMarkersReachSchema spot-checks that the validation markers in
// internal/api made it into the schemas.
func TestMarkersReachSchema(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	var mc *apiextensionsv1.CustomResourceDefinition
	for _, c := range all {
		if c.Name == "meshconfigs.weft.dev" {
			mc = c
		}
	}
	if mc == nil {
		t.Fatal("no MeshConfig CRD")
	}
	spec := mc.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	mode := spec.Properties["mtls"].Properties["mode"]
	var got []string
	for _, e := range mode.Enum {
		got = append(got, strings.Trim(string(e.Raw), `"`))
	}
	if !slices.Equal(got, []string{api.MTLSStrict, api.MTLSPermissive}) {
		t.Errorf("spec.mtls.mode enum %v", got)
	}
	s := spec.Properties["tracing"].Properties["sampling"]
	if s.Minimum == nil || *s.Minimum != 0 || s.Maximum == nil || *s.Maximum != 1 {
		t.Errorf("spec.tracing.sampling bounds %v..%v, want 0..1", s.Minimum, s.Maximum)
	}
}

func TestParseRefuses(t *testing.T) {
	good, err := files.ReadFile("weft/weft.dev_faultinjections.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown field", strings.Replace(string(good), "  scope: Namespaced", "  scope: Namespaced\n  bogus: 1", 1), "bogus"},
		{"not a CRD", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "want apiextensions.k8s.io/v1 CustomResourceDefinition"},
		{"wrong name", strings.Replace(string(good), "name: faultinjections.weft.dev", "name: faults.weft.dev", 1), `want "faultinjections.weft.dev"`},
		{"not YAML", "{", "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseDir(fstest.MapFS{"d/x.yaml": {Data: []byte(tt.yaml)}}, "d")
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "d/x.yaml") {
				t.Fatalf("err = %v, want one naming d/x.yaml and %q", err, tt.want)
			}
		})
	}
}

func TestFiles(t *testing.T) {
	fs, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != len(all) {
		t.Fatalf("%d files, %d CRDs", len(fs), len(all))
	}
	if _, ok := fs["gateway/gateway.networking.k8s.io_httproutes.yaml"]; !ok {
		t.Error("no HTTPRoute CRD file")
	}
}

// TestUpToDate regenerates the CRDs into a temporary directory (go run of
// controller-gen, cached after the first run) and compares.
func TestUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs controller-gen")
	}
	out := t.TempDir()
	cmd := exec.Command("sh", "generate.sh")
	cmd.Env = append(os.Environ(), "OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generate.sh: %v\n%s", err, b)
	}
	for _, dir := range Dirs {
		want, _ := filepath.Glob(filepath.Join(out, dir, "*.yaml"))
		have, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if len(want) != len(have) {
			t.Errorf("%s: %d files committed, generate.sh writes %d: run go generate ./internal/control/kube/crd", dir, len(have), len(want))
		}
		for _, w := range want {
			wb, _ := os.ReadFile(w)
			hb, err := os.ReadFile(filepath.Join(dir, filepath.Base(w)))
			if err != nil || !bytes.Equal(wb, hb) {
				t.Errorf("%s/%s is stale: run go generate ./internal/control/kube/crd", dir, filepath.Base(w))
			}
		}
	}
}

// TestKindsYAML checks that testdata/kinds.yaml, which the round-trip test
// on a real API server uses, is valid weft configuration with one object of
// every non-core kind.
func TestKindsYAML(t *testing.T) {
	objs := kindsYAML(t)
	have := map[string]bool{}
	for _, o := range objs {
		have[api.KindOf(o)] = true
	}
	for _, k := range api.Kinds() {
		if k.Group() != "" && !have[k.Kind] {
			t.Errorf("testdata/kinds.yaml has no %s", k.Kind)
		}
	}
}

func kindsYAML(t *testing.T) []api.Object {
	t.Helper()
	b, err := os.ReadFile("testdata/kinds.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := api.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}
