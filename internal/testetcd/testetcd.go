// Package testetcd starts real etcd members as processes for tests: one
// member or a three-member cluster on free loopback ports, optionally
// serving clients over TLS with client-certificate authentication.
//
// The etcd binary is the one test/etcd/build.sh builds into testkube.BinDir.
// Start skips the test when it is missing, unless WEFT_REQUIRE_KUBE=1 (CI),
// in which case it fails.
package testetcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"weft.dev/weft/internal/testkube"
)

// Options configure Start.
type Options struct {
	// Members is the number of members: 1 (the default) or 3.
	Members int
	// TLS makes the members serve clients over TLS and require a client
	// certificate signed by the cluster's CA (peers talk plain HTTP).
	TLS bool
}

// Binary returns the path of the etcd binary, or an error saying how to
// build it.
func Binary() (string, error) {
	p := filepath.Join(testkube.BinDir(), "etcd")
	if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("testetcd: %s missing (build it with test/etcd/build.sh, or set WEFT_KUBE_BIN_DIR)", p)
	}
	return p, nil
}

// Cluster is a running etcd cluster, stopped at the end of the test that
// started it.
type Cluster struct {
	t       testing.TB
	bin     string
	dir     string
	members []*member
	pki     *PKI
	mu      sync.Mutex
}

type member struct {
	name      string
	clientURL string
	args      []string
	log       string
	cmd       *exec.Cmd
	done      chan struct{}
}

// Start starts the cluster opts describe and waits until every member is
// healthy. The members stop when the test ends.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("WEFT_REQUIRE_KUBE") == "1" {
			t.Fatalf("%v (WEFT_REQUIRE_KUBE=1)", err)
		}
		t.Skip(err)
	}
	n := opts.Members
	if n == 0 {
		n = 1
	}
	if n != 1 && n != 3 {
		t.Fatalf("testetcd: Members = %d, want 1 or 3", n)
	}
	c := &Cluster{t: t, bin: bin, dir: t.TempDir()}
	if opts.TLS {
		if c.pki, err = newPKI(c.dir); err != nil {
			t.Fatalf("testetcd: %v", err)
		}
	}
	ports, err := testkube.FreePorts(2 * n)
	if err != nil {
		t.Fatalf("testetcd: %v", err)
	}
	scheme := "http"
	if opts.TLS {
		scheme = "https"
	}
	var initial []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, ports[2*i+1]))
	}
	for i := range n {
		m := &member{name: fmt.Sprintf("m%d", i), clientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i])}
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])
		m.log = filepath.Join(c.dir, m.name+".log")
		m.args = []string{
			"--name=" + m.name,
			"--data-dir=" + filepath.Join(c.dir, m.name),
			"--listen-client-urls=" + m.clientURL,
			"--advertise-client-urls=" + m.clientURL,
			"--listen-peer-urls=" + peer,
			"--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=" + strings.Join(initial, ","),
			"--initial-cluster-token=testetcd",
			"--initial-cluster-state=new",
			"--unsafe-no-fsync",
			"--log-level=warn",
			// Short elections so that losing a member costs the tests
			// little time.
			"--heartbeat-interval=50",
			"--election-timeout=1000",
		}
		if opts.TLS {
			m.args = append(m.args,
				"--cert-file="+c.pki.serverCert, "--key-file="+c.pki.serverKey,
				"--client-cert-auth", "--trusted-ca-file="+c.pki.CAFile)
		}
		c.members = append(c.members, m)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
		c.stop()
	})
	for _, m := range c.members {
		if err := c.exec(m); err != nil {
			t.Fatalf("testetcd: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, m := range c.members {
		if err := c.waitHealthy(ctx, m); err != nil {
			t.Fatalf("testetcd: %v", err)
		}
	}
	return c
}

// Endpoints returns the client URLs of every member, killed ones included.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.clientURL
	}
	return out
}

// PKI returns the client certificate files of a TLS cluster, nil without
// TLS.
func (c *Cluster) PKI() *PKI { return c.pki }

// ClientTLS returns a client configuration presenting the PKI's client
// certificate and trusting its CA, nil without TLS.
func (c *Cluster) ClientTLS() *tls.Config {
	if c.pki == nil {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(c.pki.CertFile, c.pki.KeyFile)
	if err != nil {
		c.t.Fatalf("testetcd: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.pki.caPEM)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// Kill stops member i with SIGKILL and waits until it has exited.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	m := c.members[i]
	c.mu.Lock()
	cmd, done := m.cmd, m.done
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart starts member i again (after Kill) on its data dir and ports and
// waits until it is healthy.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.Kill(i)
	m := c.members[i]
	if err := c.exec(m); err != nil {
		c.t.Fatalf("testetcd: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.waitHealthy(ctx, m); err != nil {
		c.t.Fatalf("testetcd: %v", err)
	}
}

func (c *Cluster) exec(m *member) error {
	f, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s log: %w", m.name, err)
	}
	cmd := exec.Command(c.bin, m.args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start etcd %s: %w", m.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
	c.mu.Lock()
	m.cmd, m.done = cmd, done
	c.mu.Unlock()
	return nil
}

// waitHealthy polls the member's /health until it answers ok (it has a
// leader), the process exits or ctx ends.
func (c *Cluster) waitHealthy(ctx context.Context, m *member) error {
	tr := &http.Transport{}
	if tc := c.ClientTLS(); tc != nil {
		tr.TLSClientConfig = tc
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Timeout: time.Second, Transport: tr}
	c.mu.Lock()
	done := m.done
	c.mu.Unlock()
	var last error
	for {
		resp, err := hc.Get(m.clientURL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/health: %s", resp.Status)
		}
		last = err
		select {
		case <-done:
			return fmt.Errorf("etcd %s exited before it was healthy: %s", m.name, tail(m.log, 4096))
		case <-ctx.Done():
			return fmt.Errorf("etcd %s not healthy: %w (last: %v)", m.name, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) stop() {
	for _, m := range c.members {
		c.mu.Lock()
		cmd, done := m.cmd, m.done
		c.mu.Unlock()
		if cmd == nil {
			continue
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
}

func (c *Cluster) dumpLogs() {
	for _, m := range c.members {
		c.t.Logf("--- etcd %s log (tail) ---\n%s", m.name, tail(m.log, 8<<10))
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
