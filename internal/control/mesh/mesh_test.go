package mesh

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weft.dev/weft/internal/api"
)

func workload(id, svc, ns, version, addr string) *Workload {
	return &Workload{ID: id, Service: svc, Namespace: ns, Address: addr, Labels: WorkloadLabels(svc, version, nil), Identity: "spiffe://cluster.local/ns/" + ns + "/sa/" + svc}
}

func TestBuildSelectsEndpoints(t *testing.T) {
	set := &api.Set{Services: []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "orders-v2", Namespace: "default"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "orders", "version": "v2"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "everything", Namespace: "default"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"tier": "x"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "empty-selector", Namespace: "default"}},
	}}
	ws := []*Workload{
		workload("o1", "orders", "default", "v1", "127.0.0.1:1"),
		workload("o2", "orders", "default", "v2", "127.0.0.1:2"),
		workload("o3", "orders", "shop", "v2", "127.0.0.1:3"),
		workload("c1", "client", "default", "", ""),
	}
	ws[0].Labels["tier"] = "x"
	snap := Build(set, ws)
	endpoints := func(key string) []string {
		var out []string
		for _, w := range snap.Endpoints[key] {
			out = append(out, w.ID)
		}
		return out
	}
	tests := []struct {
		key  string
		want string
	}{
		{"orders.default", "[o1 o2]"},
		{"orders.shop", "[o3]"},
		{"orders-v2.default", "[o2]"},
		{"everything.default", "[o1]"},
		{"empty-selector.default", "[]"},
		{"client.default", "[]"},
	}
	for _, tt := range tests {
		if got := fmt.Sprint(endpoints(tt.key)); got != tt.want {
			t.Errorf("endpoints of %s = %s, want %s", tt.key, got, tt.want)
		}
	}
	if _, ok := snap.Services["orders-v2.default"]; !ok || !snap.Services["orders-v2.default"].Declared {
		t.Error("declared service missing")
	}
}

// BenchmarkBuild: 500 services of 10 workloads each, plus 100 declared
// per-version services.
func BenchmarkBuild(b *testing.B) {
	var ws []*Workload
	set := &api.Set{}
	for s := range 500 {
		name := fmt.Sprintf("svc-%d", s)
		for i := range 10 {
			ws = append(ws, workload(fmt.Sprintf("%s-%d", name, i), name, "default", fmt.Sprintf("v%d", i%2), fmt.Sprintf("10.0.%d.%d:15006", s/200, i+s%200)))
		}
		if s < 100 {
			set.Services = append(set.Services, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name + "-v1", Namespace: "default"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name, "version": "v1"}}})
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		Build(set, ws)
	}
}
