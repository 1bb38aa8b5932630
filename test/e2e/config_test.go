package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// versionServices are Services selecting each backend version.
const versionServices = `
apiVersion: v1
kind: Service
metadata:
  name: backend-v1
  namespace: default
spec:
  selector:
    app: backend
    version: v1
  ports:
  - name: http
    port: 80
---
apiVersion: v1
kind: Service
metadata:
  name: backend-v2
  namespace: default
spec:
  selector:
    app: backend
    version: v2
  ports:
  - name: http
    port: 80
`

// canaryRoute sends x-canary: 1 to backend-v2, the rest to backend-v1.
const canaryRoute = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: backend-canary
  namespace: default
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: backend
  rules:
  - matches:
    - headers:
      - name: x-canary
        value: "1"
    backendRefs:
    - name: backend-v2
      port: 80
  - backendRefs:
    - name: backend-v1
      port: 80
`

// allToV2Route sends all traffic for backend to backend-v2.
const allToV2Route = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: backend-to-v2
  namespace: default
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: backend
  rules:
  - backendRefs:
    - name: backend-v2
      port: 80
`

// waitBothVersions polls until client has reached both backend versions.
func waitBothVersions(t *testing.T, client *workload) {
	t.Helper()
	seen := map[string]bool{}
	eventually(t, 15*time.Second, 50*time.Millisecond, "both backend versions answer", func() error {
		br, err := client.getBackend("http://backend/")
		if err != nil {
			return err
		}
		seen[br.Version] = true
		if !seen["v1"] || !seen["v2"] {
			return fmt.Errorf("seen %v", seen)
		}
		return nil
	})
}

// TestHTTPRouteHeaderMatch: an HTTPRoute on parent Service backend sends
// requests by header to per-version Services within 5s of `weft apply`.
func TestHTTPRouteHeaderMatch(t *testing.T) {
	c := startControl(t)
	startBackend(t, c, "v1")
	startBackend(t, c, "v2")
	client := startClient(t, c, "client")

	// Without a route, traffic spreads over both versions: the checks
	// below can only pass because of the route.
	waitBothVersions(t, client)

	c.apply(versionServices + "---" + canaryRoute)
	applied := time.Now()

	// Runs of several requests per kind: a round-robin balancer over v1
	// and v2 cannot pass this by alternating.
	const streak = 5
	took := eventually(t, 5*time.Second, 20*time.Millisecond, "route in effect", func() error {
		for round := range 2 {
			for i := range streak {
				br, err := client.getBackend("http://backend/", "x-canary", "1")
				if err != nil {
					return err
				}
				if br.Version != "v2" {
					return fmt.Errorf("round %d: with x-canary: 1, request %d reached %s", round, i, br.Version)
				}
			}
			for i := range streak {
				br, err := client.getBackend("http://backend/")
				if err != nil {
					return err
				}
				if br.Version != "v1" {
					return fmt.Errorf("round %d: without x-canary, request %d reached %s", round, i, br.Version)
				}
			}
		}
		return nil
	})
	t.Logf("route in effect %v after apply returned (%v from poll start)", time.Since(applied).Round(time.Millisecond), took.Round(time.Millisecond))

	// A different header value is not a match.
	for range 5 {
		br, err := client.getBackend("http://backend/", "x-canary", "2")
		if err != nil {
			t.Fatal(err)
		}
		if br.Version != "v1" {
			d, _ := client.configDump()
			t.Fatalf("with x-canary: 2, request reached %s, want v1; client config_dump:\n%s", br.Version, d)
		}
	}

	r := c.cli("get", "httproute", "backend-canary", "-o", "yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "backend-canary") || !strings.Contains(r.stdout, "x-canary") {
		t.Errorf("weft get httproute backend-canary -o yaml does not show the route:\n%s", r)
	}
}

