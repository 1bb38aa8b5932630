package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weft.dev/weft/internal/api"
)

// TestGetTable prints every kind with fixed creation times.
func TestGetTable(t *testing.T) {
	objs, err := api.Decode([]byte(applyTestRoutes + "---\n" + applyTestPolicy +
		"---\napiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: greeter}\nspec:\n  parentRefs: [{name: edge}]\n  rules: [{}, {}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ages := []time.Duration{30 * time.Second, 5 * time.Minute, 3 * time.Hour, 72 * time.Hour, 0, 90 * time.Second}
	var out bytes.Buffer
	for i, o := range objs {
		o.SetCreationTimestamp(metav1.NewTime(now.Add(-ages[i%len(ages)])))
		info, _ := api.LookupKind(api.KindOf(o))
		if err := getPrintTable(&out, info, []api.Object{o}, now, nil); err != nil {
			t.Fatal(err)
		}
		out.WriteString("\n")
	}
	apiTestGolden(t, "get-table.txt", out.String())
}

func TestGetCmd(t *testing.T) {
	g, _ := apiTestControlPlane(t)
	if _, _, err := apiTestRun(t, g, newApplyCmd, "-f", applyTestWrite(t, t.TempDir(), "a.yaml", applyTestRoutes+"---\n"+applyTestPolicy)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args    []string
		want    []string // substrings of stdout
		notWant []string
		wantErr string
	}{
		{args: []string{"svc"}, want: []string{"Services of running workloads", "web "}, notWant: []string{"No services found"}}, // declared: none in default; implicit: web
		{args: []string{"svc", "-n", "shop"}, want: []string{"NAMESPACE", "SELECTOR", "shop", "orders-v2", "app=orders,version=v2", "8080/TCP", "Services of running workloads", "shop        orders   2",
			"PORTS      ENDPOINTS   AGE", "8080/TCP   1           "}},
		{args: []string{"svc", "-n", "empty"}, want: []string{`No services found in namespace "empty".`}},
		{args: []string{"httproutes", "-A"}, want: []string{"PARENTS", "Service/orders"}},
		{args: []string{"meshconfig"}, want: []string{"TRUST DOMAIN", "example.org", "STRICT"}},
		{args: []string{"dp", "orders", "-n", "shop"}, want: []string{"Service/orders", "LEAST_REQUEST"}},
		{args: []string{"dp", "-A", "-o", "json"}, want: []string{`"kind": "List"`, `"loadBalancer": "LEAST_REQUEST"`}},
		{args: []string{"httproute", "orders", "-n", "shop", "-o", "yaml"}, want: []string{"kind: HTTPRoute", "weight: 10", "uid:",
			"controllerName: weft.dev/mesh", "reason: NoMatchingParent", "reason: BackendNotFound", "type: ResolvedRefs", `no Service "orders" in namespace "shop"`}},
		{args: []string{"dp", "orders", "-n", "shop", "-o", "yaml"}, want: []string{"reason: TargetNotFound", "type: Accepted"}},
		{args: []string{"svc", "-A", "-o", "yaml"}, want: []string{"name: orders-v2"}},
		{args: []string{"svc", "nope", "-n", "shop"}, wantErr: `Service "nope" not found in namespace "shop"`},
		{args: []string{"pods"}, wantErr: `unknown kind "pods"`},
		{args: []string{"svc", "-o", "wide"}, wantErr: `--output: must be table, yaml or json`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, err := apiTestRun(t, g, newGetCmd, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("output does not contain %q:\n%s%s", w, out, errOut)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out+errOut, w) {
					t.Errorf("output contains %q:\n%s%s", w, out, errOut)
				}
			}
			if strings.Contains(out, "status:") && !strings.Contains(out, "conditions:") {
				t.Errorf("empty status printed:\n%s", out)
			}
		})
	}

	// What get -o yaml prints applies back unchanged.
	y, _, err := apiTestRun(t, g, newGetCmd, "httproute", "-A", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := apiTestRun(t, g, newApplyCmd, "-f", applyTestWrite(t, t.TempDir(), "back.yaml", y))
	if err != nil || strings.TrimSpace(out) != "httproute.gateway.networking.k8s.io/orders unchanged" {
		t.Errorf("re-apply of get -o yaml = %q, %v", out, err)
	}
}

func TestDeleteCmd(t *testing.T) {
	g, _ := apiTestControlPlane(t)
	if _, _, err := apiTestRun(t, g, newApplyCmd, "-f", applyTestWrite(t, t.TempDir(), "a.yaml", applyTestRoutes+"---\n"+applyTestPolicy)); err != nil {
		t.Fatal(err)
	}
	out, _, err := apiTestRun(t, g, newDeleteCmd, "httproute", "orders", "-n", "shop")
	if err != nil || out != "httproute.gateway.networking.k8s.io/orders deleted\n" {
		t.Errorf("delete = %q, %v", out, err)
	}
	out, _, err = apiTestRun(t, g, newDeleteCmd, "mc", "default")
	if err != nil || out != "meshconfig.weft.dev/default deleted\n" {
		t.Errorf("delete meshconfig = %q, %v", out, err)
	}
	if _, _, err := apiTestRun(t, g, newDeleteCmd, "httproute", "orders", "-n", "shop"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("second delete = %v, want not found", err)
	}
	if _, _, err := apiTestRun(t, g, newDeleteCmd, "svc"); err == nil {
		t.Error("delete without a name succeeded")
	}
}
