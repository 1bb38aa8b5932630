package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"weft.dev/weft/internal/connfile"
	"weft.dev/weft/internal/testetcd"
)

// freeAddr is a loopback host:port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startEtcdControl runs `weft control --store etcd` in-process against c
// until the test ends and returns the flags of a CLI pointed at it.
func startEtcdControl(t *testing.T, c *testetcd.Cluster, prefix, sealKey string) *globalFlags {
	t.Helper()
	dir := t.TempDir()
	p := c.PKI()
	root := newRootCmd()
	root.SetArgs([]string{"control", "--data-dir", dir, "--log-level", "warn",
		"--store", "etcd", "--etcd-endpoints", strings.Join(c.Endpoints(), ","),
		"--etcd-cert", p.CertFile, "--etcd-key", p.KeyFile, "--etcd-ca", p.CAFile, "--etcd-prefix", prefix,
		"--seal-key-file", sealKey, "--listen", freeAddr(t), "--api-listen", freeAddr(t)})
	root.SetOut(new(strings.Builder))
	root.SetErr(new(strings.Builder))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("weft control: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("weft control did not stop")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := connfile.Read(dir); err == nil {
			if _, err := os.Stat(filepath.Join(dir, connfile.AdminTokenFile)); err == nil {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("weft control exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("weft control did not write its connection file")
		}
	}
	return &globalFlags{dataDir: dir, logLevel: "info", logFormat: "text"}
}

func TestControlEtcd(t *testing.T) {
	c := testetcd.Start(t, testetcd.Options{TLS: true})
	const prefix = "/mesh-a/"
	sealKey := filepath.Join(t.TempDir(), "seal.key")
	a := startEtcdControl(t, c, prefix, sealKey)
	b := startEtcdControl(t, c, prefix, sealKey) // a second replica on the same etcd

	file := filepath.Join(t.TempDir(), "svc.yaml")
	if err := os.WriteFile(file, []byte("apiVersion: v1\nkind: Service\nmetadata: {name: orders, namespace: shop}\nspec: {selector: {app: orders}, ports: [{name: http, port: 8080}]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := apiTestRun(t, a, newApplyCmd, "-f", file)
	if err != nil {
		t.Fatalf("apply: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out+errOut, "created") {
		t.Errorf("apply output = %q", out+errOut)
	}

	// The object is in etcd under the prefix...
	cl, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), TLS: c.ClientTLS(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := cl.Get(t.Context(), prefix+"objects/Service/shop/orders")
	if err != nil || len(resp.Kvs) != 1 || !strings.Contains(string(resp.Kvs[0].Value), `"port":8080`) {
		t.Fatalf("etcd holds %v, %v", resp, err)
	}
	rev := resp.Kvs[0].ModRevision

	// ...and both replicas serve it, with the etcd revision as its
	// resourceVersion.
	for name, g := range map[string]*globalFlags{"a": a, "b": b} {
		var got string
		for range 50 {
			got, _, err = apiTestRun(t, g, newGetCmd, "service", "orders", "-n", "shop", "-o", "yaml")
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("get from replica %s: %v", name, err)
		}
		if !strings.Contains(got, "port: 8080") || !strings.Contains(got, fmt.Sprintf("resourceVersion: %q", fmt.Sprint(rev))) {
			t.Errorf("replica %s: get -o yaml =\n%s\nwant port 8080 and resourceVersion %d", name, got, rev)
		}
	}
}

func TestControlEtcdFlags(t *testing.T) {
	dir := t.TempDir()
	pem := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(pem, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no endpoints", nil, "--store etcd needs --etcd-endpoints"},
		{"empty endpoints", []string{"--etcd-endpoints", ","}, "--store etcd needs --etcd-endpoints"},
		{"not a URL", []string{"--etcd-endpoints", "etcd:2379"}, `--etcd-endpoints "etcd:2379": want a URL`},
		{"cert without key", []string{"--etcd-endpoints", "https://e:2379", "--etcd-cert", pem}, "--etcd-cert and --etcd-key go together"},
		{"key without cert", []string{"--etcd-endpoints", "https://e:2379", "--etcd-key", pem}, "--etcd-cert and --etcd-key go together"},
		{"unreadable cert", []string{"--etcd-endpoints", "https://e:2379", "--etcd-cert", missing, "--etcd-key", missing}, "--etcd-cert " + missing},
		{"junk cert", []string{"--etcd-endpoints", "https://e:2379", "--etcd-cert", pem, "--etcd-key", pem}, "--etcd-cert " + pem},
		{"unreadable ca", []string{"--etcd-endpoints", "https://e:2379", "--etcd-ca", missing}, "--etcd-ca: open " + missing},
		{"junk ca", []string{"--etcd-endpoints", "https://e:2379", "--etcd-ca", pem}, "no PEM certificate"},
		{"tls flags with http", []string{"--etcd-endpoints", "http://e:2379", "--etcd-ca", pem}, "must be https://"},
		{"mixed schemes", []string{"--etcd-endpoints", "https://e:2379,http://f:2379"}, "all https:// or all http://"},
		{"relative prefix", []string{"--etcd-endpoints", "http://e:2379", "--etcd-prefix", "weft/"}, `--etcd-prefix "weft/": must start with /`},
		{"zero dial timeout", []string{"--etcd-endpoints", "http://e:2379", "--etcd-dial-timeout", "0s"}, "--etcd-dial-timeout 0s: must be positive"},
		{"unknown store", []string{"--store", "consul"}, `--store "consul": want bolt, kubernetes or etcd`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRootCmd()
			args := []string{"control", "--data-dir", t.TempDir()}
			if !strings.Contains(strings.Join(tt.args, " "), "--store") {
				args = append(args, "--store", "etcd")
			}
			root.SetArgs(append(args, tt.args...))
			root.SetOut(new(strings.Builder))
			root.SetErr(new(strings.Builder))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := root.ExecuteContext(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
