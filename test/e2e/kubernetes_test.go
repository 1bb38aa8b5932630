package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/kube/crd"
	"weft.dev/weft/internal/testkube"
)

// TestKubernetesStore: weft control --store kubernetes on a real API
// server. Services and an HTTPRoute created through the Kubernetes API
// (as kubectl does, not weft apply) reach a running proxy within 1 s, and
// the elected status writer reports the route Accepted.
func TestKubernetesStore(t *testing.T) {
	srv := testkube.StartAPIServer(t)
	ctx := context.Background()
	ext, err := apiextensionsclient.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	crds, err := crd.All()
	if err != nil {
		t.Fatal(err)
	}
	if err := crd.Install(ctx, ext, crds); err != nil {
		t.Fatal(err)
	}
	srv.Namespace(t, "weft-system")
	dyn, err := dynamic.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}

	c := startControl(t, "--store", "kubernetes", "--kubeconfig", srv.Kubeconfig(), "--system-namespace", "weft-system",
		"--seal-key-file", filepath.Join(t.TempDir(), "seal.key"))
	startBackend(t, c, "v1")
	startBackend(t, c, "v2")
	client := startClient(t, c, "client")
	waitBothVersions(t, client)

	objs, err := api.Decode([]byte(versionServices + "---" + canaryRoute))
	if err != nil {
		t.Fatal(err)
	}
	var route *unstructured.Unstructured
	for _, o := range objs {
		api.SetTypeMeta(o)
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: m}
		info, _ := api.LookupKind(u.GetKind())
		gv, _ := schema.ParseGroupVersion(info.APIVersion)
		created, err := dyn.Resource(gv.WithResource(info.Plural)).Namespace(u.GetNamespace()).Create(ctx, u, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating %s %s through the Kubernetes API: %v", u.GetKind(), u.GetName(), err)
		}
		if u.GetKind() == api.KindHTTPRoute {
			route = created
		}
	}
	applied := time.Now()
	took := eventually(t, 5*time.Second, 20*time.Millisecond, "route created through the Kubernetes API in effect", func() error {
		for i := range 5 {
			br, err := client.getBackend("http://backend/", "x-canary", "1")
			if err != nil {
				return err
			}
			if br.Version != "v2" {
				return fmt.Errorf("with x-canary: 1, request %d reached %s", i, br.Version)
			}
		}
		return nil
	})
	t.Logf("route created through the Kubernetes API in effect at the client proxy after %v", time.Since(applied).Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("route took %v to reach the proxy, want within 1s", took)
	}

	routes := dyn.Resource(schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}).Namespace("default")
	eventually(t, 15*time.Second, 100*time.Millisecond, "HTTPRoute status Accepted=True", func() error {
		u, err := routes.Get(ctx, route.GetName(), metav1.GetOptions{})
		if err != nil {
			return err
		}
		parents, _, _ := unstructured.NestedSlice(u.Object, "status", "parents")
		if len(parents) == 0 {
			return fmt.Errorf("no status.parents yet")
		}
		conds, _, _ := unstructured.NestedSlice(parents[0].(map[string]any), "conditions")
		for _, x := range conds {
			cond := x.(map[string]any)
			if cond["type"] == "Accepted" {
				if cond["status"] != "True" {
					return fmt.Errorf("Accepted=%v: %v", cond["status"], cond["message"])
				}
				return nil
			}
		}
		return fmt.Errorf("no Accepted condition in %v", conds)
	})
}
