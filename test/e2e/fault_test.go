package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"weft.dev/weft/internal/demo/demov1"
)

// outcome is one request of a burst.
type outcome struct {
	code    int
	reason  string // x-weft-reason
	latency time.Duration
	err     error
}

// burst sends n GET u through w from workers goroutines, with extra headers
// (pairs of name, value), and returns every outcome.
func burst(w *workload, u string, n, workers int, hdr ...string) []outcome {
	out := make([]outcome, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				start := time.Now()
				r, err := w.get(u, hdr...)
				out[i] = outcome{code: r.code, reason: r.header.Get("X-Weft-Reason"), latency: time.Since(start), err: err}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// countOutcomes returns how many outcomes have code and reason, and the first error.
func countOutcomes(os []outcome, code int, reason string) (int, error) {
	n := 0
	var first error
	for _, o := range os {
		if o.err != nil && first == nil {
			first = o.err
		}
		if o.err == nil && o.code == code && o.reason == reason {
			n++
		}
	}
	return n, first
}

// percentile is the p-th percentile (0..100) of the outcomes' latencies.
func percentile(os []outcome, p float64) time.Duration {
	ls := make([]time.Duration, len(os))
	for i, o := range os {
		ls[i] = o.latency
	}
	slices.Sort(ls)
	return ls[min(len(ls)-1, int(float64(len(ls))*p/100))]
}

// missingFaultRoute references a FaultInjection that does not exist on its
// /missing rule.
const missingFaultRoute = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: backend-missing-fault
  namespace: default
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: backend
  rules:
  - matches:
    - path: {type: PathPrefix, value: /missing}
    filters:
    - type: ExtensionRef
      extensionRef: {group: weft.dev, kind: FaultInjection, name: nosuch}
    backendRefs:
    - name: backend
      port: 80
`

// TestFaultInjection applies the fault-injection page's examples verbatim:
// a 20% abort gives 20% ± 4% 503s (x-weft-reason: fault-injected) over
// 2,000 requests; changing only the FaultInjection to a header-scoped abort
// re-pushes the route: every request with the header is aborted and none
// without; changing it to a 100 ms delay puts the client-seen median
// latency between 100 ms and 100 ms + 60 ms; the proxy counts the faults
// in weft_proxy_faults_injected_total; `weft get faultinjections` lists
// it; a rule whose ExtensionRef names a missing FaultInjection answers 500
// (the other rules are served) and its route's status says
// ResolvedRefs False, BackendNotFound, naming the filter; a 1 s delay on a
// route with timeouts.request 200ms is cut to a 504 after 200 ms.
func TestFaultInjection(t *testing.T) {
	c := startControl(t)
	startBackend(t, c, "v1")
	client := startClient(t, c, "client")
	c.apply(docYAML(t, "traffic/fault-injection.md", docExample("fault-route")))

	eventually(t, 10*time.Second, 20*time.Millisecond, "the fault takes effect", func() error {
		if r, err := client.get("http://backend/"); err != nil || r.header.Get("X-Weft-Reason") != "fault-injected" {
			return fmt.Errorf("no injected fault yet: %v %d", err, r.code)
		}
		return nil
	})

	t.Run("abort share", func(t *testing.T) {
		const n = 2000
		os := burst(client, "http://backend/", n, 8)
		aborted, err := countOutcomes(os, http.StatusServiceUnavailable, "fault-injected")
		ok, _ := countOutcomes(os, http.StatusOK, "")
		if err != nil {
			t.Fatalf("request error: %v", err)
		}
		t.Logf("%d of %d aborted (%.1f%%), %d ok", aborted, n, 100*float64(aborted)/n, ok)
		if aborted < n*16/100 || aborted > n*24/100 {
			t.Errorf("%d of %d aborted, want 20%% ± 4%% (%d..%d)", aborted, n, n*16/100, n*24/100)
		}
		if aborted+ok != n {
			t.Errorf("%d requests neither aborted nor ok", n-aborted-ok)
		}
		eventually(t, 5*time.Second, 50*time.Millisecond, "abort metric", func() error {
			ms, err := client.metrics()
			if err != nil {
				return err
			}
			got := sum(ms, "weft_proxy_faults_injected_total", map[string]string{"destination_service": "backend.default", "route": "default/backend/0", "kind": "abort"})
			if got < float64(aborted) {
				return fmt.Errorf("weft_proxy_faults_injected_total abort = %v, want >= %d; %s", got, aborted, describe(ms, "weft_proxy_faults_injected_total"))
			}
			return nil
		})
	})

	t.Run("header scoped", func(t *testing.T) {
		c.apply(docYAML(t, "traffic/fault-injection.md", docMarked("fault-header")))
		eventually(t, 10*time.Second, 20*time.Millisecond, "the changed FaultInjection takes effect", func() error {
			// Under the 20% abort before, 20 aborts in a row are a 1e-14 chance.
			os := burst(client, "http://backend/", 20, 4, "x-chaos", "on")
			if n, err := countOutcomes(os, http.StatusServiceUnavailable, "fault-injected"); err != nil || n != 20 {
				return fmt.Errorf("%d of 20 requests with the header aborted (%v)", n, err)
			}
			return nil
		})
		const n = 300
		with := burst(client, "http://backend/", n, 8, "x-chaos", "on")
		without := burst(client, "http://backend/", n, 8, "x-chaos", "off")
		if got, err := countOutcomes(with, http.StatusServiceUnavailable, "fault-injected"); got != n || err != nil {
			t.Errorf("with x-chaos: on, %d of %d aborted (%v), want all", got, n, err)
		}
		if got, err := countOutcomes(without, http.StatusOK, ""); got != n || err != nil {
			t.Errorf("with x-chaos: off, %d of %d ok (%v), want all", got, n, err)
		}
	})

	t.Run("get", func(t *testing.T) {
		g := c.cli("get", "faultinjections")
		if g.code != 0 || !strings.Contains(g.stdout, "backend-faults") {
			t.Errorf("weft get faultinjections:\n%s", g)
		}
	})

	t.Run("missing FaultInjection", func(t *testing.T) {
		c.apply(missingFaultRoute)
		eventually(t, 10*time.Second, 20*time.Millisecond, "the rule answers 500", func() error {
			os := burst(client, "http://backend/missing", 20, 4)
			if n, err := countOutcomes(os, http.StatusInternalServerError, ""); n != 20 {
				return fmt.Errorf("%d of 20 requests answered 500 (%v)", n, err)
			}
			return nil
		})
		if r, err := client.get("http://backend/"); err != nil || r.code == http.StatusInternalServerError {
			t.Errorf("the other route: %v %d, want it served", err, r.code)
		}
		g := c.cli("get", "httproute", "backend-missing-fault", "-o", "yaml")
		for _, want := range []string{"reason: BackendNotFound", `no FaultInjection "nosuch"`, "spec.rules[0].filters[0].extensionRef"} {
			if !strings.Contains(g.stdout, want) {
				t.Errorf("weft get httproute -o yaml does not say %q:\n%s", want, g)
			}
		}
		if g := c.cli("delete", "httproute", "backend-missing-fault"); g.code != 0 {
			t.Fatalf("delete: %s", g)
		}
	})

	t.Run("delay", func(t *testing.T) {
		c.apply(docYAML(t, "traffic/fault-injection.md", docMarked("fault-delay")))
		eventually(t, 10*time.Second, 20*time.Millisecond, "the delay takes effect", func() error {
			os := burst(client, "http://backend/", 4, 4)
			if p := percentile(os, 0); p < 100*time.Millisecond {
				return fmt.Errorf("fastest of 4 requests took %s", p)
			}
			return nil
		})
		os := burst(client, "http://backend/", 200, 20)
		if n, err := countOutcomes(os, http.StatusOK, ""); n != len(os) || err != nil {
			t.Fatalf("%d of %d ok (%v)", n, len(os), err)
		}
		p50, p0 := percentile(os, 50), percentile(os, 0)
		t.Logf("delayed: min %s, p50 %s, p99 %s", p0, p50, percentile(os, 99))
		if p0 < 100*time.Millisecond || p50 >= 160*time.Millisecond {
			t.Errorf("min %s, p50 %s: want min >= 100ms and p50 < 160ms", p0, p50)
		}
	})

	t.Run("delay bounded by the route timeout", func(t *testing.T) {
		c.apply(slowFaultRoute)
		var os []outcome
		eventually(t, 10*time.Second, 20*time.Millisecond, "the route timeout cuts the delay", func() error {
			os = burst(client, "http://backend/", 20, 10)
			if n, err := countOutcomes(os, http.StatusGatewayTimeout, ""); n != len(os) {
				return fmt.Errorf("%d of %d answered 504 (%v)", n, len(os), err)
			}
			return nil
		})
		p0, p100 := percentile(os, 0), percentile(os, 100)
		t.Logf("504 after %s to %s", p0, p100)
		if p0 < 200*time.Millisecond || p100 >= 400*time.Millisecond {
			t.Errorf("504s after %s to %s, want 200ms to 400ms (timeouts.request 200ms, delay 1s)", p0, p100)
		}
	})
}

// slowFaultRoute is the page's route with timeouts.request: 200ms and its
// FaultInjection changed to a 1 s delay.
const slowFaultRoute = `
apiVersion: weft.dev/v1alpha1
kind: FaultInjection
metadata:
  name: backend-faults
  namespace: default
spec:
  delay:
    fixedDelay: 1s
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: backend
  namespace: default
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: backend
  rules:
  - filters:
    - type: ExtensionRef
      extensionRef: {group: weft.dev, kind: FaultInjection, name: backend-faults}
    backendRefs:
    - name: backend
      port: 80
    timeouts:
      request: 200ms
`

// TestFaultInjectionGRPC: the page's gRPC example aborts every Hello call
// with UNAVAILABLE (a trailers-only answer the gRPC client reads as that
// status) while Chat, another method of the service, is untouched.
func TestFaultInjectionGRPC(t *testing.T) {
	c := startControl(t)
	gp := freePort(t)
	startWorkload(t, c, wlOpts{service: "greeter", appPort: gp,
		cmd: []string{weftBin, "demo-app", "greeter", "--listen", addr(gp)}, waitApp: true})
	client := startClient(t, c, "client")
	c.apply(docYAML(t, "traffic/fault-injection.md", docMarked("fault-grpc")))

	cc, err := grpc.NewClient("passthrough:///greeter:80",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(connectDialer(addr(client.outbound))))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	gc := demov1.NewGreeterClient(cc)
	hello := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := gc.Hello(ctx, &demov1.HelloRequest{Name: "mesh"})
		return err
	}
	injected := func(err error) bool {
		return status.Code(err) == codes.Unavailable && strings.Contains(status.Convert(err).Message(), "fault injected")
	}
	eventually(t, 10*time.Second, 50*time.Millisecond, "the fault takes effect", func() error {
		if err := hello(); !injected(err) {
			return fmt.Errorf("Hello: %v, want UNAVAILABLE with the fault message", err)
		}
		return nil
	})
	unavailable := 0
	for range 100 {
		if injected(hello()) {
			unavailable++
		}
	}
	if unavailable != 100 {
		t.Errorf("%d of 100 Hello calls UNAVAILABLE with the fault message, want all", unavailable)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := gc.Chat(ctx)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if err := stream.Send(&demov1.HelloRequest{Name: "one"}); err != nil {
		t.Fatalf("Chat send: %v", err)
	}
	if r, err := stream.Recv(); err != nil || r.GetMessage() != "hello one" {
		t.Errorf("Chat: %v %v, want hello one", r, err)
	}
}
