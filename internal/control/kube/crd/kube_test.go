package crd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"weft.dev/weft/internal/api"
)

// TestInstallAndRoundTrip installs every CRD on a real API server, waits
// until each is Established, and creates an object of every non-core kind
// from testdata/kinds.yaml: what the API server returns must hold what weft
// decoded (exactly, for weft's kinds; Gateway API CRDs add their defaults).
func TestInstallAndRoundTrip(t *testing.T) {
	cfg := startAPIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	crds, err := All()
	if err != nil {
		t.Fatal(err)
	}
	cs, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := Install(ctx, cs, crds); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d CRDs installed and established in %v", len(crds), time.Since(start).Round(time.Millisecond))
	if err := Install(ctx, cs, crds); err != nil {
		t.Fatalf("installing again (update): %v", err)
	}

	kube := kubernetes.NewForConfigOrDie(cfg)
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	for _, o := range kindsYAML(t) {
		k := api.KeyOf(o)
		t.Run(k.Kind, func(t *testing.T) {
			info, _ := api.LookupKind(k.Kind)
			res := resource(dyn, info, k.Namespace)
			sent := toMap(t, o)
			got, err := res.Create(ctx, &unstructured.Unstructured{Object: sent}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			got, err = res.Get(ctx, k.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			b, _ := got.MarshalJSON()
			back, err := api.Unmarshal(b)
			if err != nil {
				t.Fatalf("reading back: %v", err)
			}
			if err := api.Validate(back); err != nil {
				t.Errorf("read back, no longer valid: %v", err)
			}
			gotSpec := normalize(t, got.Object["spec"])
			if info.Group() == api.GroupWeft {
				if !reflect.DeepEqual(sent["spec"], gotSpec) {
					t.Errorf("spec changed on the way through the API server:\nsent %v\ngot  %v", sent["spec"], gotSpec)
				}
			} else if err := contains(gotSpec, sent["spec"], "spec"); err != nil {
				t.Errorf("API server lost part of the spec: %v", err)
			}
		})
	}

	// The schema generated from the markers is enforced by the API server.
	bad := map[string]any{"apiVersion": api.WeftV1Alpha1, "kind": api.KindExternalService,
		"metadata": map[string]any{"name": "bad", "namespace": "shop"},
		"spec":     map[string]any{"hosts": []any{"x.example.com"}, "ports": []any{map[string]any{"number": int64(70000), "protocol": "UDP"}}}}
	info, _ := api.LookupKind(api.KindExternalService)
	_, err = resource(dyn, info, "shop").Create(ctx, &unstructured.Unstructured{Object: bad}, metav1.CreateOptions{})
	var se *apierrors.StatusError
	if !errors.As(err, &se) || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.ports[0].protocol") || !strings.Contains(err.Error(), "spec.ports[0].number") {
		t.Fatalf("schema-invalid ExternalService: err = %v, want Invalid naming spec.ports[0].protocol and .number", err)
	}
}

func resource(dyn dynamic.Interface, info api.KindInfo, ns string) dynamic.ResourceInterface {
	gv, _ := schema.ParseGroupVersion(info.APIVersion)
	r := dyn.Resource(gv.WithResource(info.Plural))
	if info.Namespaced {
		return r.Namespace(ns)
	}
	return r
}

func toMap(t *testing.T, o api.Object) map[string]any {
	t.Helper()
	b, err := api.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "status")
	delete(m["metadata"].(map[string]any), "creationTimestamp")
	return m
}

// normalize gives v the types encoding/json decodes to (float64 numbers).
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// contains reports where want is not part of got (maps may have more keys
// in got, lists must have the same length).
func contains(got, want any, path string) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: got %v, want an object", path, got)
		}
		for k, wv := range w {
			if err := contains(g[k], wv, path+"."+k); err != nil {
				return err
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: got %v, want %v", path, got, w)
		}
		for i := range w {
			if err := contains(g[i], w[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	default:
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("%s: got %v (%T), want %v (%T)", path, got, got, want, want)
		}
	}
	return nil
}
