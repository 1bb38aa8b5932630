package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"weft.dev/weft/internal/connfile"
	"weft.dev/weft/internal/control/kube/crd"
	"weft.dev/weft/internal/testkube"
	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestKubernetesIdentity: `weft control --store kubernetes --identity
// kubernetes` against a real API server. A sidecar with the projected
// token of ns1/a gets spiffe://cluster.local/ns/ns1/sa/a; the same token
// cannot get sa/b, and wrong-audience and join tokens get nothing.
func TestKubernetesIdentity(t *testing.T) {
	s := testkube.StartAPIServer(t)
	cs := s.Clientset()
	ctx := context.Background()
	if err := crd.InstallAll(ctx, s.RESTConfig()); err != nil {
		t.Fatal(err)
	}
	s.Namespace(t, "weft-system")
	s.Namespace(t, "ns1")
	s.ServiceAccount(t, "ns1", "a")
	s.ServiceAccount(t, "ns1", "b")
	// The pods the sidecars below stand for (no kubelet runs them): a
	// sidecar may join only the service of a live pod of its account.
	for _, p := range []struct{ name, sa, app string }{{"web-1", "a", "web"}, {"backend-1", "b", "backend"}} {
		s.Pod(t, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: "ns1", Labels: map[string]string{"app": p.app}},
			Spec:       corev1.PodSpec{ServiceAccountName: p.sa},
		})
	}
	mint := func(sa, aud string) string {
		t.Helper()
		tr, err := cs.CoreV1().ServiceAccounts("ns1").CreateToken(ctx, sa, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{Audiences: []string{aud}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("token request ns1/%s: %v", sa, err)
		}
		return tr.Status.Token
	}

	c := &control{t: t, dataDir: filepath.Join(t.TempDir(), "data"), xds: freePort(t), api: freePort(t)}
	c.proc = startProc(t, "control", nil, weftBin, "control", "--data-dir", c.dataDir, "--listen", addr(c.xds), "--api-listen", addr(c.api),
		"--store", "kubernetes", "--kubeconfig", s.Kubeconfig(), "--system-namespace", "weft-system", "--identity", "kubernetes",
		"--seal-key-file", filepath.Join(t.TempDir(), "seal.key"))
	eventually(t, 30*time.Second, 100*time.Millisecond, "control plane ready", func() error {
		if c.proc.exited() {
			return stopErr{fmt.Errorf("control plane exited: %v", c.proc.err)}
		}
		b, err := os.ReadFile(filepath.Join(c.dataDir, "control.json"))
		if err != nil {
			return err
		}
		var conn struct{ PID int }
		if err := json.Unmarshal(b, &conn); err != nil || conn.PID != c.proc.pid() {
			return fmt.Errorf("control.json: pid %d, %v", conn.PID, err)
		}
		_, err = os.Stat(filepath.Join(c.dataDir, "ca.pem"))
		return err
	})
	if _, err := os.Stat(filepath.Join(c.dataDir, "join-token")); err == nil {
		t.Error("--identity kubernetes wrote a default join token")
	}

	// The sidecar of a pod of ns1/a: its projected token in a file.
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(mint("a", "weft")), 0o600); err != nil {
		t.Fatal(err)
	}
	w := startWorkload(t, c, wlOpts{service: "web", namespace: "ns1", cmd: []string{"sleep", "3600"},
		env:   []string{"WEFT_JOIN_TOKEN="},
		flags: []string{"--service-account", "a", "--sa-token-file", tokFile}})
	const idA = "spiffe://" + trustDomain + "/ns/ns1/sa/a"
	eventually(t, 10*time.Second, 200*time.Millisecond, "proxy listed with its identity", func() error {
		r := c.cli("proxy-status")
		if r.code != 0 || !strings.Contains(r.stdout, idA) {
			return fmt.Errorf("proxy-status:\n%s", r)
		}
		return nil
	})

	// Real traffic between two service-account identities: a backend of
	// ns1/b answers the sidecar of ns1/a over mTLS and sees a's identity.
	tokB := filepath.Join(t.TempDir(), "token-b")
	if err := os.WriteFile(tokB, []byte(mint("b", "weft")), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	startWorkload(t, c, wlOpts{service: "backend", version: "v1", namespace: "ns1", appPort: port, cmd: backendCmd(port, "v1"), waitApp: true,
		env:   []string{"WEFT_JOIN_TOKEN="},
		flags: []string{"--service-account", "b", "--sa-token-file", tokB}})
	eventually(t, 15*time.Second, 100*time.Millisecond, "a calls b's backend over mTLS", func() error {
		br, err := w.getBackend("http://backend/")
		if err != nil {
			return err
		}
		if br.Caller != idA {
			return stopErr{fmt.Errorf("backend saw caller %q, want %q", br.Caller, idA)}
		}
		return nil
	})

	// a's token cannot join b's service: its pods are not of it. The
	// sidecar keeps retrying; the control plane refuses it each time.
	squat := startProc(t, "squatter", []string{"WEFT_JOIN_TOKEN="}, weftBin, "run", "--data-dir", c.dataDir, "--service", "backend", "--namespace", "ns1",
		"--service-account", "a", "--sa-token-file", tokFile, "--inbound-port", "0", "--outbound-port", "0", "--admin-port", "0", "--", "sleep", "3600")
	eventually(t, 15*time.Second, 100*time.Millisecond, "a's sidecar refused as a backend", func() error {
		if _, stderr := c.proc.output(); !strings.Contains(stderr, `service \"backend\": no live pod of service account ns1/a is of service \"backend\"`) &&
			!strings.Contains(stderr, `service "backend": no live pod of service account ns1/a is of service "backend"`) {
			return fmt.Errorf("control plane log does not show the refusal yet")
		}
		return nil
	})
	squat.stop(5 * time.Second)
	for range 5 {
		br, err := w.getBackend("http://backend/")
		if err != nil {
			t.Fatalf("a -> backend while a's squatter ran: %v", err)
		}
		if br.Caller != idA {
			t.Fatalf("a -> backend answered with caller %q", br.Caller)
		}
	}

	// b's pod goes: its sidecar leaves the mesh at the next revalidation.
	s.DeletePod(t, "ns1", "backend-1")
	const idB = "spiffe://" + trustDomain + "/ns/ns1/sa/b"
	left := eventually(t, 15*time.Second, 100*time.Millisecond, "b's sidecar ends when its pod is deleted", func() error {
		r := c.cli("proxy-status")
		if r.code != 0 {
			return fmt.Errorf("proxy-status:\n%s", r)
		}
		if strings.Contains(r.stdout, idB) {
			return fmt.Errorf("b still listed:\n%s", r.stdout)
		}
		return nil
	})
	t.Logf("b's proxy left the mesh %v after its pod was deleted", left.Round(time.Millisecond))

	// A sidecar whose token is for another audience exits, saying why.
	badFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(badFile, []byte(mint("a", "kubernetes")), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := startProc(t, "bad-audience", []string{"WEFT_JOIN_TOKEN="}, weftBin, "run", "--data-dir", c.dataDir, "--service", "web", "--namespace", "ns1",
		"--service-account", "a", "--sa-token-file", badFile, "--inbound-port", "0", "--outbound-port", "0", "--admin-port", "0", "--", "sleep", "3600")
	if code, err := bad.wait(20 * time.Second); err != nil || code == 0 {
		t.Errorf("sidecar with a wrong-audience token: exit %d, %v; want a non-zero exit", code, err)
	}
	if _, stderr := bad.output(); !strings.Contains(stderr, "refused") || !strings.Contains(stderr, "service account token") {
		t.Errorf("sidecar with a wrong-audience token: stderr does not say the token was refused:\n%s", stderr)
	}

	// The CA directly: a's token forging sa/b, and other credentials.
	bundle, err := connfile.ReadBundle(c.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	for _, b := range bundle {
		roots.AddCert(b)
	}
	conn, err := grpc.NewClient(addr(c.xds), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "weft-control", MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	caClient := weftv1.NewCertificateAuthorityClient(conn)
	sign := func(bearer, id string) (*weftv1.SignResponse, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(id)
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{u}}, key)
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+bearer), 10*time.Second)
		defer cancel()
		return caClient.Sign(cctx, &weftv1.SignRequest{CsrDer: csr})
	}
	joinTok := c.cli("token", "create", "--namespace", "ns1")
	if joinTok.code != 0 {
		t.Fatalf("weft token create:\n%s", joinTok)
	}
	tokA := mint("a", "weft")
	tests := []struct {
		name   string
		bearer string
		id     string
		code   codes.Code
	}{
		{"a's token for sa/a", tokA, idA, codes.OK},
		{"a's token forging sa/b", tokA, "spiffe://" + trustDomain + "/ns/ns1/sa/b", codes.PermissionDenied},
		{"wrong audience", mint("a", "kubernetes"), idA, codes.Unauthenticated},
		{"join token", strings.TrimSpace(joinTok.stdout), idA, codes.Unauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := sign(tc.bearer, tc.id)
			if status.Code(err) != tc.code {
				t.Fatalf("Sign(%s) = %v, want %v", tc.id, err, tc.code)
			}
			if tc.code == codes.OK && resp.GetSpiffeId() != tc.id {
				t.Errorf("issued %s, want %s", resp.GetSpiffeId(), tc.id)
			}
		})
	}
}
