package e2e

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"

	"weft.dev/weft/internal/api"
	"weft.dev/weft/internal/control/kube/crd"
	"weft.dev/weft/internal/control/kube/validation"
	"weft.dev/weft/internal/testkube"
	"weft.dev/weft/internal/testpki"
)

// TestKubernetesStore: weft control --store kubernetes on a real API
// server. Services and an HTTPRoute created through the Kubernetes API
// (as kubectl does, not weft apply) reach a running proxy within 1 s, the
// elected status writer reports the route Accepted, and the control
// plane's validating webhook (--admission-listen) refuses the weft.dev
// objects `weft apply` would refuse before the cluster stores them.
func TestKubernetesStore(t *testing.T) {
	srv := testkube.StartAPIServer(t)
	ctx := context.Background()
	if err := crd.InstallAll(ctx, srv.RESTConfig()); err != nil {
		t.Fatal(err)
	}
	srv.Namespace(t, "weft-system")
	dyn, err := dynamic.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}

	hookCA, err := testpki.New("weft e2e webhook CA")
	if err != nil {
		t.Fatal(err)
	}
	hookCert, hookKey, err := hookCA.Issue(2, &x509.Certificate{Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, hookCert, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, hookKey, 0o600); err != nil {
		t.Fatal(err)
	}
	hookAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c := startControl(t, "--store", "kubernetes", "--kubeconfig", srv.Kubeconfig(), "--system-namespace", "weft-system",
		"--seal-key-file", filepath.Join(t.TempDir(), "seal.key"),
		"--admission-listen", hookAddr, "--admission-tls-cert", certFile, "--admission-tls-key", keyFile)
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

	// The validating webhook, registered as `weft install` registers it
	// (but by URL: there is no Service without a cluster network).
	if _, err := srv.Clientset().AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx,
		validation.WebhookConfiguration("weft-validate", "https://"+hookAddr+validation.Path, hookCA.PEM), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	policies := dyn.Resource(schema.GroupVersionResource{Group: api.GroupWeft, Version: "v1alpha1", Resource: "destinationpolicies"}).Namespace("default")
	typo := &unstructured.Unstructured{Object: map[string]any{"apiVersion": api.WeftV1Alpha1, "kind": api.KindDestinationPolicy,
		"metadata": map[string]any{"name": "typo"},
		"spec":     map[string]any{"targetRef": map[string]any{"kind": "Service", "name": "backend"}, "retry": map[string]any{"perTryTimeout": "soon"}}}}
	eventually(t, 10*time.Second, 100*time.Millisecond, "an invalid DestinationPolicy refused by the control plane's webhook", func() error {
		_, err := policies.Create(ctx, typo, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil || !strings.Contains(err.Error(), `admission webhook "`+validation.WebhookName+`" denied the request`) ||
			!strings.Contains(err.Error(), "spec.retry.perTryTimeout") {
			return fmt.Errorf("create: %v", err)
		}
		return nil
	})
	meshConfigs := dyn.Resource(schema.GroupVersionResource{Group: api.GroupWeft, Version: "v1alpha1", Resource: "meshconfigs"})
	_, err = meshConfigs.Create(ctx, &unstructured.Unstructured{Object: map[string]any{"apiVersion": api.WeftV1Alpha1, "kind": api.KindMeshConfig,
		"metadata": map[string]any{"name": "default"}, "spec": map[string]any{"trustDomain": "prod.example.com"}}}, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "spec.trustDomain") {
		t.Errorf("a MeshConfig on another trust domain than the CA's: %v, want refused naming spec.trustDomain", err)
	}
	good := typo.DeepCopy()
	good.SetName("backend")
	if err := unstructured.SetNestedField(good.Object, "250ms", "spec", "retry", "perTryTimeout"); err != nil {
		t.Fatal(err)
	}
	if _, err := policies.Create(ctx, good, metav1.CreateOptions{}); err != nil {
		t.Errorf("a valid DestinationPolicy was refused: %v", err)
	}
	// weft apply through the control plane passes the webhook too: its
	// writes to the API server are checked again there.
	c.apply("apiVersion: weft.dev/v1alpha1\nkind: DestinationPolicy\nmetadata: {name: via-weft, namespace: default}\nspec: {targetRef: {kind: Service, name: backend}, retry: {perTryTimeout: 500ms}}\n")
	if _, err := policies.Get(ctx, "via-weft", metav1.GetOptions{}); err != nil {
		t.Errorf("the policy weft apply wrote is not in the cluster: %v", err)
	}
}

// TestKubernetesPodsWithoutSidecar: a Service whose pods have no sidecar
// (listed only by its EndpointSlice) is reached through the mesh in
// plaintext, carrying no identity; once one of its pods has a sidecar,
// every call goes to the meshed pod over mutual TLS, none in plaintext.
func TestKubernetesPodsWithoutSidecar(t *testing.T) {
	srv := testkube.StartAPIServer(t)
	ctx := context.Background()
	if err := crd.InstallAll(ctx, srv.RESTConfig()); err != nil {
		t.Fatal(err)
	}
	srv.Namespace(t, "weft-system")
	c := startControl(t, "--store", "kubernetes", "--kubeconfig", srv.Kubeconfig(), "--system-namespace", "weft-system",
		"--seal-key-file", filepath.Join(t.TempDir(), "seal.key"))
	// The API server refuses loopback IPs in an EndpointSlice, and the test
	// runs on loopback only: the slice names the pod by a DNS name (address
	// type FQDN) that only the client's sidecar resolves, to 127.0.0.1,
	// through its own /etc/hosts. That takes the same path through the
	// store, xDS and the proxy as a pod IP would.
	const podName = "legacy-0.pods.weft.test"
	client := startWorkload(t, c, wlOpts{service: "client", cmd: []string{"sleep", "3600"}, wrap: privateHosts(t, "127.0.0.1 "+podName)})

	// The legacy app without a sidecar, and what Kubernetes would list for
	// it: its Service and an EndpointSlice (no controller-manager runs
	// here to write one).
	plainPort := freePort(t)
	startProc(t, "legacy-plain", nil, weftBin, "demo-app", "backend", "--listen", addr(plainPort), "--version", "plain")
	cs := srv.Clientset()
	if _, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "legacy"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(int32(plainPort))}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ready := true
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "legacy-x1", Labels: map[string]string{discoveryv1.LabelServiceName: "legacy"}},
		AddressType: discoveryv1.AddressTypeFQDN,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{podName}, Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "legacy-0"}}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(plainPort))}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	eventually(t, 10*time.Second, 50*time.Millisecond, "the pod without a sidecar reached through the mesh", func() error {
		br, err := client.getBackend("http://legacy/")
		if err != nil {
			return err
		}
		if br.Version != "plain" || br.Caller != "" {
			return fmt.Errorf("reached version %q with caller %q, want the plain pod and no caller identity", br.Version, br.Caller)
		}
		return nil
	})
	t.Logf("pod without a sidecar reachable %v after its EndpointSlice was created", time.Since(created).Round(time.Millisecond))

	// A pod of the Service gets a sidecar: only it serves the Service now.
	meshedPort := freePort(t)
	startWorkload(t, c, wlOpts{service: "legacy", version: "meshed", appPort: meshedPort, waitApp: true,
		cmd: []string{weftBin, "demo-app", "backend", "--listen", addr(meshedPort), "--version", "meshed"}})
	eventually(t, 10*time.Second, 50*time.Millisecond, "only the meshed pod serves the Service", func() error {
		for i := range 10 {
			br, err := client.getBackend("http://legacy/")
			if err != nil {
				return err
			}
			if br.Version != "meshed" || br.Caller != client.spiffeID() {
				return fmt.Errorf("request %d reached version %q with caller %q, want the meshed pod seeing %s", i, br.Version, br.Caller, client.spiffeID())
			}
		}
		return nil
	})
}

func ptr[T any](v T) *T { return &v }

// privateHosts returns the wrap (wlOpts.wrap) that runs a process in a
// mount namespace of its own where /etc/hosts is a copy with lines added:
// names only that process resolves, nothing changed on the machine. It
// needs root, as the network-namespace tests do (WEFT_REQUIRE_NETNS=1
// fails instead of skipping).
func privateHosts(t *testing.T, lines ...string) []string {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not root"
	} else if _, err := exec.LookPath("unshare"); err != nil {
		why = "unshare not installed"
	}
	if why != "" {
		if os.Getenv("WEFT_REQUIRE_NETNS") == "1" {
			t.Fatalf("a private /etc/hosts needs a mount namespace (%s) and WEFT_REQUIRE_NETNS=1", why)
		}
		t.Skipf("skipping: a private /etc/hosts needs a mount namespace (%s)", why)
	}
	orig, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(f, append(orig, []byte("\n"+strings.Join(lines, "\n")+"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"unshare", "--mount", "--propagation", "private", "sh", "-c", `mount --bind "$0" /etc/hosts && exec "$@"`, f}
}
