package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

type cobraCommand = cobra.Command

const applyTestRoutes = `apiVersion: v1
kind: Service
metadata: {name: orders-v2, namespace: shop}
spec:
  selector: {app: orders, version: v2}
  ports: [{name: http, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orders, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: orders}]
  rules:
  - backendRefs: [{name: orders, port: 8080, weight: 90}, {name: orders-v2, port: 8080, weight: 10}]
`

const applyTestPolicy = `apiVersion: weft.dev/v1alpha1
kind: MeshConfig
metadata: {name: default}
spec: {trustDomain: example.org}
---
apiVersion: weft.dev/v1alpha1
kind: DestinationPolicy
metadata: {name: orders, namespace: shop}
spec: {targetRef: {name: orders}, loadBalancer: LEAST_REQUEST}
`

func applyTestWrite(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestApplyCmd(t *testing.T) {
	g, st := apiTestControlPlane(t)
	dir := t.TempDir()
	applyTestWrite(t, dir, "10-routes.yaml", applyTestRoutes)
	applyTestWrite(t, dir, "20-policy.yml", applyTestPolicy)
	applyTestWrite(t, dir, "README.md", "not config")

	out, _, err := apiTestRun(t, g, newApplyCmd, "-f", dir)
	if err != nil {
		t.Fatal(err)
	}
	// Again, with one change.
	changed := applyTestWrite(t, t.TempDir(), "routes.yaml", strings.Replace(applyTestRoutes, "weight: 10", "weight: 20", 1))
	out2, _, err := apiTestRun(t, g, newApplyCmd, "-f", changed)
	if err != nil {
		t.Fatal(err)
	}
	apiTestGolden(t, "apply.txt", out+"--- second apply\n"+out2)
	// One revision per apply: the directory is one change.
	if st.Revision() != 2 {
		t.Errorf("Revision = %d, want 2", st.Revision())
	}
}

// TestApplyCmdRejects: a directory (and further -f arguments) with one
// invalid file applies nothing, and the error names the file, the
// document, the object and the field.
func TestApplyCmdRejects(t *testing.T) {
	g, st := apiTestControlPlane(t)
	dir := t.TempDir()
	applyTestWrite(t, dir, "10-good.yaml", applyTestRoutes)
	bad := applyTestWrite(t, dir, "20-bad.yaml", applyTestRoutes+"---\n"+strings.Replace(applyTestPolicy, "LEAST_REQUEST", "FASTEST", 1))
	applyTestWrite(t, dir, "30-good.yaml", strings.ReplaceAll(applyTestRoutes, "orders-v2", "orders-v3"))
	other := applyTestWrite(t, t.TempDir(), "other.yaml", applyTestPolicy)

	for _, args := range [][]string{{"-f", dir}, {"-f", other, "-f", dir}} {
		out, _, err := apiTestRun(t, g, newApplyCmd, args...)
		if err == nil {
			t.Fatalf("apply %v with an invalid file succeeded", args)
		}
		want := bad + `: document 4: DestinationPolicy "orders": spec.loadBalancer: must be one of P2C_EWMA, ROUND_ROBIN, RANDOM, LEAST_REQUEST, RING_HASH, MAGLEV, got "FASTEST"`
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "nothing applied") {
			t.Errorf("error %q\ndoes not contain %q", err, want)
		}
		if strings.Contains(out, "created") {
			t.Errorf("stdout = %q, want nothing applied", out)
		}
	}
	// A file that is valid alone but conflicts with another: the
	// duplicate is named in both files.
	dup := t.TempDir()
	applyTestWrite(t, dup, "a.yaml", applyTestRoutes)
	applyTestWrite(t, dup, "b.yaml", applyTestRoutes)
	if _, _, err := apiTestRun(t, g, newApplyCmd, "-f", dup); err == nil || !strings.Contains(err.Error(), filepath.Join(dup, "b.yaml")+": document 1: Service \"orders-v2\": duplicates "+filepath.Join(dup, "a.yaml")+": document 1") {
		t.Errorf("duplicate across files: err = %v", err)
	}
	if st.Revision() != 0 {
		t.Errorf("Revision = %d, want 0: nothing may be stored", st.Revision())
	}

	for _, args := range [][]string{{}, {"-f", filepath.Join(dir, "missing.yaml")}, {"-f", t.TempDir()}} {
		if _, _, err := apiTestRun(t, g, newApplyCmd, args...); err == nil {
			t.Errorf("apply %v succeeded", args)
		}
	}
}

func TestApplyCmdStdin(t *testing.T) {
	g, _ := apiTestControlPlane(t)
	cmd := newApplyCmd(g)
	var out strings.Builder
	cmd.SetOut(&out)
	cmd.SetIn(strings.NewReader(applyTestPolicy))
	cmd.SetArgs([]string{"-f", "-"})
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "meshconfig.weft.dev/default created") {
		t.Errorf("stdout = %q", out.String())
	}
}
