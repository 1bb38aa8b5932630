package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"weft.dev/weft/internal/control/kube/inject"
	"weft.dev/weft/internal/testkube"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "weft-inject"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"weft-inject.weft-system.svc"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// runWeft runs the command tree with args, returning stdout and the error.
func runWeftCmd(ctx context.Context, args ...string) (string, error) {
	root := newRootCmd()
	root.SetArgs(args)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// TestInjectWebhookCommand runs `weft inject-webhook` as a user would,
// registers the configuration it prints with a real API server and checks
// a Pod the API server stores.
func TestInjectWebhookCommand(t *testing.T) {
	api := testkube.StartAPIServer(t)
	cs := api.Clientset()
	ctx := context.Background()
	certFile, keyFile := selfSigned(t, t.TempDir())
	addr := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	common := []string{"inject-webhook", "--image", "weft:cli", "--xds", "weft.weft-system.svc:15012", "--tls-cert", certFile, "--proxy-memory-limit", "300Mi"}

	printed, err := runWeftCmd(ctx, append(common, "--print-config", "yaml", "--webhook-url", "https://"+addr+"/inject")...)
	if err != nil {
		t.Fatalf("--print-config: %v", err)
	}
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := yaml.UnmarshalStrict([]byte(printed), &mwc); err != nil {
		t.Fatalf("printed configuration: %v\n%s", err, printed)
	}

	srvCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := runWeftCmd(srvCtx, append(common, "--listen", addr, "--tls-key", keyFile, "--kubeconfig", api.Kubeconfig())...)
		done <- err
	}()
	defer func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("inject-webhook: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("inject-webhook did not stop within 15s of its context")
		}
	}()
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(certFile)
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	get := func(path string) (string, error) {
		resp, err := client.Get("https://" + addr + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
		return string(b), err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := get("/ready"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the webhook does not serve: %v", err)
		}
		select {
		case err := <-done:
			t.Fatalf("inject-webhook exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}

	api.Namespace(t, "mesh")
	ns, err := cs.CoreV1().Namespaces().Get(ctx, "mesh", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Labels[inject.LabelInject] = inject.Enabled
	if _, err := cs.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &mwc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the printed configuration: %v", err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orders", Labels: map[string]string{"app": "orders"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "orders:1"}}},
	}
	var stored *corev1.Pod
	for deadline := time.Now().Add(30 * time.Second); ; {
		// Dry runs until the API server has the configuration.
		stored, err = cs.CoreV1().Pods("mesh").Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && len(stored.Spec.InitContainers) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pod was not injected within 30s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if stored, err = cs.CoreV1().Pods("mesh").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := stored.Spec.InitContainers[0]
	if p.Name != inject.ProxyContainer || p.Image != "weft:cli" || p.Resources.Limits.Memory().String() != "300Mi" {
		t.Errorf("stored sidecar %s %s memory limit %s, want %s weft:cli 300Mi", p.Name, p.Image, p.Resources.Limits.Memory(), inject.ProxyContainer)
	}
	metrics, err := get("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(metrics, `weft_inject_admissions_total{result="injected"}`) {
		t.Errorf("metrics lack the injected counter:\n%s", metrics)
	}
}

func TestInjectWebhookFlags(t *testing.T) {
	dir := t.TempDir()
	certFile, _ := selfSigned(t, dir)
	base := []string{"inject-webhook", "--image", "weft:1", "--xds", "cp:15012"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no image", []string{"inject-webhook", "--xds", "cp:15012"}, "image is required"},
		{"no xds", []string{"inject-webhook", "--image", "weft:1"}, "control: at least one xDS address"},
		{"bad mode", append(base, "--mode", "magic"), `mode: "magic" is not explicit or transparent`},
		{"bad quantity", append(base, "--proxy-memory-limit", "lots"), `--proxy-memory-limit: "lots"`},
		{"request over limit", append(base, "--proxy-cpu-request", "2"), "request cpu 2 exceeds limit 1"},
		{"bad pull policy", append(base, "--image-pull-policy", "Sometimes"), `--image-pull-policy: "Sometimes"`},
		{"no tls", base, "--tls-cert and --tls-key are required"},
		{"print json", append(base, "--print-config", "json"), `--print-config: "json": only yaml`},
		{"print http url", append(base, "--print-config", "yaml", "--webhook-url", "http://x/inject", "--tls-cert", certFile), "over https only"},
		{"print without ca", append(base, "--print-config", "yaml", "--webhook-url", "https://x/inject"), "needs --ca-bundle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runWeftCmd(context.Background(), tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one with %q", err, tc.want)
			}
		})
	}
}
