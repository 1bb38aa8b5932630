package testetcd

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func client(t *testing.T, c *Cluster, eps []string) *clientv3.Client {
	t.Helper()
	cl, err := clientv3.New(clientv3.Config{Endpoints: eps, TLS: c.ClientTLS(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func putGet(t *testing.T, cl *clientv3.Client, key string) {
	t.Helper()
	// After a member is killed the others may need an election first, and
	// a proposal caught in it fails: retry for a while.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cl.Put(ctx, key, "v")
		var resp *clientv3.GetResponse
		if err == nil {
			resp, err = cl.Get(ctx, key)
		}
		cancel()
		if err == nil && len(resp.Kvs) == 1 && string(resp.Kvs[0].Value) == "v" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("put/get %s: %v, %v", key, resp, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestSingle(t *testing.T) {
	c := Start(t, Options{})
	if len(c.Endpoints()) != 1 || c.PKI() != nil || c.ClientTLS() != nil {
		t.Fatalf("endpoints %v, pki %v", c.Endpoints(), c.PKI())
	}
	putGet(t, client(t, c, c.Endpoints()), "/a")
	c.Restart(0)
	cl := client(t, c, c.Endpoints())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.Get(ctx, "/a")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("after restart the data is gone: %v, %v", resp, err)
	}
}

func TestTLS(t *testing.T) {
	c := Start(t, Options{TLS: true})
	p := c.PKI()
	if p == nil || p.CAFile == "" || p.CertFile == "" || p.KeyFile == "" {
		t.Fatalf("PKI = %+v", p)
	}
	putGet(t, client(t, c, c.Endpoints()), "/tls")

	// Without a client certificate the member refuses the request.
	tc := c.ClientTLS()
	tc.Certificates = nil
	cl, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), TLS: tc, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err == nil {
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if _, err := cl.Get(ctx, "/tls"); err == nil {
			t.Fatal("get without a client certificate succeeded")
		}
	}
}

func TestThreeMembers(t *testing.T) {
	c := Start(t, Options{Members: 3})
	eps := c.Endpoints()
	if len(eps) != 3 {
		t.Fatalf("endpoints = %v", eps)
	}
	putGet(t, client(t, c, eps), "/before")
	c.Kill(0)
	putGet(t, client(t, c, eps[1:]), "/one-down")
	c.Restart(0)
	putGet(t, client(t, c, eps[:1]), "/restarted")
}
