package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"weft.dev/weft/internal/demo/demov1"
)

// countingApp is an HTTP app served by the test process that counts the
// requests it receives (every attempt a proxy sends) and answers with a
// status and delay the test sets; a path /status/<code> answers that code.
type countingApp struct {
	port     int
	requests atomic.Int64
	status   atomic.Int64 // 0: 200
	delay    atomic.Int64 // nanoseconds
	bodies   atomic.Int64 // body bytes received
}

func startCountingApp(t *testing.T) *countingApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &countingApp{port: ln.Addr().(*net.TCPAddr).Port}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.requests.Add(1)
		n, _ := io.Copy(io.Discard, r.Body)
		a.bodies.Add(n)
		if d := time.Duration(a.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		code := int(a.status.Load())
		if s, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
			code, _ = strconv.Atoi(s)
		}
		if code == 0 {
			code = http.StatusOK
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "app %d read %d body bytes\n", a.port, n)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

// startCountingBackends starts n counting apps as workloads of service
// svc and waits until client reaches every one of them.
func startCountingBackends(t *testing.T, c *control, client *workload, svc string, n int) []*countingApp {
	t.Helper()
	apps := make([]*countingApp, n)
	for i := range apps {
		apps[i] = startCountingApp(t)
		startWorkload(t, c, wlOpts{service: svc, appPort: apps[i].port, cmd: []string{"sleep", "3600"}})
	}
	eventually(t, 20*time.Second, 20*time.Millisecond, "client reaches every "+svc+" endpoint", func() error {
		if _, err := client.get("http://" + svc + "/"); err != nil {
			return err
		}
		for i, a := range apps {
			if a.requests.Load() == 0 {
				return fmt.Errorf("endpoint %d not reached yet", i)
			}
		}
		return nil
	})
	for _, a := range apps {
		a.requests.Store(0)
		a.bodies.Store(0)
	}
	return apps
}

func attempts(apps []*countingApp) int64 {
	var n int64
	for _, a := range apps {
		n += a.requests.Load()
	}
	return n
}

// sendAll sends n requests made by mk through client from 4 goroutines and
// returns the status codes (0 for a transport error) and latencies.
func sendAll(client *workload, n int, mk func(i int) *http.Request) ([]int, []time.Duration) {
	codes := make([]int, n)
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				start := time.Now()
				resp, err := client.client.Do(mk(i))
				lat[i] = time.Since(start)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				codes[i] = resp.StatusCode
			}
		})
	}
	wg.Wait()
	return codes, lat
}

func getReq(u string) func(int) *http.Request {
	return func(int) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		return req
	}
}

func count(codes []int, code int) int {
	n := 0
	for _, c := range codes {
		if c == code {
			n++
		}
	}
	return n
}

// TestRetryDefaultsOneOfThreeFailing: with no policy at all, one of three
// endpoints failing every request is invisible to the client.
//
// Retries alone cannot do it: a third of the requests fail their first
// attempt and the default budget allows retries for 20% of them plus 10 a
// second (about 84% succeed over a few seconds). It passes with the other
// defaults of issue #9 item 5 — outlier ejection takes the failing endpoint
// out after a few failures and the retries cover those.
func TestRetryDefaultsOneOfThreeFailing(t *testing.T) {
	c := startControl(t)
	client := startClient(t, c, "client")
	apps := startCountingBackends(t, c, client, "backend", 3)
	apps[0].status.Store(http.StatusServiceUnavailable)

	const n = 2000
	codes, _ := sendAll(client, n, getReq("http://backend/"))
	ok := count(codes, http.StatusOK)
	t.Logf("%d/%d OK; attempts %d (failing endpoint %d)", ok, n, attempts(apps), apps[0].requests.Load())
	if ok*1000 < n*999 {
		t.Errorf("%d of %d requests succeeded, want >= 99.9%% (needs the default outlier ejection besides the retries: see the comment)", ok, n)
	}
}

