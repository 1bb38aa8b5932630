package install_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"weft.dev/weft/internal/cli"
	"weft.dev/weft/internal/connfile"
	"weft.dev/weft/internal/control/controlplane"
	"weft.dev/weft/internal/control/kube/crd"
	"weft.dev/weft/internal/control/kube/podscope"
	kubestatus "weft.dev/weft/internal/control/kube/status"
	kubestore "weft.dev/weft/internal/control/kube/store"
	"weft.dev/weft/internal/control/kube/trustbundle"
	"weft.dev/weft/internal/control/store"
	"weft.dev/weft/internal/install"
	"weft.dev/weft/internal/testkube"
)

// apply creates every object with the typed clients, CRDs through
// crd.Install (which waits until they are Established).
func apply(ctx context.Context, t *testing.T, cfg *rest.Config, objs []runtime.Object) {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(cfg)
	ext := apiextensionsclient.NewForConfigOrDie(cfg)
	var crds []*apiextensionsv1.CustomResourceDefinition
	co := metav1.CreateOptions{FieldManager: "weft-install-test"}
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *apiextensionsv1.CustomResourceDefinition:
			crds = append(crds, o)
			continue
		case *corev1.Namespace:
			_, err = cs.CoreV1().Namespaces().Create(ctx, o, co)
			if apierrors.IsAlreadyExists(err) {
				err = nil
			}
		case *corev1.ServiceAccount:
			_, err = cs.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, co)
		case *corev1.Secret:
			_, err = cs.CoreV1().Secrets(o.Namespace).Create(ctx, o, co)
		case *corev1.Service:
			_, err = cs.CoreV1().Services(o.Namespace).Create(ctx, o, co)
		case *rbacv1.ClusterRole:
			_, err = cs.RbacV1().ClusterRoles().Create(ctx, o, co)
		case *rbacv1.ClusterRoleBinding:
			_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, o, co)
		case *rbacv1.Role:
			_, err = cs.RbacV1().Roles(o.Namespace).Create(ctx, o, co)
		case *rbacv1.RoleBinding:
			_, err = cs.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, co)
		case *appsv1.Deployment:
			_, err = cs.AppsV1().Deployments(o.Namespace).Create(ctx, o, co)
		case *policyv1.PodDisruptionBudget:
			_, err = cs.PolicyV1().PodDisruptionBudgets(o.Namespace).Create(ctx, o, co)
		case *admissionregistrationv1.MutatingWebhookConfiguration:
			_, err = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, o, co)
		case *admissionregistrationv1.ValidatingWebhookConfiguration:
			_, err = cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, o, co)
		default:
			t.Fatalf("no client for %T", o)
		}
		if err != nil {
			t.Fatalf("creating %s: %v", o.GetObjectKind().GroupVersionKind().Kind, err)
		}
		if len(crds) > 0 {
			// The CRDs come first: install them before anything else.
			if err := crd.Install(ctx, ext, crds); err != nil {
				t.Fatalf("installing the CRDs: %v", err)
			}
			crds = nil
		}
	}
}

// results indexes check results by name.
func results(t *testing.T, ctx context.Context, cfg *rest.Config) map[string]install.CheckResult {
	t.Helper()
	rs, err := install.Check(ctx, cfg, install.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]install.CheckResult{}
	for _, r := range rs {
		out[r.Name] = r
	}
	if len(out) != 9 {
		t.Fatalf("%d checks, want 9: %+v", len(out), rs)
	}
	return out
}

// runCheckCmd runs `weft check --kubernetes --kubeconfig` and returns its
// exit code and output.
func runCheckCmd(t *testing.T, kubeconfig string) (int, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = f
	code := cli.Main([]string{"check", "--kubernetes", "--kubeconfig", kubeconfig})
	os.Stdout = old
	f.Close()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return code, string(b)
}

