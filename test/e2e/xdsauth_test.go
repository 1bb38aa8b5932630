package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestXDSRequiresClientCertificate: a raw gRPC client without a client
// certificate gets Unauthenticated and no resource from the real control
// plane, on state-of-the-world and delta streams; a flood of 500 such
// streams leaves the control plane's memory flat, and every refusal is
// counted on GET /metrics.
func TestXDSRequiresClientCertificate(t *testing.T) {
	c := startControl(t)
	startBackend(t, c, "v1") // so that there are resources to leak

	pem, err := os.ReadFile(filepath.Join(c.dataDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("ca.pem holds no certificate")
	}
	dial := func() *grpc.ClientConn {
		conn, err := grpc.NewClient("passthrough:///"+addr(c.xds), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "weft-control", MinVersion: tls.VersionTLS12})))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	// open opens a stream of either kind, asks for every Service and
	// returns how many resources it got and the stream's status.
	open := func(ctx context.Context, conn *grpc.ClientConn, delta bool) (int, error) {
		ads := discoveryv3.NewAggregatedDiscoveryServiceClient(conn)
		if delta {
			s, err := ads.DeltaAggregatedResources(ctx)
			if err != nil {
				return 0, err
			}
			_ = s.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: weftv1.ServiceType, ResourceNamesSubscribe: []string{"*"}})
			resp, err := s.Recv()
			return len(resp.GetResources()), err
		}
		s, err := ads.StreamAggregatedResources(ctx)
		if err != nil {
			return 0, err
		}
		_ = s.Send(&discoveryv3.DiscoveryRequest{TypeUrl: weftv1.ServiceType})
		resp, err := s.Recv()
		return len(resp.GetResources()), err
	}
	conn := dial()
	for _, delta := range []bool{false, true} {
		t.Run(fmt.Sprintf("delta=%v", delta), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			n, err := open(ctx, conn, delta)
			if n != 0 || status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "no client certificate") {
				t.Errorf("got %d resources and %v; want none and Unauthenticated", n, err)
			}
		})
	}

	const conns, perConn = 5, 100
	before := rssKiB(t, c.proc.pid())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	refused, resources := 0, 0
	var wg sync.WaitGroup
	for range conns {
		conn := dial()
		for range perConn {
			wg.Go(func() {
				n, err := open(ctx, conn, false)
				mu.Lock()
				defer mu.Unlock()
				resources += n
				if status.Code(err) == codes.Unauthenticated {
					refused++
				}
			})
		}
	}
	wg.Wait()
	after := rssKiB(t, c.proc.pid())
	t.Logf("control plane RSS: %d KiB before, %d KiB after %d unauthenticated streams (%+d KiB)", before, after, conns*perConn, after-before)
	if refused != conns*perConn || resources != 0 {
		t.Errorf("%d of %d streams refused, %d resources sent", refused, conns*perConn, resources)
	}
	if after-before > 16<<10 {
		t.Errorf("control plane RSS grew by %d KiB, want at most 16 MiB", after-before)
	}

	metrics := controlMetrics(t, c, roots)
	want := fmt.Sprintf(`weft_control_xds_refusals_total{reason="unauthenticated"} %d`, conns*perConn+2)
	if !strings.Contains(metrics, want+"\n") {
		t.Errorf("GET /metrics lacks %q", want)
	}
}

// rssKiB is the resident set of process pid.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS in /proc/pid/status")
	return 0
}

// controlMetrics GETs the control plane's /metrics with the admin token.
func controlMetrics(t *testing.T, c *control, roots *x509.CertPool) string {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(c.dataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "weft-control"}}}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr(c.api)+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v %.200s", resp.StatusCode, err, b)
	}
	return string(b)
}