// TestRetryBudgetEveryEndpointFailing: with every endpoint failing, the
// default budget bounds the attempts and the client gets fast 503s.
func TestRetryBudgetEveryEndpointFailing(t *testing.T) {
	c := startControl(t)
	client := startClient(t, c, "client")
	apps := startCountingBackends(t, c, client, "backend", 3)
	for _, a := range apps {
		a.status.Store(http.StatusServiceUnavailable)
	}
	const n = 2000
	start := time.Now()
	codes, lat := sendAll(client, n, getReq("http://backend/"))
	elapsed := time.Since(start)
	got := attempts(apps)
	ms, err := client.metrics()
	if err != nil {
		t.Fatal(err)
	}
	// The budget counts every request the proxy sent to the service,
	// those that found the endpoints too (one attempt each, all 200).
	requests := int64(sum(ms, "http_client_request_duration_seconds_count", map[string]string{"destination_service": destService("backend")}))
	warmup := requests - n
	// The floor is 10 retries a second, counted over a 10 s window: 100 per
	// window, whichever is longer.
	floor := 10 * max(elapsed.Seconds(), 10)
	limit := 1.2*float64(requests) + floor
	t.Logf("%d requests (%d finding the endpoints) in %v: %d upstream attempts (limit %.0f)", requests, warmup, elapsed, got+warmup, limit)
	if float64(got+warmup) > limit {
		t.Errorf("%d upstream attempts for %d requests, want <= 1.2 × requests + floor = %.0f", got+warmup, requests, limit)
	}
	if got <= n {
		t.Errorf("%d upstream attempts for %d requests: nothing was retried", got, n)
	}
	if c503 := count(codes, http.StatusServiceUnavailable); c503 != n {
		t.Errorf("%d of %d requests got 503, want all", c503, n)
	}
	slices.Sort(lat)
	if p99 := lat[n*99/100]; p99 > 200*time.Millisecond {
		t.Errorf("p99 latency %v, want fast failures (< 200ms)", p99)
	}
	exhausted := sum(ms, "weft_proxy_retry_budget_exhausted_total", map[string]string{"destination_service": "backend.default"})
	retries := sum(ms, "weft_proxy_retries_total", map[string]string{"destination_service": "backend.default", "reason": "status"})
	if exhausted == 0 {
		t.Errorf("weft_proxy_retry_budget_exhausted_total = 0; have:%s", describe(ms, "weft_proxy_retry_budget_exhausted_total"))
	}
	if int64(retries) != got-n {
		t.Errorf("weft_proxy_retries_total{reason=status} = %v, want %d (attempts - requests)", retries, got-n)
	}
}

// TestRetryRouteCodes: an HTTPRoute retry retries exactly its codes.
func TestRetryRouteCodes(t *testing.T) {
	c := startControl(t)
	client := startClient(t, c, "client")
	apps := startCountingBackends(t, c, client, "backend", 2)
	c.apply(docYAML(t, "traffic/retries.md", docMarked("route-retry")))
	// Without the route, the default retries a GET's 500 too: wait for the
	// route to replace it (a 500 reaching one endpoint only).
	eventually(t, 10*time.Second, 50*time.Millisecond, "route retry applied", func() error {
		before := attempts(apps)
		client.get("http://backend/status/500")
		if d := attempts(apps) - before; d != 1 {
			return fmt.Errorf("a 500 took %d attempts", d)
		}
		return nil
	})
	const n = 20 // 2 retries for 2 of 5 batches: within the budget's floor
	for _, tc := range []struct {
		path         string
		wantAttempts int64
		wantStatus   int
	}{
		{"/status/503", 3 * n, http.StatusServiceUnavailable}, // 2 retries each
		{"/status/500", n, http.StatusInternalServerError},    // not listed
		{"/status/502", n, http.StatusBadGateway},
		{"/", n, http.StatusOK},
	} {
		before := attempts(apps)
		codes, _ := sendAll(client, n, getReq("http://backend"+tc.path))
		if got := attempts(apps) - before; got != tc.wantAttempts {
			t.Errorf("%s: %d attempts for %d requests, want %d", tc.path, got, n, tc.wantAttempts)
		}
		if got := count(codes, tc.wantStatus); got != n {
			t.Errorf("%s: %d of %d answered %d", tc.path, got, n, tc.wantStatus)
		}
	}
	// A POST matched by the rule is retried too (GEP-1731: any method).
	before := attempts(apps)
	codes, _ := sendAll(client, n, func(int) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, "http://backend/status/503", strings.NewReader("x"))
		return req
	})
	if got := attempts(apps) - before; got != 3*n || count(codes, 503) != n {
		t.Errorf("POST 503: %d attempts (want %d), %d answered 503", got, 3*n, count(codes, 503))
	}
}

