package store

import (
	"errors"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"weft.dev/weft/internal/api"
)

func TestBlobName(t *testing.T) {
	keys := []string{"ca/root", "CA/root", "ca-root", "registry/default/orders/10.0.0.1:8080", "", "///", strings.Repeat("x", 400), "tokens/ünïcode"}
	seen := map[string]string{}
	for _, k := range keys {
		n := blobName(k)
		if msgs := validation.IsDNS1123Subdomain(n); len(msgs) > 0 {
			t.Errorf("blobName(%q) = %q: not a valid Secret name: %v", k, n, msgs)
		}
		if other, dup := seen[n]; dup {
			t.Errorf("keys %q and %q share Secret name %q", other, k, n)
		}
		seen[n] = k
		if blobName(k) != n {
			t.Errorf("blobName(%q) is not stable", k)
		}
	}
	if n := blobName("ca/root"); !strings.HasPrefix(n, "weft-blob-ca-root-") {
		t.Errorf("blobName(ca/root) = %q, want it readable", n)
	}
}

func TestReplicaLabel(t *testing.T) {
	for _, id := range []string{"weft-control-7d9f-abc123", "", strings.Repeat("r", 300), "a/b c"} {
		l := replicaLabel(id)
		if msgs := validation.IsValidLabelValue(l); len(msgs) > 0 {
			t.Errorf("replicaLabel(%q) = %q: %v", id, l, msgs)
		}
		if msgs := validation.IsDNS1123Subdomain("weft-replica-" + l); len(msgs) > 0 {
			t.Errorf("lease name for %q: %v", id, msgs)
		}
	}
	if replicaLabel("a") == replicaLabel("b") {
		t.Error("distinct replicas share a label")
	}
}

func TestToUnstructuredDropsServerFields(t *testing.T) {
	objs, err := api.Decode([]byte(`apiVersion: weft.dev/v1alpha1
kind: DestinationPolicy
metadata: {name: p, namespace: shop, labels: {team: a}}
spec: {targetRef: {name: orders}, loadBalancer: RANDOM}
`))
	if err != nil {
		t.Fatal(err)
	}
	o := objs[0].(*api.DestinationPolicy)
	o.SetUID("u-1")
	o.SetResourceVersion("42")
	o.SetGeneration(3)
	o.SetCreationTimestamp(metav1.Now())
	o.Status = &api.PolicyStatus{Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue}}}
	u, err := toUnstructured(o)
	if err != nil {
		t.Fatal(err)
	}
	if u.GetUID() != "" || u.GetResourceVersion() != "" || u.GetGeneration() != 0 {
		t.Errorf("server fields kept: uid %q rv %q gen %d", u.GetUID(), u.GetResourceVersion(), u.GetGeneration())
	}
	if _, ok := u.Object["status"]; ok {
		t.Error("status kept")
	}
	if _, ok := u.Object["metadata"].(map[string]any)["creationTimestamp"]; ok {
		t.Error("creationTimestamp kept")
	}
	if u.GetAPIVersion() != api.WeftV1Alpha1 || u.GetKind() != api.KindDestinationPolicy || u.GetLabels()["team"] != "a" {
		t.Errorf("lost identity: %s %s %v", u.GetAPIVersion(), u.GetKind(), u.GetLabels())
	}
	if o.GetResourceVersion() != "42" || o.Status == nil {
		t.Error("toUnstructured changed its argument")
	}
}

