package xdsgen

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGolden translates each testdata/<case>.yaml (resources) with
// testdata/<case>.workloads.json (registered workloads) and compares the
// result with testdata/<case>.golden.json.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			snap := mesh.Build(readSet(t, in), readWorkloads(t, strings.TrimSuffix(in, ".yaml")+".workloads.json"))
			got := render(t, Generate(snap))
			golden := strings.TrimSuffix(in, ".yaml") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("generated resources differ from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

// TestDeterministic checks that the same snapshot always yields the same
// resources, whatever the map iteration order.
func TestDeterministic(t *testing.T) {
	set := readSet(t, "testdata/routes.yaml")
	ws := readWorkloads(t, "testdata/routes.workloads.json")
	first := render(t, Generate(mesh.Build(set, ws)))
	for range 20 {
		if got := render(t, Generate(mesh.Build(set, ws))); !bytes.Equal(first, got) {
			t.Fatal("two translations of the same snapshot differ")
		}
	}
}

func readSet(t *testing.T, path string) *api.Set {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := api.Decode(b)
	if err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	set, err := api.NewSet(objs)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return set
}

func readWorkloads(t *testing.T, path string) []*mesh.Workload {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ws []mesh.Workload
	if err := json.Unmarshal(b, &ws); err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	out := make([]*mesh.Workload, len(ws))
	for i := range ws {
		ws[i].Labels = mesh.WorkloadLabels(ws[i].Service, ws[i].Version, ws[i].Labels)
		out[i] = &ws[i]
	}
	return out
}

// render prints resources as stable, indented JSON.
func render(t *testing.T, r Resources) []byte {
	t.Helper()
	mo := protojson.MarshalOptions{UseProtoNames: true}
	out := map[string]map[string]json.RawMessage{"services": {}, "endpoints": {}}
	for k, v := range r.Services {
		b, err := mo.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out["services"][k] = compact(t, b)
	}
	for k, v := range r.Endpoints {
		b, err := mo.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out["endpoints"][k] = compact(t, b)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// compact normalises protojson's deliberately unstable whitespace.
func compact(t *testing.T, b []byte) json.RawMessage {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// BenchmarkGenerate: 500 services of 10 workloads each.
func BenchmarkGenerate(b *testing.B) {
	var ws []*mesh.Workload
	for s := range 500 {
		name := fmt.Sprintf("svc-%d", s)
		for i := range 10 {
			ws = append(ws, &mesh.Workload{ID: fmt.Sprintf("%s-%d", name, i), Service: name, Namespace: "default",
				Address: fmt.Sprintf("10.0.%d.%d:15006", s/200, i+s%200), Identity: "spiffe://cluster.local/ns/default/sa/" + name,
				Labels: mesh.WorkloadLabels(name, "v1", nil)})
		}
	}
	snap := mesh.Build(&api.Set{}, ws)
	b.ReportAllocs()
	for b.Loop() {
		Generate(snap)
	}
}