// TestTimeouts: timeouts.request bounds the whole request; backendRequest
// bounds each attempt, which is retried on another endpoint.
func TestTimeouts(t *testing.T) {
	c := startControl(t)
	client := startClient(t, c, "client")
	slow := startCountingBackends(t, c, client, "slow", 1)
	backends := startCountingBackends(t, c, client, "backend", 2)
	slow[0].delay.Store(int64(time.Second))
	c.apply(docYAML(t, "traffic/timeouts.md", docMarked("timeouts")))
	c.apply(docYAML(t, "traffic/timeouts.md", docMarked("backend-request")))

	t.Run("request", func(t *testing.T) {
		eventually(t, 10*time.Second, 50*time.Millisecond, "request timeout applied", func() error {
			r, err := client.get("http://slow/")
			if err != nil {
				return err
			}
			if r.code != http.StatusGatewayTimeout {
				return fmt.Errorf("status %d", r.code)
			}
			return nil
		})
		const n = 20
		for i := range n {
			start := time.Now()
			r, err := client.get("http://slow/")
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if r.code != http.StatusGatewayTimeout || r.header.Get("X-Weft-Reason") != "request-timeout" {
				t.Errorf("request %d: %d x-weft-reason %q, want 504 request-timeout", i, r.code, r.header.Get("X-Weft-Reason"))
			}
			if took < 100*time.Millisecond || took > 150*time.Millisecond {
				t.Errorf("request %d: answered after %v, want 100-150ms", i, took)
			}
		}
	})

	t.Run("backendRequest", func(t *testing.T) {
		backends[0].delay.Store(int64(time.Second))
		const n = 40
		start := time.Now()
		codes, lat := sendAll(client, n, getReq("http://backend/"))
		t.Logf("%d requests in %v; slow endpoint %d attempts, fast %d", n, time.Since(start), backends[0].requests.Load(), backends[1].requests.Load())
		if ok := count(codes, http.StatusOK); ok != n {
			t.Errorf("%d of %d succeeded, want all (the slow attempt retried on the fast endpoint)", ok, n)
		}
		if backends[0].requests.Load() == 0 {
			t.Error("the slow endpoint got no attempt: nothing was bounded")
		}
		slices.Sort(lat)
		if worst := lat[n-1]; worst > 600*time.Millisecond {
			t.Errorf("slowest request took %v, want about backendRequest (200ms) + a fast attempt", worst)
		}
		ms, err := client.metrics()
		if err != nil {
			t.Fatal(err)
		}
		if got := sum(ms, "weft_proxy_retries_total", map[string]string{"destination_service": "backend.default", "reason": "backend-request-timeout"}); got == 0 {
			t.Errorf("no retry counted for backend-request-timeout; have:%s", describe(ms, "weft_proxy_retries_total"))
		}
		if got := sum(ms, "weft_proxy_timeouts_total", map[string]string{"destination_service": "slow.default", "timeout": "request"}); got < 20 {
			t.Errorf("weft_proxy_timeouts_total{slow, request} = %v, want >= 20; have:%s", got, describe(ms, "weft_proxy_timeouts_total"))
		}
	})
}

// TestRetryBodies: a POST whose body fits maxBufferedBodyBytes is retried
// with its body intact; a larger one is not retried.
func TestRetryBodies(t *testing.T) {
	c := startControl(t)
	client := startClient(t, c, "client")
	apps := startCountingBackends(t, c, client, "orders", 2)
	apps[0].status.Store(http.StatusServiceUnavailable)
	post := func(size int) func(int) *http.Request {
		return func(int) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, "http://orders/", strings.NewReader(strings.Repeat("b", size)))
			return req
		}
	}
	// The default retries a GET's 503 on the other endpoint...
	codes, _ := sendAll(client, 20, getReq("http://orders/"))
	if ok := count(codes, http.StatusOK); ok != 20 {
		t.Fatalf("%d of 20 GETs succeeded with the default retries, want all", ok)
	}
	// ...not a POST's.
	codes, _ = sendAll(client, 20, post(100))
	if count(codes, http.StatusServiceUnavailable) == 0 {
		t.Fatalf("no POST failed before the policy: %v", codes)
	}
	// The mesh-wide switch turns the default off: GETs fail too.
	c.apply(docYAML(t, "traffic/retries.md", docMarked("defaults-off")))
	eventually(t, 10*time.Second, 50*time.Millisecond, "default retries off", func() error {
		codes, _ := sendAll(client, 10, getReq("http://orders/"))
		if count(codes, http.StatusServiceUnavailable) == 0 {
			return fmt.Errorf("no GET failed: %v", codes)
		}
		return nil
	})
	// A DestinationPolicy retry still applies.
	c.apply(docYAML(t, "traffic/retries.md", docMarked("destination-retry")))
	eventually(t, 10*time.Second, 50*time.Millisecond, "policy applied", func() error {
		codes, _ := sendAll(client, 10, post(100))
		if ok := count(codes, http.StatusOK); ok != 10 {
			return fmt.Errorf("%d of 10 small POSTs succeeded", ok)
		}
		return nil
	})

	const n = 40
	for _, tc := range []struct {
		name    string
		size    int
		retried bool
	}{
		{"under the bound", 1000, true},
		{"over the bound", 4096, false},
	} {
		before, beforeFast := attempts(apps), apps[1].bodies.Load()
		codes, _ := sendAll(client, n, post(tc.size))
		got := attempts(apps) - before
		ok := count(codes, http.StatusOK)
		if tc.retried {
			if ok != n {
				t.Errorf("%s: %d of %d succeeded, want all", tc.name, ok, n)
			}
			if got <= n {
				t.Errorf("%s: %d attempts for %d requests: nothing was retried", tc.name, got, n)
			}
			if b := apps[1].bodies.Load() - beforeFast; b != int64(n*tc.size) {
				t.Errorf("%s: the healthy endpoint received %d body bytes, want %d (every body whole)", tc.name, b, n*tc.size)
			}
			continue
		}
		if got != n {
			t.Errorf("%s: %d attempts for %d requests, want no retry", tc.name, got, n)
		}
		if failed := count(codes, http.StatusServiceUnavailable); failed == 0 || ok+failed != n {
			t.Errorf("%s: %d OK and %d 503 of %d, want the failing endpoint's 503s returned", tc.name, ok, failed, n)
		}
	}
}

