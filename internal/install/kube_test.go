package install_test

import (
	"context"
	"fmt"
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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"weft.dev/weft/internal/cli"
	"weft.dev/weft/internal/control/kube/crd"
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
	if len(out) != 7 {
		t.Fatalf("%d checks, want 7: %+v", len(out), rs)
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
}
