package install

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weft.dev/weft/internal/testkube"
)

// TestHelmInstallOnAPIServer installs the chart with helm on a real API
// server, checks it, upgrades it (the seal key and the webhook
// certificate survive) and uninstalls it.
func TestHelmInstallOnAPIServer(t *testing.T) {
	helm := helmBinary(t)
	srv := testkube.StartAPIServer(t)
	cfg, cs := srv.RESTConfig(), srv.Clientset()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, helm, append(args, "--kubeconfig", srv.Kubeconfig())...)
		cmd.Env = append(cmd.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("install", "weft", chartDir)

	rs, err := Check(ctx, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if wantOK := !strings.Contains(r.Name, "Deployment available"); r.OK != wantOK {
			t.Errorf("after helm install: %s: ok %v (%s), want %v", r.Name, r.OK, r.Detail, wantOK)
		}
	}

	secrets := cs.CoreV1().Secrets(DefaultNamespace)
	get := func(name, key string) []byte {
		t.Helper()
		s, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s.Data[key]
	}
	seal, cert := get(SealSecret, "seal.key"), get(WebhookTLSSecret, "tls.crt")
	checkSealKey(t, seal)
	wc, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, Inject, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(wc.Webhooks[0].ClientConfig.CABundle, get(WebhookTLSSecret, "ca.crt")) {
		t.Error("the webhook configuration does not trust the Secret's CA")
	}

	run("upgrade", "weft", chartDir, "--set", "replicas=3")
	if !bytes.Equal(get(SealSecret, "seal.key"), seal) {
		t.Error("helm upgrade replaced the seal key")
	}
	if !bytes.Equal(get(WebhookTLSSecret, "tls.crt"), cert) {
		t.Error("helm upgrade replaced the webhook certificate")
	}
	d, err := cs.AppsV1().Deployments(DefaultNamespace).Get(ctx, Control, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 3 {
		t.Errorf("after upgrade --set replicas=3: %d replicas", *d.Spec.Replicas)
	}

	run("uninstall", "weft")
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, Inject, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after uninstall, the webhook configuration: %v", err)
	}
	if _, err := cs.RbacV1().ClusterRoles().Get(ctx, Control, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after uninstall, the ClusterRole: %v", err)
	}
}
