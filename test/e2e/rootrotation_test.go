package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"weft.dev/weft/internal/demo/demov1"
)

// TestRootRotation: `weft ca rotate` under traffic with 4 s certificates:
// the bundle holds both roots, the new root starts signing, the old root
// is dropped; no request fails, a gRPC stream opened before the rotation
// answers every message until after it, every sidecar ends up serving
// certificates from the new root, and ca.pem holds the new root alone.
//
// With WEFT_ROTATION_LOAD=1 it runs the load check instead: 30 s
// certificates, at least 200 requests per second (13 callers, each waiting
// 50 ms between requests) and the stream for at
// least 2 minutes, across the root rotation and every renewal in between.
func TestRootRotation(t *testing.T) {
	if os.Getenv("WEFT_ROTATION_LOAD") != "" {
		rootRotation(t, 30*time.Second, 13, 2*time.Minute)
		return
	}
	rootRotation(t, 4*time.Second, 1, 0)
}

// rootRotation rotates the root with certificates of lifetime ttl while
// callers each send 20 requests per second, for at least minRun.
func rootRotation(t *testing.T, ttl time.Duration, callers int, minRun time.Duration) {
	start := time.Now()
	c := startControl(t, "--cert-ttl", ttl.String())
	backend := startBackend(t, c, "v1")
	gp := freePort(t)
	greeter := startWorkload(t, c, wlOpts{service: "greeter", appPort: gp,
		cmd: []string{weftBin, "demo-app", "greeter", "--listen", addr(gp)}, waitApp: true})
	client := startClient(t, c, "client")
	eventually(t, 10*time.Second, 100*time.Millisecond, "first request", func() error {
		_, err := client.getBackend("http://backend/")
		return err
	})
	cc, err := grpc.NewClient("passthrough:///greeter:80",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(connectDialer(addr(client.outbound))))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	gc := demov1.NewGreeterClient(cc)
	eventually(t, 10*time.Second, 200*time.Millisecond, "Hello", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := gc.Hello(ctx, &demov1.HelloRequest{Name: "mesh"})
		return err
	})
	sctx, scancel := context.WithTimeout(context.Background(), minRun+10*ttl)
	defer scancel()
	stream, err := gc.Chat(sctx)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	// chat sends one message on the stream and checks its answer.
	chat := func(i int) error {
		name := fmt.Sprintf("m%d", i)
		if err := stream.Send(&demov1.HelloRequest{Name: name}); err != nil {
			return fmt.Errorf("Chat send %d: %w", i, err)
		}
		r, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("Chat recv %d: %w", i, err)
		}
		if r.GetMessage() != "hello "+name {
			return fmt.Errorf("Chat %d: got %q", i, r.GetMessage())
		}
		return nil
	}
	oldRoots := readRoots(t, c)
	if len(oldRoots) != 1 {
		t.Fatalf("ca.pem holds %d roots before the rotation, want 1", len(oldRoots))
	}

	var ok, failed, chats atomic.Int64
	var lastErr, streamErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if err := chat(i); err != nil {
				streamErr.Store(err.Error())
				return
			}
			chats.Add(1)
		}
	})
	for range callers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := client.getBackend("http://backend/"); err != nil {
					failed.Add(1)
					lastErr.Store(err.Error())
				} else {
					ok.Add(1)
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()

	if r := c.cli("ca", "rotate"); r.code != 0 || !strings.Contains(r.stdout, "phase:         distributing") {
		t.Fatalf("ca rotate: %s", r)
	}
	if r := c.cli("ca", "rotate"); r.code == 0 || !strings.Contains(r.stderr, "in progress") {
		t.Errorf("a second ca rotate during the rotation: %s", r)
	}
	eventually(t, 5*time.Second, 100*time.Millisecond, "ca.pem with both roots", func() error {
		if n := len(readRoots(t, c)); n != 2 {
			return fmt.Errorf("ca.pem holds %d roots", n)
		}
		return nil
	})
	if r := c.cli("proxy-status"); r.code != 0 || !strings.Contains(r.stdout, "(old)") {
		t.Errorf("proxy-status during the rotation shows no proxy on the old root:\n%s", r)
	}
	// Two phases of one certificate lifetime, then the sidecars' next
	// renewals.
	eventually(t, 5*ttl, 250*time.Millisecond, "rotation finished, sidecars on the new root", func() error {
		roots := readRoots(t, c)
		if len(roots) != 1 || roots[0].Equal(oldRoots[0]) {
			return fmt.Errorf("ca.pem holds %d roots (old root among them: %v)", len(roots), len(roots) > 0 && roots[len(roots)-1].Equal(oldRoots[0]))
		}
		for _, w := range []*workload{backend, greeter, client} {
			leaf := servedLeaf(t, w.inbound)
			if err := leaf.CheckSignatureFrom(roots[0]); err != nil {
				return fmt.Errorf("%s serves a certificate not from the new root", w.service)
			}
		}
		return nil
	})
	newRoot := readRoots(t, c)[0].SerialNumber.Text(16)
	eventually(t, 5*time.Second, 100*time.Millisecond, "proxy-status shows both proxies on the new root", func() error {
		r := c.cli("proxy-status")
		if r.code != 0 || strings.Count(r.stdout, newRoot) != 3 {
			return fmt.Errorf("want %s three times in the ROOT column:\n%s", newRoot, r)
		}
		return nil
	})
	if r := c.cli("ca", "status"); r.code != 0 || !strings.Contains(r.stdout, "phase:         none") {
		t.Errorf("ca status after the rotation: %s", r)
	}
	// Traffic keeps flowing on the new root alone.
	before := ok.Load()
	eventually(t, 5*time.Second, 100*time.Millisecond, "requests after the rotation", func() error {
		if ok.Load() < before+20 {
			return fmt.Errorf("%d requests since", ok.Load()-before)
		}
		return nil
	})
	time.Sleep(time.Until(start.Add(minRun))) // the load check's fixed duration
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d requests failed across the root rotation; last: %v", n, n+ok.Load(), lastErr.Load())
	}
	if e := streamErr.Load(); e != nil {
		t.Errorf("the gRPC stream broke after %d messages: %v", chats.Load(), e)
	}
	t.Logf("%d requests and %d stream messages across the root rotation", ok.Load(), chats.Load())
}

// readRoots parses ca.pem in the control plane's data dir.
func readRoots(t *testing.T, c *control) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.dataDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cert)
	}
}

// servedLeaf returns the leaf certificate an inbound listener presents.
func servedLeaf(t *testing.T, port int) *x509.Certificate {
	t.Helper()
	var leaf *x509.Certificate
	conf := &tls.Config{
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			c, err := x509.ParseCertificate(raw[0])
			leaf = c
			return err
		},
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr(port), conf)
	if err == nil {
		conn.Close()
	}
	if leaf == nil {
		t.Fatalf("no certificate from the inbound listener on port %d: %v", port, err)
	}
	return leaf
}