func TestInstallOnAPIServer(t *testing.T) {
	srv := testkube.StartAPIServer(t)
	cfg := srv.RESTConfig()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs := srv.Clientset()

	rs, err := install.Check(ctx, cfg, install.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.OK {
			t.Errorf("before the install: %s ok: %s", r.Name, r.Detail)
		}
	}

	objs, err := install.Render(install.Options{})
	if err != nil {
		t.Fatal(err)
	}
	apply(ctx, t, cfg, objs)

	// A careless upgrade: the Secrets of a second `weft install` applied
	// over the first. The seal key is immutable, so the API server refuses
	// the new key and the replicas keep the one that opens the CA root.
	t.Run("a later install cannot replace the seal key", func(t *testing.T) {
		again, err := install.Render(install.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var fresh *corev1.Secret
		for _, o := range again {
			if s, ok := o.(*corev1.Secret); ok && s.Name == install.SealSecret {
				fresh = s
			}
		}
		if fresh == nil {
			t.Fatal("no seal key Secret rendered")
		}
		stored, err := cs.CoreV1().Secrets(install.DefaultNamespace).Get(ctx, install.SealSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(stored.Data["seal.key"], fresh.Data["seal.key"]) {
			t.Fatal("two renders made the same seal key")
		}
		fresh.ResourceVersion = stored.ResourceVersion
		_, err = cs.CoreV1().Secrets(install.DefaultNamespace).Update(ctx, fresh, metav1.UpdateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "immutable") {
			t.Fatalf("replacing the seal key: %v, want refused as immutable", err)
		}
		after, err := cs.CoreV1().Secrets(install.DefaultNamespace).Get(ctx, install.SealSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(after.Data["seal.key"], stored.Data["seal.key"]) {
			t.Error("the stored seal key changed")
		}
	})

	// `weft install --upgrade` over the running installation, applied the
	// way `kubectl apply --server-side` applies it: every object is
	// accepted, the seal key stays, and the webhooks' new certificate and
	// the caBundles that trust it arrive together.
	t.Run("an upgrade render applies cleanly", func(t *testing.T) {
		up, err := install.Render(install.Options{Upgrade: true})
		if err != nil {
			t.Fatal(err)
		}
		before, err := cs.CoreV1().Secrets(install.DefaultNamespace).Get(ctx, install.SealSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cs.Discovery()))
		dyn := dynamic.NewForConfigOrDie(cfg)
		for _, o := range up {
			if s, ok := o.(*corev1.Secret); ok && s.Name == install.SealSecret {
				t.Fatal("the upgrade render has the seal key")
			}
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{Object: m}
			gvk := u.GroupVersionKind()
			mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				t.Fatalf("%s: %v", gvk, err)
			}
			body, err := u.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			var res dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
			if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
				res = dyn.Resource(mapping.Resource).Namespace(u.GetNamespace())
			}
			if _, err := res.Patch(ctx, u.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "kubectl", Force: ptr(true)}); err != nil {
				t.Fatalf("applying %s %s: %v", gvk.Kind, u.GetName(), err)
			}
		}
		after, err := cs.CoreV1().Secrets(install.DefaultNamespace).Get(ctx, install.SealSecret, metav1.GetOptions{})
		if err != nil || !bytes.Equal(after.Data["seal.key"], before.Data["seal.key"]) {
			t.Fatalf("the seal key changed or went: %v", err)
		}
		tlsSecret, err := cs.CoreV1().Secrets(install.DefaultNamespace).Get(ctx, install.WebhookTLSSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		vwc, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, install.Validate, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mwc, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, install.Inject, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(vwc.Webhooks[0].ClientConfig.CABundle, tlsSecret.Data["ca.crt"]) || !bytes.Equal(mwc.Webhooks[0].ClientConfig.CABundle, tlsSecret.Data["ca.crt"]) {
			t.Error("the webhook configurations do not trust the CA of the upgraded certificate")
		}
	})

	t.Run("check without a kubelet", func(t *testing.T) {
		got := results(t, ctx, cfg)
		for name, r := range got {
			wantOK := !strings.Contains(name, "Deployment available")
			if r.OK != wantOK {
				t.Errorf("%s: ok %v (%s), want %v", name, r.OK, r.Detail, wantOK)
			}
		}
		if d := got["control plane Deployment available"].Detail; !strings.Contains(d, "0/2 replicas ready") {
			t.Errorf("deployment detail %q, want 0/2 replicas ready", d)
		}
		code, out := runCheckCmd(t, srv.Kubeconfig())
		if code == 0 || !strings.Contains(out, "FAIL control plane Deployment available") || !strings.Contains(out, "ok   CRDs established") {
			t.Errorf("weft check --kubernetes: exit %d, output:\n%s", code, out)
		}
	})

	t.Run("check with available replicas", func(t *testing.T) {
		for _, name := range []string{install.Control, install.Inject} {
			d, err := cs.AppsV1().Deployments(install.DefaultNamespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2}
			if _, err := cs.AppsV1().Deployments(install.DefaultNamespace).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for name, r := range results(t, ctx, cfg) {
			if !r.OK {
				t.Errorf("%s: %s", name, r.Detail)
			}
		}
		code, out := runCheckCmd(t, srv.Kubeconfig())
		if code != 0 || strings.Contains(out, "FAIL") || !strings.Contains(out, "2/2 replicas ready") {
			t.Errorf("weft check --kubernetes: exit %d, output:\n%s", code, out)
		}
		t.Logf("weft check --kubernetes:\n%s", out)
	})

	// A route the control plane ignores, as its status writer marks one:
	// weft check fails, naming it and why.
	t.Run("check names an ignored route", func(t *testing.T) {
		srv.Namespace(t, "legacy")
		routes := dynamic.NewForConfigOrDie(cfg).Resource(schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}).Namespace("legacy")
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
			"metadata": map[string]any{"name": "magic"},
			"spec": map[string]any{"parentRefs": []any{map[string]any{"group": "", "kind": "Service", "name": "orders"}},
				"rules": []any{map[string]any{"backendRefs": []any{map[string]any{"name": "orders", "port": int64(80)}}}}}}}
		created, err := routes.Create(ctx, u, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created.Object["status"] = map[string]any{"parents": []any{map[string]any{
			"parentRef": map[string]any{"group": "", "kind": "Service", "name": "orders"}, "controllerName": "weft.dev/mesh",
			"conditions": []any{map[string]any{"type": "Accepted", "status": "False", "reason": "UnsupportedValue", "lastTransitionTime": "2026-01-01T00:00:00Z",
				"message": "ignored by weft: spec.rules[0].filters[0]: unsupported extension filter"}}}}}
		if _, err := routes.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		r := results(t, ctx, cfg)["weft objects ignored as invalid"]
		if r.OK || !strings.Contains(r.Detail, "HTTPRoute legacy/magic: ignored by weft: spec.rules[0].filters[0]") {
			t.Errorf("check = %+v, want a failure naming HTTPRoute legacy/magic and why", r)
		}
		if err := routes.Delete(ctx, "magic", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if r := results(t, ctx, cfg)["weft objects ignored as invalid"]; !r.OK {
			t.Errorf("after the delete: %+v", r)
		}
	})

	t.Run("service account permissions", func(t *testing.T) {
		srv.Namespace(t, "shop")
		imp := rest.CopyConfig(cfg)
		imp.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + install.DefaultNamespace + ":" + install.Control}
		sa := kubernetes.NewForConfigOrDie(imp)
		tests := []struct {
			attr authorizationv1.ResourceAttributes
			want bool
		}{
			{authorizationv1.ResourceAttributes{Group: "gateway.networking.k8s.io", Resource: "httproutes", Verb: "list"}, true},
			{authorizationv1.ResourceAttributes{Group: "gateway.networking.k8s.io", Resource: "httproutes", Verb: "watch", Namespace: "shop"}, true},
			{authorizationv1.ResourceAttributes{Group: "gateway.networking.k8s.io", Resource: "httproutes", Subresource: "status", Verb: "update", Namespace: "shop"}, true},
			{authorizationv1.ResourceAttributes{Group: "weft.dev", Resource: "destinationpolicies", Verb: "create", Namespace: "shop"}, true},
			{authorizationv1.ResourceAttributes{Group: "discovery.k8s.io", Resource: "endpointslices", Verb: "watch"}, true},
			{authorizationv1.ResourceAttributes{Group: "authentication.k8s.io", Resource: "tokenreviews", Verb: "create"}, true},
			{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "get", Namespace: install.DefaultNamespace}, true},
			{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "create", Namespace: install.DefaultNamespace}, true},
			{authorizationv1.ResourceAttributes{Group: "coordination.k8s.io", Resource: "leases", Verb: "update", Namespace: install.DefaultNamespace}, true},
			{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "get", Namespace: "shop"}, false},
			{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "create", Namespace: "shop"}, false},
			{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "delete", Namespace: "shop"}, false},
			{authorizationv1.ResourceAttributes{Group: "coordination.k8s.io", Resource: "leases", Verb: "update", Namespace: "shop"}, false},
			{authorizationv1.ResourceAttributes{Resource: "services", Verb: "delete", Namespace: "shop"}, false},
			{authorizationv1.ResourceAttributes{Resource: "pods", Verb: "create", Namespace: "shop"}, false},
			{authorizationv1.ResourceAttributes{Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations", Verb: "update"}, false},
		}
		for _, tt := range tests {
			a := tt.attr
			name := fmt.Sprintf("%s %s.%s/%s in %q", a.Verb, a.Resource, a.Group, a.Subresource, a.Namespace)
			r, err := sa.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &a}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if r.Status.Allowed != tt.want {
				t.Errorf("%s: allowed %v, want %v (%s)", name, r.Status.Allowed, tt.want, r.Status.Reason)
			}
		}
		// Real calls as well: the seal key Secret is readable, another
		// namespace's Secret is not.
		if _, err := sa.CoreV1().Secrets(install.DefaultNamespace).Get(ctx, install.SealSecret, metav1.GetOptions{}); err != nil {
			t.Errorf("get the seal key as weft-control: %v", err)
		}
		if _, err := cs.CoreV1().Secrets("shop").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"}, StringData: map[string]string{"password": "x"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := sa.CoreV1().Secrets("shop").Get(ctx, "db", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("get a Secret in shop as weft-control: %v, want forbidden", err)
		}
		dyn := dynamic.NewForConfigOrDie(imp)
		hr := schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
		if _, err := dyn.Resource(hr).List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("list httproutes as weft-control: %v", err)
		}
		if _, err := sa.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
			Spec: authenticationv1.TokenReviewSpec{Token: "not-a-token"}}, metav1.CreateOptions{}); err != nil {
			t.Errorf("create a tokenreview as weft-control: %v", err)
		}
	})

	t.Run("control plane runs as weft-control", func(t *testing.T) {
		runControlAsServiceAccount(t, ctx, cfg, objs)
	})

	// --identity kubernetes informs on Pods, Services and
	// ServiceAccounts (kube/podscope): the installed RBAC lets it list.
	t.Run("pod membership informs as weft-control", func(t *testing.T) {
		imp := rest.CopyConfig(cfg)
		imp.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + install.DefaultNamespace + ":" + install.Control}
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if err := podscope.New(kubernetes.NewForConfigOrDie(imp), podscope.Options{SyncTimeout: 20 * time.Second}).Start(pctx); err != nil {
			t.Fatalf("podscope as weft-control: %v", err)
		}
	})
}