// TestConvertRefuses feeds objects as the API server would hand them over
// (bypassing weft apply) and checks that invalid ones are refused with an
// error naming the field.
func TestConvertRefuses(t *testing.T) {
	tests := []struct {
		name string
		obj  map[string]any
		want string // "" = valid
	}{
		{"valid", map[string]any{"apiVersion": "weft.dev/v1alpha1", "kind": "DestinationPolicy",
			"metadata": map[string]any{"name": "p", "namespace": "default", "resourceVersion": "7"},
			"spec":     map[string]any{"targetRef": map[string]any{"name": "orders"}}}, ""},
		{"bad load balancer", map[string]any{"apiVersion": "weft.dev/v1alpha1", "kind": "DestinationPolicy",
			"metadata": map[string]any{"name": "p", "namespace": "default"},
			"spec":     map[string]any{"targetRef": map[string]any{"name": "orders"}, "loadBalancer": "FASTEST"}}, "spec.loadBalancer"},
		{"missing target", map[string]any{"apiVersion": "weft.dev/v1alpha1", "kind": "DestinationPolicy",
			"metadata": map[string]any{"name": "p", "namespace": "default"},
			"spec":     map[string]any{}}, "spec.targetRef.name"},
		{"mesh config not default", map[string]any{"apiVersion": "weft.dev/v1alpha1", "kind": "MeshConfig",
			"metadata": map[string]any{"name": "other"}, "spec": map[string]any{}}, "metadata.name"},
		{"service without selector", map[string]any{"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": "kubernetes", "namespace": "default"},
			"spec":     map[string]any{"ports": []any{map[string]any{"port": int64(443)}}}}, "spec.selector"},
		{"wrong type", map[string]any{"apiVersion": "weft.dev/v1alpha1", "kind": "FaultInjection",
			"metadata": map[string]any{"name": "f", "namespace": "default"},
			"spec":     map[string]any{"abort": "yes"}}, "abort"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := convert(&unstructured.Unstructured{Object: tt.obj})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if o.GetResourceVersion() != "7" {
					t.Errorf("resourceVersion %q", o.GetResourceVersion())
				}
				if dp := o.(*api.DestinationPolicy); dp.Spec.TargetRef.Kind != api.KindService {
					t.Errorf("defaults not applied: targetRef.kind %q", dp.Spec.TargetRef.Kind)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

func TestAPIError(t *testing.T) {
	k := api.Key{Kind: api.KindExternalService, Namespace: "default", Name: "x"}
	inv := apierrors.NewInvalid(schema.GroupKind{Group: "weft.dev", Kind: "ExternalService"}, "x", field.ErrorList{
		field.NotSupported(field.NewPath("spec", "ports").Index(0).Child("protocol"), "UDP", []string{"HTTP", "TCP"}),
	})
	err := apiError(k, "creating", inv)
	var ie *api.InvalidError
	if !errors.As(err, &ie) || len(ie.Errors) != 1 || ie.Errors[0].Field != "spec.ports[0].protocol" || !strings.Contains(ie.Errors[0].Detail, "Kubernetes API server") {
		t.Fatalf("invalid: got %#v (%v)", ie, err)
	}
	err = apiError(k, "creating", apierrors.NewForbidden(schema.GroupResource{Group: "weft.dev", Resource: "externalservices"}, "x", errors.New("no")))
	if errors.As(err, &ie) || !strings.Contains(err.Error(), "creating ExternalService/default/x") || !strings.Contains(err.Error(), "RBAC") || !apierrors.IsForbidden(err) {
		t.Fatalf("forbidden: %v", err)
	}
}

func TestLeaseExpired(t *testing.T) {
	now := time.Now()
	secs := int32(10)
	at := func(d time.Duration) *metav1.MicroTime { m := metav1.NewMicroTime(now.Add(d)); return &m }
	tests := []struct {
		name  string
		renew *metav1.MicroTime
		dur   *int32
		want  bool
	}{
		{"fresh", at(-time.Second), &secs, false},
		{"just within", at(-9 * time.Second), &secs, false},
		{"expired", at(-11 * time.Second), &secs, true},
		{"never renewed", nil, &secs, true},
		{"no duration", at(0), nil, true},
	}
	for _, tt := range tests {
		l := &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{RenewTime: tt.renew, LeaseDurationSeconds: tt.dur}}
		if got := leaseExpired(l, now); got != tt.want {
			t.Errorf("%s: expired = %v, want %v", tt.name, got, tt.want)
		}
	}
}
