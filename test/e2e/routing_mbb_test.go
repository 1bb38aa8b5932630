package e2e

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// v3Service selects backend version v3.
const v3Service = `
apiVersion: v1
kind: Service
metadata:
  name: backend-v3
  namespace: default
spec:
  selector:
    app: backend
    version: v3
  ports:
  - name: http
    port: 80
`

// weightedRoute is an HTTPRoute on backend splitting traffic over
// backend-<version> Services by weight (pairs of version, weight).
func weightedRoute(split ...any) string {
	var b strings.Builder
	b.WriteString(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: backend-split
  namespace: default
spec:
  parentRefs:
  - {group: "", kind: Service, name: backend}
  rules:
  - backendRefs:
`)
	for i := 0; i+1 < len(split); i += 2 {
		fmt.Fprintf(&b, "    - {name: backend-%s, port: 80, weight: %d}\n", split[i], split[i+1])
	}
	return b.String()
}

// TestRoutingMakeBeforeBreak: under a steady ~200 requests/s, 20 route
// changes in about 10 s — alternating weights and backends, each backend
// Service first used by one of them, so the proxy has no endpoints for it
// yet — produce no response other than 200, and no request waits for
// endpoints (weft_endpoint_waits_total).
func TestRoutingMakeBeforeBreak(t *testing.T) {
	c := startControl(t)
	for _, v := range []string{"v1", "v2", "v3"} {
		startBackend(t, c, v)
	}
	client := startClient(t, c, "client")
	c.apply(versionServices + "---" + v3Service)
	eventually(t, 15*time.Second, 50*time.Millisecond, "backend answers", func() error {
		_, err := client.getBackend("http://backend/")
		return err
	})

	changes := []string{
		weightedRoute("v1", 100),
		weightedRoute("v1", 90, "v2", 10),
		weightedRoute("v2", 100),
		weightedRoute("v2", 50, "v3", 50),
		weightedRoute("v3", 100),
		weightedRoute("v1", 50, "v3", 50),
	}
	var (
		total, failed atomic.Int64
		mu            sync.Mutex
		failures      []string
		versions      = map[string]int{}
		slowest       time.Duration
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// 8 senders, one request each every 40 ms: about 200 requests/s.
	for range 8 {
		wg.Go(func() {
			tick := time.NewTicker(40 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				sent := time.Now()
				br, err := client.getBackend("http://backend/")
				took := time.Since(sent)
				total.Add(1)
				mu.Lock()
				slowest = max(slowest, took)
				if err != nil {
					failed.Add(1)
					if len(failures) < 10 {
						failures = append(failures, err.Error())
					}
				} else {
					versions[br.Version]++
				}
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	for i := range 20 {
		time.Sleep(time.Until(start.Add(time.Duration(i) * 500 * time.Millisecond)))
		c.apply(changes[i%len(changes)])
	}
	applied := time.Since(start)
	time.Sleep(500 * time.Millisecond) // the last change under load too
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	rate := float64(total.Load()) / elapsed.Seconds()
	t.Logf("20 route changes in %s; %d requests in %s (%.0f/s), %d failed, slowest %s; versions %v", applied, total.Load(), elapsed, rate, failed.Load(), slowest, versions)
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during route changes, e.g. %v", failed.Load(), total.Load(), failures)
	}
	if rate < 150 {
		t.Errorf("load was %.0f requests/s, want about 200", rate)
	}
	if applied > 12*time.Second {
		t.Errorf("20 changes took %s, want about 10s", applied)
	}
	for _, v := range []string{"v1", "v2", "v3"} {
		if versions[v] == 0 {
			t.Errorf("no request reached %s: %v", v, versions)
		}
	}
	// Each change that named a backend for the first time switched only
	// once the client's proxy had its endpoints: no request waited.
	samples, err := client.metrics()
	if err != nil {
		t.Fatal(err)
	}
	if waits := sum(samples, "weft_endpoint_waits_total", map[string]string{"destination_service": "backend-v1.default|backend-v2.default|backend-v3.default"}); waits != 0 {
		t.Errorf("%v requests waited for a new backend's endpoints, want 0:%s", waits, describe(samples, "weft_endpoint_waits_total"))
	}
}
