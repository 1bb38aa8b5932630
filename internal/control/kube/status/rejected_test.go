package status

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/apiserver"
)

// create creates the object of doc through the dynamic client, the way
// `kubectl create` does: around `weft apply` and its checks.
func (f *fixture) create(t *testing.T, doc string) {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	if _, err := f.dyn.Resource(gvr(t, u.GetKind())).Namespace(u.GetNamespace()).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

// conditions returns the status conditions of the object (status.conditions,
// or for a route those of its parent statuses), by type.
func (f *fixture) conditions(t *testing.T, kind, ns, name string) map[string]map[string]any {
	t.Helper()
	u, err := f.dyn.Resource(gvr(t, kind)).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	parents, _, _ := unstructured.NestedSlice(u.Object, "status", "parents")
	for _, p := range parents {
		if p := p.(map[string]any); p["controllerName"] == string(apiserver.ControllerName) {
			c, _, _ := unstructured.NestedSlice(p, "conditions")
			conds = append(conds, c...)
		}
	}
	for _, c := range conds {
		c := c.(map[string]any)
		out[c["type"].(string)] = c
	}
	return out
}

// TestWriterReportsRejectedAndConfigStatus: objects created around `weft
// apply` that weft ignores say so in their status, with the field and
// the reason (Accepted=False: Invalid on a weft kind, UnsupportedValue on
// a route's parents); MeshConfig, ExternalService and FaultInjection get
// their statuses; another controller's route parent status is kept; and a
// fixed object's status follows.
func TestWriterReportsRejectedAndConfigStatus(t *testing.T) {
	f := newFixture(t)
	f.create(t, `{apiVersion: weft.dev/v1alpha1, kind: FaultInjection, metadata: {name: slow, namespace: shop}, spec: {delay: {fixedDelay: forever}}}`)
	f.create(t, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: custom, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: orders, port: 8080}]
  rules:
  - filters: [{type: ExtensionRef, extensionRef: {group: example.com, kind: Magic, name: x}}]
    backendRefs: [{name: orders, port: 8080}]`)
	f.create(t, `{apiVersion: weft.dev/v1alpha1, kind: ExternalService, metadata: {name: api, namespace: shop}, spec: {hosts: [api.example.com], egressGateway: egress}}`)
	f.create(t, `{apiVersion: weft.dev/v1alpha1, kind: MeshConfig, metadata: {name: default}, spec: {mtls: {mode: PERMISSIVE}}}`)

	// Another implementation's parent status on the rejected route.
	u, err := f.dyn.Resource(gvr(t, api.KindHTTPRoute)).Namespace("shop").Get(context.Background(), "custom", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	foreign := map[string]any{"parentRef": map[string]any{"name": "edge"}, "controllerName": "example.com/other",
		"conditions": []any{map[string]any{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}}}
	u.Object["status"] = map[string]any{"parents": []any{foreign}}
	if _, err := f.dyn.Resource(gvr(t, api.KindHTTPRoute)).Namespace("shop").UpdateStatus(context.Background(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	_, stop, done := f.start(t, "replica-a", f.cfg)
	defer func() { stop(); <-done }()

	is := func(c map[string]any, status, reason, msg string) bool {
		m, _ := c["message"].(string)
		return c != nil && c["status"] == status && c["reason"] == reason && strings.Contains(m, msg)
	}
	waitFor(t, "statuses of the rejected objects", 10*time.Second, func() bool {
		fi := f.conditions(t, api.KindFaultInjection, "shop", "slow")["Accepted"]
		rt := f.conditions(t, api.KindHTTPRoute, "shop", "custom")["Accepted"]
		return is(fi, "False", ReasonInvalid, "ignored by weft: ") && is(fi, "False", ReasonInvalid, "spec.delay.fixedDelay") &&
			is(rt, "False", "UnsupportedValue", `unsupported extension filter group "example.com"`)
	})
	waitFor(t, "ExternalService and MeshConfig statuses", 5*time.Second, func() bool {
		es := f.conditions(t, api.KindExternalService, "shop", "api")
		mc := f.conditions(t, api.KindMeshConfig, "", "default")
		return is(es["Accepted"], "True", apiserver.ReasonAccepted, "declares api.example.com") &&
			is(es["ResolvedRefs"], "False", apiserver.ReasonEgressGatewayNotFound, `no Service "egress" in namespace "shop"`) &&
			is(mc["Accepted"], "True", apiserver.ReasonAccepted, "mutual TLS PERMISSIVE")
	})
	u, err = f.dyn.Resource(gvr(t, api.KindHTTPRoute)).Namespace("shop").Get(context.Background(), "custom", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	parents, _, _ := unstructured.NestedSlice(u.Object, "status", "parents")
	kept := false
	for _, p := range parents {
		kept = kept || p.(map[string]any)["controllerName"] == "example.com/other"
	}
	if len(parents) != 2 || !kept {
		t.Errorf("route parents = %v, want weft's and the other controller's", parents)
	}

	// Fixed: the FaultInjection is served (and used by no route).
	u, err = f.dyn.Resource(gvr(t, api.KindFaultInjection)).Namespace("shop").Get(context.Background(), "slow", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedField(u.Object, "200ms", "spec", "delay", "fixedDelay"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.dyn.Resource(gvr(t, api.KindFaultInjection)).Namespace("shop").Update(context.Background(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fixed FaultInjection's status", 5*time.Second, func() bool {
		c := f.conditions(t, api.KindFaultInjection, "shop", "slow")["Accepted"]
		return is(c, "False", apiserver.ReasonNotReferenced, "injects nothing") && c["observedGeneration"] == int64(2)
	})
}