// TestControlPlaneRestart: stopping and restarting the control plane drops
// no request, and resources survive in the store.
func TestControlPlaneRestart(t *testing.T) {
	c := startControl(t)
	startBackend(t, c, "v1")
	startBackend(t, c, "v2")
	client := startClient(t, c, "client")
	waitBothVersions(t, client)

	c.apply(versionServices + "---" + allToV2Route)
	eventually(t, 5*time.Second, 20*time.Millisecond, "route to v2 in effect", func() error {
		for range 10 {
			br, err := client.getBackend("http://backend/")
			if err != nil {
				return err
			}
			if br.Version != "v2" {
				return fmt.Errorf("reached %s", br.Version)
			}
		}
		return nil
	})
	caBefore, err := os.ReadFile(filepath.Join(c.dataDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}

	// Traffic every 50ms from the client's sidecar, for the whole test.
	var (
		mu       sync.Mutex
		total    int
		failures []string
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			br, err := client.getBackend("http://backend/")
			mu.Lock()
			total++
			switch {
			case err != nil:
				failures = append(failures, time.Now().Format("15:04:05.000")+" "+err.Error())
			case br.Version != "v2":
				failures = append(failures, time.Now().Format("15:04:05.000")+" reached "+br.Version+" (route lost)")
			}
			mu.Unlock()
		}
	}()
	stopTraffic := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	}
	t.Cleanup(stopTraffic)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return total
	}
	waitRequests := func(n int) {
		t.Helper()
		start := count()
		eventually(t, 10*time.Second, 50*time.Millisecond, "traffic flowing", func() error {
			if count() < start+n {
				return fmt.Errorf("%d requests so far", count()-start)
			}
			return nil
		})
	}

	waitRequests(10)
	old := c.proc
	if err := old.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, err := old.wait(15 * time.Second)
	if err != nil {
		t.Fatalf("control plane did not stop on SIGTERM: %v", err)
	}
	if code != 0 {
		t.Errorf("control plane exited %d on SIGTERM, want 0", code)
	}
	// The mesh runs on its own while the control plane is down.
	waitRequests(20)

	c.start()
	waitRequests(20)

	caAfter, err := os.ReadFile(filepath.Join(c.dataDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(caBefore, caAfter) {
		t.Errorf("ca.pem changed across the restart: the CA must persist in the data dir")
	}
	r := c.cli("get", "httproute")
	if r.code != 0 || !strings.Contains(r.stdout, "backend-to-v2") {
		t.Errorf("after restart, weft get httproute does not list backend-to-v2:\n%s", r)
	}
	r = c.cli("get", "service", "backend-v2", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, "backend-v2") {
		t.Errorf("after restart, weft get service backend-v2 fails:\n%s", r)
	}

	// A workload that joins after the restart gets a certificate from the
	// same CA and the persisted route.
	late := startClient(t, c, "late")
	eventually(t, 10*time.Second, 100*time.Millisecond, "new workload after restart", func() error {
		for range 5 {
			br, err := late.getBackend("http://backend/")
			if err != nil {
				return err
			}
			if br.Version != "v2" {
				return fmt.Errorf("new workload reached %s; the persisted route sends all to v2", br.Version)
			}
			if br.Caller != late.spiffeID() {
				return stopErr{fmt.Errorf("caller %q, want %q", br.Caller, late.spiffeID())}
			}
		}
		return nil
	})

	stopTraffic()
	mu.Lock()
	t.Logf("%d requests during and after the restart, %d failed", total, len(failures))
	if len(failures) > 0 {
		max := min(len(failures), 20)
		t.Errorf("%d of %d requests failed across the control-plane restart, want 0; first %d:\n%s",
			len(failures), total, max, strings.Join(failures[:max], "\n"))
	}
	mu.Unlock()

	// The proxy that lived through the restart resubscribed: a change made
	// after the restart reaches it.
	if r := c.cli("delete", "httproute", "backend-to-v2"); r.code != 0 {
		t.Fatalf("weft delete httproute backend-to-v2:\n%s", r)
	}
	eventually(t, 5*time.Second, 50*time.Millisecond, "old client sees the route deleted after the restart", func() error {
		br, err := client.getBackend("http://backend/")
		if err != nil {
			return err
		}
		if br.Version != "v1" {
			return fmt.Errorf("still only v2")
		}
		return nil
	})
}

// TestBadApply: an invalid file is rejected as a whole, with an error that
// names the field.
func TestBadApply(t *testing.T) {
	c := startControl(t)
	const goodService = `
apiVersion: v1
kind: Service
metadata:
  name: good-svc
  namespace: default
spec:
  selector:
    app: good
  ports:
  - name: http
    port: 80
`
	route := func(rule string) string {
		return `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: bad-route
  namespace: default
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: good-svc
  rules:
` + rule
	}
	cases := []struct {
		name      string
		rule      string
		wantField string
	}{
		{"negative weight", `
  - backendRefs:
    - name: good-svc
      port: 80
      weight: -1
`, "weight"},
		{"unknown field", `
  - backendRefs:
    - name: good-svc
      port: 80
    bogusField: true
`, "bogusField"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "bad.yaml")
			if err := os.WriteFile(f, []byte(goodService+"---"+route(tc.rule)), 0o644); err != nil {
				t.Fatal(err)
			}
			r := c.cli("apply", "-f", f)
			if r.code == 0 {
				t.Errorf("apply of an invalid file succeeded:\n%s", r)
			}
			if !strings.Contains(r.stderr, tc.wantField) {
				t.Errorf("apply error does not name the field %q:\n%s", tc.wantField, r)
			}
			g := c.cli("get", "services")
			if g.code != 0 {
				t.Fatalf("weft get services failed:\n%s", g)
			}
			if strings.Contains(g.stdout, "good-svc") {
				t.Errorf("the valid Service from the rejected file was stored (apply is not all-or-nothing):\n%s", g)
			}
			g = c.cli("get", "httproutes")
			if g.code != 0 || strings.Contains(g.stdout, "bad-route") {
				t.Errorf("weft get httproutes after the rejected apply:\n%s", g)
			}
		})
	}

	// The valid half alone applies and is listed: the check above can fail.
	c.apply(goodService)
	if g := c.cli("get", "services"); g.code != 0 || !strings.Contains(g.stdout, "good-svc") {
		t.Errorf("after applying good-svc, weft get services does not list it:\n%s", g)
	}
	if g := c.cli("delete", "service", "good-svc"); g.code != 0 {
		t.Errorf("weft delete service good-svc:\n%s", g)
	}
	if g := c.cli("get", "services"); g.code != 0 || strings.Contains(g.stdout, "good-svc") {
		t.Errorf("after delete, weft get services still lists good-svc:\n%s", g)
	}
}
