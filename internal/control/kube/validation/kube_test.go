package validation

import (
	"context"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/apiserver"
	"weft.dev/weft/internal/control/kube/crd"
	kubestore "weft.dev/weft/internal/control/kube/store"
	"weft.dev/weft/internal/testkube"
)

// TestWebhookWithAPIServer registers the webhook with a real kube-apiserver
// over the Kubernetes store and writes weft objects the way kubectl does:
// what `weft apply` would refuse is refused with its message and never
// stored; valid objects, deletes and status updates pass.
func TestWebhookWithAPIServer(t *testing.T) {
	srv := testkube.StartAPIServer(t)
	cfg := srv.RESTConfig()
	ctx := context.Background()
	if err := crd.InstallAll(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	srv.Namespace(t, "weft-system")
	srv.Namespace(t, "shop")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := kubestore.Open(ctx, cfg, kubestore.Options{SystemNamespace: "weft-system", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	h, err := NewHandler(Options{Check: apiserver.NewValidator(st, apiserver.Options{TrustDomain: "cluster.local"}).Check})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+Path, h)
	hook := httptest.NewTLSServer(mux) // a certificate for 127.0.0.1
	t.Cleanup(hook.Close)
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.Certificate().Raw})
	if _, err := srv.Clientset().AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx,
		WebhookConfiguration("weft-validate", hook.URL+Path, caBundle), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the webhook configuration: %v", err)
	}

	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := func(kind, ns string) dynamic.ResourceInterface {
		info, ok := api.LookupKind(kind)
		if !ok {
			t.Fatalf("no kind %s", kind)
		}
		gv, _ := schema.ParseGroupVersion(info.APIVersion)
		return dyn.Resource(gv.WithResource(info.Plural)).Namespace(ns)
	}
	obj := func(doc string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		return u
	}
	const badDP = `{apiVersion: weft.dev/v1alpha1, kind: DestinationPolicy, metadata: {name: typo}, spec: {targetRef: {kind: Service, name: orders}, retry: {perTryTimeout: soon}}}`
	const denied = `admission webhook "` + WebhookName + `" denied the request`

	// The API server picks the configuration up within a moment.
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := res(api.KindDestinationPolicy, "shop").Create(ctx, obj(badDP), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), denied) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the webhook is not called: last create: %v", err)
		}
	}

	refused := func(t *testing.T, err error, want ...string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), denied) || !apierrors.IsInvalid(err) {
			t.Fatalf("err = %v, want the webhook's 422 refusal", err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("refusal %q lacks %q", err, w)
			}
		}
	}
	t.Run("invalid field", func(t *testing.T) {
		_, err := res(api.KindDestinationPolicy, "shop").Create(ctx, obj(badDP), metav1.CreateOptions{})
		refused(t, err, "weft apply would refuse it", "spec.retry.perTryTimeout", `"soon"`)
		if _, err := res(api.KindDestinationPolicy, "shop").Get(ctx, "typo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the refused object is in the cluster: %v", err)
		}
	})
	t.Run("another trust domain", func(t *testing.T) {
		_, err := res(api.KindMeshConfig, "").Create(ctx, obj(`{apiVersion: weft.dev/v1alpha1, kind: MeshConfig, metadata: {name: default}, spec: {trustDomain: prod.example.com}}`), metav1.CreateOptions{})
		refused(t, err, "spec.trustDomain", `"prod.example.com"`)
	})
	t.Run("valid, updated, broken by an update, then deleted", func(t *testing.T) {
		r := res(api.KindDestinationPolicy, "shop")
		good, err := r.Create(ctx, obj(`{apiVersion: weft.dev/v1alpha1, kind: DestinationPolicy, metadata: {name: orders}, spec: {targetRef: {kind: Service, name: orders}, retry: {perTryTimeout: 250ms}}}`), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("a valid policy was refused: %v", err)
		}
		// An update as kubectl sends it: the stored object (uid,
		// resourceVersion, managedFields) with a changed field.
		if err := unstructured.SetNestedField(good.Object, "300ms", "spec", "retry", "perTryTimeout"); err != nil {
			t.Fatal(err)
		}
		if good, err = r.Update(ctx, good, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("a valid update was refused: %v", err)
		}
		broken := good.DeepCopy()
		if err := unstructured.SetNestedField(broken.Object, "later", "spec", "retry", "perTryTimeout"); err != nil {
			t.Fatal(err)
		}
		_, err = r.Update(ctx, broken, metav1.UpdateOptions{})
		refused(t, err, "spec.retry.perTryTimeout", `"later"`)
		// The status subresource is weft's own writer's: not judged.
		withStatus := good.DeepCopy()
		withStatus.Object["status"] = map[string]any{"conditions": []any{map[string]any{"type": "Accepted", "status": "True", "reason": "Accepted",
			"message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}}}
		if _, err := r.UpdateStatus(ctx, withStatus, metav1.UpdateOptions{}); err != nil {
			t.Errorf("status update refused: %v", err)
		}
		if err := r.Delete(ctx, "orders", metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete refused: %v", err)
		}
	})
	if rej := st.Rejected(); len(rej) != 0 {
		t.Errorf("the store saw objects it had to ignore: %v", rej)
	}
}
