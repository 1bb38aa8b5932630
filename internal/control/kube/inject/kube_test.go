package inject

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"weft.dev/weft/internal/appprobe"
	"weft.dev/weft/internal/testkube"
)

// TestWebhookWithAPIServer registers the webhook with a real kube-apiserver
// and checks the Pods the API server stores.
func TestWebhookWithAPIServer(t *testing.T) {
	api := testkube.StartAPIServer(t)
	cs := api.Clientset()
	ctx := context.Background()

	h, err := NewHandler(HandlerOptions{
		Config: Config{Image: "weft:test", Control: []string{"weft.weft-system.svc:15012"}, Version: "v-test"},
		Namespace: func(ctx context.Context, name string) (*corev1.Namespace, error) {
			return cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/inject", h)
	srv := httptest.NewTLSServer(mux) // a certificate for 127.0.0.1
	t.Cleanup(srv.Close)
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	labelNS := func(name, v string) {
		api.Namespace(t, name)
		if v == "" {
			return
		}
		ns, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ns.Labels[LabelInject] = v
		if _, err := cs.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	labelNS("mesh", Enabled)
	labelNS("optout", Disabled)
	labelNS("plain", "")
	labelNS("strict", Enabled)
	strict, err := cs.CoreV1().Namespaces().Get(ctx, "strict", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	strict.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	if _, err := cs.CoreV1().Namespaces().Update(ctx, strict, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	api.ServiceAccount(t, "kube-system", "default")

	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx,
		WebhookConfiguration("weft-inject", srv.URL+"/inject", caBundle), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the webhook configuration: %v", err)
	}

	pod := func(name string, mutate func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "orders"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app", Image: "orders:1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/healthz", Port: intstr.FromString("http"),
				}}},
			}}},
		}
		if mutate != nil {
			mutate(p)
		}
		return p
	}
	waitForWebhook(t, cs, pod("probe", nil))

	t.Run("refused with the cause", func(t *testing.T) {
		_, err := cs.CoreV1().Pods("mesh").Create(ctx, pod("typo", func(p *corev1.Pod) { p.Labels[LabelInject] = "on" }), metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), `weft sidecar injection: pod weft.dev/inject: "on" is not`) {
			t.Fatalf("err = %v, want the webhook's refusal", err)
		}
	})

	// The transparent mode's pod, with weft-init, is one the API server
	// accepts (its validation of capabilities, probes and native sidecars).
	t.Run("transparent pod is valid", func(t *testing.T) {
		cfg := Config{Image: "weft:test", Control: []string{"cp:15012"}, Mode: ModeTransparent}.Defaults()
		p, _, err := Inject(pod("transparent", nil), namespace("plain", Enabled), cfg)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := cs.CoreV1().Pods("plain").Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			t.Fatalf("the API server refuses the transparent pod: %v", err)
		}
		if n := len(stored.Spec.InitContainers); n != 2 || stored.Spec.InitContainers[0].Name != InitContainer {
			t.Errorf("stored init containers %d, want weft-init first", n)
		}
	})

	// A pod meeting Pod Security "restricted" still does once injected
	// (PodSecurity admission runs after the mutating webhooks).
	t.Run("restricted pod stays restricted", func(t *testing.T) {
		if _, err := cs.CoreV1().Pods("strict").Create(ctx, pod("lax", nil), metav1.CreateOptions{}); err == nil {
			t.Fatal("a pod that is not restricted was admitted: PodSecurity is not enforcing, the check below proves nothing")
		}
		// Every setting on the app container, none on the pod: the
		// proxy must carry its own.
		yes, no := true, false
		stored, err := cs.CoreV1().Pods("strict").Create(ctx, pod("restricted", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{
				RunAsNonRoot: &yes, AllowPrivilegeEscalation: &no,
				Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			}
		}), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("the injected restricted pod was refused: %v", err)
		}
		if len(stored.Spec.InitContainers) != 1 {
			t.Errorf("restricted pod not injected: %v", stored.Spec.InitContainers)
		}
	})

	tests := []struct {
		name   string
		ns     string
		pod    *corev1.Pod
		inject bool
	}{
		{name: "injected namespace", ns: "mesh", pod: pod("orders", nil), inject: true},
		{name: "opted-out namespace", ns: "optout", pod: pod("orders", nil)},
		{name: "unlabelled namespace", ns: "plain", pod: pod("orders", nil)},
		{name: "annotation opt-out in injected namespace", ns: "mesh", pod: pod("annotated", func(p *corev1.Pod) {
			p.Annotations = map[string]string{LabelInject: Disabled}
		})},
		{name: "label opt-out in injected namespace", ns: "mesh", pod: pod("labelled", func(p *corev1.Pod) {
			p.Labels[LabelInject] = Disabled
		})},
		{name: "pod label in opted-out namespace", ns: "optout", pod: pod("enabled", func(p *corev1.Pod) {
			p.Labels[LabelInject] = Enabled
		}), inject: true},
		{name: "kube-system", ns: "kube-system", pod: pod("sys", func(p *corev1.Pod) {
			p.Labels[LabelInject] = Enabled
		})},
		{name: "a Job's pod", ns: "mesh", pod: pod("job-x7k2p", func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			p.Labels["batch.kubernetes.io/job-name"] = "job"
		}), inject: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored, err := cs.CoreV1().Pods(tt.ns).Create(ctx, tt.pod, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("creating the pod: %v", err)
			}
			if !tt.inject {
				if len(stored.Spec.InitContainers) != 0 || stored.Annotations[AnnotationInjected] != "" {
					t.Fatalf("pod was injected: init containers %v, annotations %v", stored.Spec.InitContainers, stored.Annotations)
				}
				if g := stored.Spec.Containers[0].ReadinessProbe.HTTPGet; g.Path != "/healthz" {
					t.Errorf("probe rewritten to %s on an uninjected pod", g.Path)
				}
				return
			}
			if len(stored.Spec.InitContainers) != 1 {
				t.Fatalf("init containers %v, want weft-proxy", stored.Spec.InitContainers)
			}
			p := stored.Spec.InitContainers[0]
			if p.Name != ProxyContainer || p.RestartPolicy == nil || *p.RestartPolicy != corev1.ContainerRestartPolicyAlways {
				t.Fatalf("init container %s restartPolicy %v, want %s Always", p.Name, p.RestartPolicy, ProxyContainer)
			}
			if p.StartupProbe == nil || p.StartupProbe.HTTPGet == nil || p.StartupProbe.HTTPGet.Path != "/ready" {
				t.Errorf("startup probe %+v, want /ready", p.StartupProbe)
			}
			if stored.Annotations[AnnotationInjected] != "v-test" {
				t.Errorf("annotations %v lack %s=v-test", stored.Annotations, AnnotationInjected)
			}
			g := stored.Spec.Containers[0].ReadinessProbe.HTTPGet
			if g.Path != "/app-health/app/readiness" || g.Port.IntValue() != 15021 {
				t.Errorf("readiness probe %s port %s, want /app-health/app/readiness on 15021", g.Path, g.Port.String())
			}
			probes, err := appprobe.Parse(stored.Annotations[AnnotationAppProbes])
			if err != nil {
				t.Fatal(err)
			}
			if got := probes["app/readiness"]; got.Port != 8080 || got.Path != "/healthz" {
				t.Errorf("recorded readiness probe %+v, want port 8080 /healthz (named port resolved)", got)
			}
			if tt.pod.Spec.RestartPolicy == corev1.RestartPolicyNever && stored.Spec.RestartPolicy != corev1.RestartPolicyNever {
				t.Errorf("pod restartPolicy %s, want Never kept", stored.Spec.RestartPolicy)
			}
			// A second admission (here: a dry-run create of the stored
			// pod) changes nothing: injection is idempotent.
			again := stored.DeepCopy()
			again.ResourceVersion, again.UID, again.Name = "", "", stored.Name+"-again"
			dry, err := cs.CoreV1().Pods(tt.ns).Create(ctx, again, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err != nil {
				t.Fatalf("dry-run create of the injected pod: %v", err)
			}
			if n := len(dry.Spec.InitContainers); n != 1 {
				t.Errorf("re-admitted pod has %d init containers, want 1", n)
			}
		})
	}
}

// waitForWebhook waits until the API server calls the webhook: until a
// dry-run create of pod in namespace mesh comes back injected.
func waitForWebhook(t *testing.T, cs kubernetes.Interface, pod *corev1.Pod) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := cs.CoreV1().Pods("mesh").Create(context.Background(), pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && got.Annotations[AnnotationInjected] != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server did not call the webhook within 30s (last: %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