// flakyGreeter answers Hello with UNAVAILABLE on every other call (the
// odd-numbered ones) while flaky is set.
type flakyGreeter struct {
	demov1.UnimplementedGreeterServer
	flaky atomic.Bool
	calls atomic.Int64
}

func (g *flakyGreeter) Hello(_ context.Context, req *demov1.HelloRequest) (*demov1.HelloReply, error) {
	if n := g.calls.Add(1); g.flaky.Load() && n%2 == 1 {
		return nil, status.Error(codes.Unavailable, "flaky greeter")
	}
	return &demov1.HelloReply{Message: "hello " + req.GetName()}, nil
}

// TestRetryGRPCUnavailable: a DestinationPolicy retrying UNAVAILABLE hides
// a greeter that fails every other call; without it those calls fail.
//
// One endpoint keeps the counts exact whatever the balancer picks: n calls
// without a policy are n attempts, half of them failed; with the policy
// every failed attempt is retried on the same greeter, whose next call
// succeeds.
func TestRetryGRPCUnavailable(t *testing.T) {
	c := startControl(t)
	g := &flakyGreeter{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	demov1.RegisterGreeterServer(srv, g)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	startWorkload(t, c, wlOpts{service: "greeter", appPort: ln.Addr().(*net.TCPAddr).Port, appProtocol: "grpc", cmd: []string{"sleep", "3600"}})
	client := startClient(t, c, "client")
	cc, err := grpc.NewClient("passthrough:///greeter:80",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(connectDialer(addr(client.outbound))))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	gc := demov1.NewGreeterClient(cc)
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := gc.Hello(ctx, &demov1.HelloRequest{Name: "retry"})
		return err
	}
	eventually(t, 20*time.Second, 20*time.Millisecond, "greeter reached", call)
	g.flaky.Store(true)
	const n = 40
	before := g.calls.Load()
	failed := 0
	for range n {
		if err := call(); status.Code(err) == codes.Unavailable {
			failed++
		} else if err != nil {
			t.Fatalf("call without a policy: %v, want OK or UNAVAILABLE", err)
		}
	}
	if attempts := g.calls.Load() - before; attempts != n || failed != n/2 {
		t.Fatalf("without a policy: %d attempts and %d UNAVAILABLE for %d calls, want %d and %d: the default must not retry gRPC statuses", attempts, failed, n, n, n/2)
	}
	c.apply(docYAML(t, "traffic/retries.md", docMarked("grpc-retry")))
	eventually(t, 10*time.Second, 50*time.Millisecond, "policy applied", func() error {
		for i := range 10 {
			if err := call(); err != nil {
				return fmt.Errorf("call %d: %w", i, err)
			}
		}
		return nil
	})
	before = g.calls.Load()
	for i := range n {
		if err := call(); err != nil {
			t.Errorf("call %d with the policy: %v", i, err)
		}
	}
	if attempts := g.calls.Load() - before; attempts <= n {
		t.Errorf("with the policy: %d attempts for %d calls, want retries of the failed ones", attempts, n)
	}
	ms, err := client.metrics()
	if err != nil {
		t.Fatal(err)
	}
	if got := sum(ms, "weft_proxy_retries_total", map[string]string{"destination_service": "greeter.default", "reason": "grpc-status"}); got == 0 {
		t.Errorf("no retry counted for grpc-status; have:%s", describe(ms, "weft_proxy_retries_total"))
	}
}