// runControlAsServiceAccount runs the control plane on the Kubernetes
// store as the weft-control ServiceAccount (impersonated), as `weft
// control --store kubernetes` does in its Pod: its informers sync, the
// replica takes its Leases and shares its state in Secrets, and the
// elected status writer marks an HTTPRoute Accepted — with the installed
// RBAC and nothing more.
func runControlAsServiceAccount(t *testing.T, ctx context.Context, cfg *rest.Config, objs []runtime.Object) {
	imp := rest.CopyConfig(cfg)
	imp.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + install.DefaultNamespace + ":" + install.Control}
	sealFile := filepath.Join(t.TempDir(), "seal.key")
	for _, o := range objs {
		if s, ok := o.(*corev1.Secret); ok && s.Name == install.SealSecret {
			if err := os.WriteFile(sealFile, s.Data["seal.key"], 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	ready := make(chan struct{}, 1)
	go func() {
		done <- controlplane.Run(runCtx, controlplane.Options{
			DataDir: t.TempDir(), XDSListen: "127.0.0.1:0", APIListen: "127.0.0.1:0", SealKeyFile: sealFile, Logger: log,
			TrustDomain: "cluster.local",
			OpenStore: func(ctx context.Context) (store.Store, error) {
				return kubestore.Open(ctx, rest.CopyConfig(imp), kubestore.Options{SystemNamespace: install.DefaultNamespace, Logger: log})
			},
			WriteStatus: func(ctx context.Context, d controlplane.StatusDeps) error {
				ks := d.Store.(*kubestore.Store)
				kube := kubernetes.NewForConfigOrDie(rest.CopyConfig(imp))
				publish := func(ctx context.Context) {
					_ = trustbundle.Publish(ctx, kube, d.Bundle, trustbundle.Options{Interval: time.Second, Logger: log})
				}
				w, err := kubestatus.New(kubestatus.Options{Config: rest.CopyConfig(imp), Namespace: ks.SystemNamespace(),
					Identity: ks.ReplicaID(), Store: d.Store, Fill: d.Fill, Logger: log, WhileLeading: publish})
				if err != nil {
					return err
				}
				return w.Run(ctx)
			},
			Ready: func(connfile.Connection) { ready <- struct{}{} },
		})
	}()
	defer func() {
		stop()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) && !t.Failed() {
				t.Errorf("control plane: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("control plane did not stop within 20s")
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		done <- err
		t.Fatalf("control plane as weft-control: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("control plane as weft-control not ready within 60s")
	}

	cs := kubernetes.NewForConfigOrDie(cfg)
	ns := "web"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"backend", "backend-v1"} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "backend"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
		if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	hr := schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
	route := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "backend", "namespace": ns},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"group": "", "kind": "Service", "name": "backend"}},
			"rules":      []any{map[string]any{"backendRefs": []any{map[string]any{"name": "backend-v1", "port": int64(80)}}}},
		},
	}}
	dyn := dynamic.NewForConfigOrDie(cfg)
	if _, err := dyn.Resource(hr).Namespace(ns).Create(ctx, route, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		u, err := dyn.Resource(hr).Namespace(ns).Get(ctx, "backend", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		parents, _, _ := unstructured.NestedSlice(u.Object, "status", "parents")
		if accepted(parents) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("HTTPRoute status not Accepted within 30s: %v", u.Object["status"])
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := cs.CoordinationV1().Leases(install.DefaultNamespace).Get(ctx, "weft-status-writer", metav1.GetOptions{}); err != nil {
		t.Errorf("the status writer's Lease: %v", err)
	}
	// The trust bundle reaches the new namespace with the installed RBAC.
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "weft-ca-root", metav1.GetOptions{})
		if err == nil && strings.Contains(cm.Data[trustbundle.Key], "BEGIN CERTIFICATE") {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("trust bundle ConfigMap in %s not published within 10s: %v", ns, err)
		}
	}
}

// accepted reports whether a route's status.parents has Accepted=True.
func accepted(parents []any) bool {
	for _, p := range parents {
		conds, _, _ := unstructured.NestedSlice(p.(map[string]any), "conditions")
		for _, c := range conds {
			if m := c.(map[string]any); m["type"] == "Accepted" && m["status"] == "True" {
				return true
			}
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }
