// Package testkube starts a real kube-apiserver (on a real etcd) for tests.
//
// The binaries are built from source by test/kube/build.sh and
// test/etcd/build.sh into BinDir. Tests calling StartAPIServer skip when they
// are missing, unless WEFT_REQUIRE_KUBE=1 (CI), in which case they fail.
//
// There is no kube-controller-manager: nothing creates a namespace's
// "default" ServiceAccount, nothing finalizes deleted namespaces, nothing
// garbage-collects. The ServiceAccount admission plugin stays enabled (as in a
// real cluster), so a Pod is only admitted once its ServiceAccount exists:
// create namespaces with APIServer.Namespace, which also creates "default".
package testkube

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"weft.dev/weft/internal/testpki"
)

// Version is the Kubernetes release the binaries are built from.
const Version = "v1.37.2"

// ServiceAccountIssuer is the issuer of the service-account tokens the API
// server mints.
const ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// BinDir is where the kube-apiserver and etcd binaries are looked up:
// $WEFT_KUBE_BIN_DIR, else $HOME/.cache/weft/kube-v1.37.2.
func BinDir() string {
	if d := os.Getenv("WEFT_KUBE_BIN_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "weft", "kube-"+Version)
	}
	return filepath.Join(home, ".cache", "weft", "kube-"+Version)
}

// Binaries returns the paths of the etcd and kube-apiserver binaries, or an
// error saying how to build them.
func Binaries() (etcd, apiserver string, err error) {
	dir := BinDir()
	etcd = filepath.Join(dir, "etcd")
	apiserver = filepath.Join(dir, "kube-apiserver")
	for _, p := range []string{etcd, apiserver} {
		if fi, statErr := os.Stat(p); statErr != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", "", fmt.Errorf("testkube: %s missing (build it with test/kube/build.sh and test/etcd/build.sh, or set WEFT_KUBE_BIN_DIR)", p)
		}
	}
	return etcd, apiserver, nil
}

// APIServer is a running kube-apiserver with its etcd, stopped at the end of
// the test that started it.
type APIServer struct {
	// URL is the API server's https base URL.
	URL string
	// EtcdURL is the client URL of its etcd.
	EtcdURL string
	// Dir holds certificates, keys, logs and the kubeconfig.
	Dir string

	cfg        *rest.Config
	kubeconfig string
	clientset  *kubernetes.Clientset
	procs      []*proc
	stopOnce   sync.Once
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// StartAPIServer starts etcd and kube-apiserver on free loopback ports and
// waits until /readyz answers ok. It skips the test when the binaries are
// missing, unless WEFT_REQUIRE_KUBE=1.
func StartAPIServer(t testing.TB) *APIServer {
	t.Helper()
	etcdBin, apiBin, err := Binaries()
	if err != nil {
		if os.Getenv("WEFT_REQUIRE_KUBE") == "1" {
			t.Fatalf("%v (WEFT_REQUIRE_KUBE=1)", err)
		}
		t.Skip(err)
	}
	s := &APIServer{Dir: t.TempDir()}
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs(t)
		}
		s.Stop()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := s.startEtcd(ctx, etcdBin); err != nil {
		t.Fatalf("testkube: %v", err)
	}
	if err := s.startAPIServer(ctx, apiBin); err != nil {
		t.Fatalf("testkube: %v", err)
	}
	return s
}

func (s *APIServer) startEtcd(ctx context.Context, bin string) error {
	ports, err := FreePorts(2)
	if err != nil {
		return err
	}
	client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	p, err := s.exec("etcd", bin,
		"--name=default",
		"--data-dir="+filepath.Join(s.Dir, "etcd"),
		"--listen-client-urls="+client,
		"--advertise-client-urls="+client,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster=default="+peer,
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	s.EtcdURL = client
	hc := &http.Client{Timeout: time.Second}
	return waitFor(ctx, p, func() error {
		resp, err := hc.Get(client + "/health")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("etcd /health: %s", resp.Status)
		}
		return nil
	})
}

func (s *APIServer) startAPIServer(ctx context.Context, bin string) error {
	pki, err := newPKI(s.Dir)
	if err != nil {
		return err
	}
	ports, err := FreePorts(1)
	if err != nil {
		return err
	}
	port := strconv.Itoa(ports[0])
	p, err := s.exec("kube-apiserver", bin,
		"--etcd-servers="+s.EtcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The kubernetes Service's endpoints may not be loopback; nothing
		// here routes to them anyway.
		"--endpoint-reconciler-type=none",
		"--secure-port="+port,
		"--cert-dir="+filepath.Join(s.Dir, "certs"),
		"--tls-cert-file="+pki.servingCert,
		"--tls-private-key-file="+pki.servingKey,
		"--client-ca-file="+pki.caCert,
		"--authorization-mode=RBAC",
		"--service-account-issuer="+ServiceAccountIssuer,
		"--service-account-key-file="+pki.saKey,
		"--service-account-signing-key-file="+pki.saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--profiling=false",
		"--v=0",
	)
	if err != nil {
		return err
	}
	s.URL = "https://127.0.0.1:" + port
	s.cfg = &rest.Config{
		Host: s.URL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   pki.caPEM,
			CertData: pki.adminCertPEM,
			KeyData:  pki.adminKeyPEM,
		},
		QPS:   200,
		Burst: 400,
	}
	s.clientset, err = kubernetes.NewForConfig(s.cfg)
	if err != nil {
		return fmt.Errorf("clientset: %w", err)
	}
	if err := waitFor(ctx, p, func() error {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		body, err := s.clientset.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		if err != nil {
			return fmt.Errorf("/readyz: %w: %s", err, body)
		}
		return nil
	}); err != nil {
		return err
	}
	s.kubeconfig = filepath.Join(s.Dir, "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["testkube"] = &clientcmdapi.Cluster{Server: s.URL, CertificateAuthorityData: pki.caPEM}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: pki.adminCertPEM, ClientKeyData: pki.adminKeyPEM}
	kc.Contexts["testkube"] = &clientcmdapi.Context{Cluster: "testkube", AuthInfo: "admin"}
	kc.CurrentContext = "testkube"
	if err := clientcmd.WriteToFile(*kc, s.kubeconfig); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// RESTConfig returns a fresh copy of the admin (system:masters) client
// configuration.
func (s *APIServer) RESTConfig() *rest.Config { return rest.CopyConfig(s.cfg) }

// Kubeconfig returns the path of a kubeconfig file for the admin user.
func (s *APIServer) Kubeconfig() string { return s.kubeconfig }

// Clientset returns an admin clientset.
func (s *APIServer) Clientset() *kubernetes.Clientset { return s.clientset }

// Namespace creates namespace name and its "default" ServiceAccount (which a
// kube-controller-manager would create), so Pods can be created in it.
func (s *APIServer) Namespace(t testing.TB, name string) *corev1.Namespace {
	t.Helper()
	ctx := context.Background()
	ns, err := s.clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("testkube: create namespace %q: %v", name, err)
	}
	s.ServiceAccount(t, name, "default")
	return ns
}

// ServiceAccount creates ServiceAccount ns/name (it is no error when it
// exists already).
func (s *APIServer) ServiceAccount(t testing.TB, ns, name string) *corev1.ServiceAccount {
	t.Helper()
	ctx := context.Background()
	sa, err := s.clientset.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		sa, err = s.clientset.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		t.Fatalf("testkube: create serviceaccount %s/%s: %v", ns, name, err)
	}
	return sa
}

// Pod creates pod (its namespace and service account must exist). A pod
// without containers gets one that does nothing; no kubelet runs it, so it
// stays Pending, which counts as running for what weft reads of it.
func (s *APIServer) Pod(t testing.TB, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	if len(pod.Spec.Containers) == 0 {
		pod.Spec.Containers = []corev1.Container{{Name: "app", Image: "app:test"}}
	}
	p, err := s.clientset.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("testkube: create pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	return p
}

// DeletePod deletes pod ns/name at once (grace period 0: no kubelet is
// there to confirm a graceful stop).
func (s *APIServer) DeletePod(t testing.TB, ns, name string) {
	t.Helper()
	zero := int64(0)
	if err := s.clientset.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatalf("testkube: delete pod %s/%s: %v", ns, name, err)
	}
}

// Stop stops kube-apiserver, then etcd. The test's cleanup calls it; calling
// it again does nothing.
func (s *APIServer) Stop() {
	s.stopOnce.Do(func() {
		for i := len(s.procs) - 1; i >= 0; i-- {
			p := s.procs[i]
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
	})
}

func (s *APIServer) exec(name, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(s.Dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	s.procs = append(s.procs, p)
	return p, nil
}

func (s *APIServer) dumpLogs(t testing.TB) {
	for _, p := range s.procs {
		b, err := os.ReadFile(p.log)
		if err != nil {
			continue
		}
		const max = 16 << 10
		if len(b) > max {
			b = b[len(b)-max:]
		}
		t.Logf("--- %s log (tail) ---\n%s", p.name, b)
	}
}

// waitFor polls ready until it succeeds, the process exits or ctx ends.
func waitFor(ctx context.Context, p *proc, ready func() error) error {
	var last error
	for {
		if last = ready(); last == nil {
			return nil
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.log)
			if len(b) > 4096 {
				b = b[len(b)-4096:]
			}
			return fmt.Errorf("%s exited before it was ready (%v): %s", p.name, p.cmd.ProcessState, bytes.TrimSpace(b))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last: %v)", p.name, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// FreePorts returns n distinct loopback ports that were free a moment ago
// (for servers that take their ports as flags, unlike a listener on :0).
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

type pki struct {
	caCert, servingCert, servingKey, saKey string
	caPEM, adminCertPEM, adminKeyPEM       []byte
}

// newPKI writes a CA, a serving certificate for 127.0.0.1, an admin client
// certificate (group system:masters) and the service-account signing key.
func newPKI(dir string) (*pki, error) {
	ca, err := testpki.New("testkube-ca")
	if err != nil {
		return nil, err
	}
	servingCert, servingKey, err := ca.Issue(2, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost", "kubernetes.default.svc"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("serving cert: %w", err)
	}
	adminCert, adminKey, err := ca.Issue(3, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "testkube-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("admin cert: %w", err)
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	p := &pki{
		caCert:       filepath.Join(dir, "ca.crt"),
		servingCert:  filepath.Join(dir, "apiserver.crt"),
		servingKey:   filepath.Join(dir, "apiserver.key"),
		saKey:        filepath.Join(dir, "sa.key"),
		caPEM:        ca.PEM,
		adminCertPEM: adminCert,
		adminKeyPEM:  adminKey,
	}
	files := map[string][]byte{
		p.caCert:      p.caPEM,
		p.servingCert: servingCert,
		p.servingKey:  servingKey,
		p.saKey:       pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER}),
	}
	for path, b := range files {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
	}
	return p, nil
}
