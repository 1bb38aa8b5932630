package apiserver

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/mesh"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestPolicyStatus: the weft policies that target a Service are Accepted
// while it is in the mesh and TargetNotFound while it is not; an
// AuthorizationPolicy without targetRef says which workloads it governs.
func TestPolicyStatus(t *testing.T) {
	services := map[string]*mesh.Service{weftv1.ResourceName("orders", "shop"): {}}
	meta := func(ns string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: "p", Namespace: ns, Generation: 3} }
	target := func(name string) api.PolicyTargetRef { return api.PolicyTargetRef{Kind: "Service", Name: name} }
	tests := []struct {
		name   string
		obj    api.Object
		status func(api.Object) *api.PolicyStatus
		want   metav1.ConditionStatus
		reason string
		msg    string
	}{
		{"destination policy on a mesh Service", &api.DestinationPolicy{ObjectMeta: meta("shop"), Spec: api.DestinationPolicySpec{TargetRef: target("orders")}},
			func(o api.Object) *api.PolicyStatus { return o.(*api.DestinationPolicy).Status }, metav1.ConditionTrue, ReasonAccepted, "applies to Service shop/orders"},
		{"authorization policy on a mesh Service", &api.AuthorizationPolicy{ObjectMeta: meta("shop"), Spec: api.AuthorizationPolicySpec{TargetRef: target("orders")}},
			func(o api.Object) *api.PolicyStatus { return o.(*api.AuthorizationPolicy).Status }, metav1.ConditionTrue, ReasonAccepted, "applies to Service shop/orders"},
		{"authorization policy on a missing Service", &api.AuthorizationPolicy{ObjectMeta: meta("shop"), Spec: api.AuthorizationPolicySpec{TargetRef: target("payments")}},
			func(o api.Object) *api.PolicyStatus { return o.(*api.AuthorizationPolicy).Status }, metav1.ConditionFalse, ReasonTargetNotFound, `no Service "payments" in namespace "shop"`},
		{"namespace-wide authorization policy", &api.AuthorizationPolicy{ObjectMeta: meta("shop"), Spec: api.AuthorizationPolicySpec{Selector: &api.WorkloadSelector{}}},
			func(o api.Object) *api.PolicyStatus { return o.(*api.AuthorizationPolicy).Status }, metav1.ConditionTrue, ReasonAccepted, "every workload of namespace shop that its selector matches"},
		{"mesh-wide authorization policy", &api.AuthorizationPolicy{ObjectMeta: meta(api.RootNamespace)},
			func(o api.Object) *api.PolicyStatus { return o.(*api.AuthorizationPolicy).Status }, metav1.ConditionTrue, ReasonAccepted, "every workload of the mesh"},
		{"request authentication on a missing Service", &api.RequestAuthentication{ObjectMeta: meta("shop"), Spec: api.RequestAuthenticationSpec{TargetRef: target("gone")}},
			func(o api.Object) *api.PolicyStatus { return o.(*api.RequestAuthentication).Status }, metav1.ConditionFalse, ReasonTargetNotFound, `no Service "gone"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			setStatus(tc.obj, services)
			st := tc.status(tc.obj)
			if st == nil || len(st.Conditions) != 1 {
				t.Fatalf("status = %+v, want one condition", st)
			}
			c := st.Conditions[0]
			if c.Type != "Accepted" || c.Status != tc.want || c.Reason != tc.reason || !strings.Contains(c.Message, tc.msg) || c.ObservedGeneration != 3 {
				t.Errorf("condition = %+v, want %s/%s containing %q at generation 3", c, tc.want, tc.reason, tc.msg)
			}
			api.ClearStatus(tc.obj)
			if tc.status(tc.obj) != nil {
				t.Error("ClearStatus left the status")
			}
		})
	}
}
