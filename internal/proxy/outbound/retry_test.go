package outbound

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"weft.dev/weft/internal/xdsapi/weftv1"
)

// TestAttemptLoop checks the attempt loop end to end in process: how many
// attempts reach the apps and what the client gets, per retry setting.
func TestAttemptLoop(t *testing.T) {
	var hits atomic.Int64
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		n, _ := io.Copy(io.Discard, r.Body)
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			time.Sleep(d)
		}
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if code == 0 {
			code = 200
		}
		w.WriteHeader(code)
		io.WriteString(w, strconv.FormatInt(n, 10))
	})
	m := newMesh(t)
	m.addService(svc("api"))
	m.addWorkload(t, "api", startApp(t, app))
	m.addWorkload(t, "api", startApp(t, app))
	m.commit(t)
	m.startOutbound(t, nil)

	u32 := func(v uint32) *uint32 { return &v }
	chunked := func(size int) io.Reader { return io.MultiReader(strings.NewReader(strings.Repeat("c", size))) }
	tests := []struct {
		name     string
		retry    *weftv1.ServiceRetry
		route    *weftv1.Route
		method   string
		path     string
		body     io.Reader
		wantCode int
		wantHits int64
		// wantReason is the x-weft-reason header of the answer.
		wantReason string
	}{
		{name: "default GET 503", method: "GET", path: "/503", wantCode: 503, wantHits: 3},
		{name: "default GET 404", method: "GET", path: "/404", wantCode: 404, wantHits: 1},
		{name: "default POST 503", method: "POST", path: "/503", body: strings.NewReader("x"), wantCode: 503, wantHits: 1},
		{name: "attempts 0", retry: &weftv1.ServiceRetry{Attempts: u32(0)}, method: "GET", path: "/503", wantCode: 503, wantHits: 1},
		{name: "retryOn applies to POST", retry: &weftv1.ServiceRetry{Attempts: u32(1), RetryOn: []string{"gateway-error"}}, method: "POST", path: "/503", body: strings.NewReader("x"), wantCode: 503, wantHits: 2},
		{name: "retryOn 5xx skips 404", retry: &weftv1.ServiceRetry{RetryOn: []string{"5xx"}}, method: "GET", path: "/404", wantCode: 404, wantHits: 1},
		{name: "chunked body within bound", retry: &weftv1.ServiceRetry{Attempts: u32(1), RetryOn: []string{"5xx"}, MaxBufferedBodyBytes: u32(1000)}, method: "POST", path: "/503", body: chunked(900), wantCode: 503, wantHits: 2},
		{name: "chunked body over bound", retry: &weftv1.ServiceRetry{Attempts: u32(1), RetryOn: []string{"5xx"}, MaxBufferedBodyBytes: u32(1000)}, method: "POST", path: "/503", body: chunked(5000), wantCode: 503, wantHits: 1},
		{name: "no body kept", retry: &weftv1.ServiceRetry{Attempts: u32(1), RetryOn: []string{"5xx"}, MaxBufferedBodyBytes: u32(0)}, method: "POST", path: "/503", body: strings.NewReader("x"), wantCode: 503, wantHits: 1},
		{name: "per-try timeout retried", route: &weftv1.Route{Name: "r", BackendRequestTimeoutMs: 30}, method: "GET", path: "/?sleep=200ms", wantCode: 504, wantHits: 3, wantReason: "backend-request-timeout"},
		{name: "request timeout", route: &weftv1.Route{Name: "r", TimeoutMs: 50}, method: "GET", path: "/?sleep=200ms", wantCode: 504, wantHits: 1, wantReason: "request-timeout"},
		{name: "route codes", route: &weftv1.Route{Name: "r", Retry: &weftv1.RouteRetry{Attempts: 1, Codes: []uint32{500}}}, method: "GET", path: "/500", wantCode: 500, wantHits: 2},
		{name: "route codes replace the default", route: &weftv1.Route{Name: "r", Retry: &weftv1.RouteRetry{Attempts: 1, Codes: []uint32{500}}}, method: "GET", path: "/503", wantCode: 503, wantHits: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := svc("api")
			s.Retry = tt.retry
			if tt.route != nil {
				tt.route.Backends = []*weftv1.Backend{backend("api", 1)}
				s.Routes = []*weftv1.Route{tt.route}
			}
			m.services[0] = s
			m.commit(t)
			req, err := http.NewRequest(tt.method, "http://api"+tt.path, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			hits.Store(0)
			resp, err := m.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode || hits.Load() != tt.wantHits {
				t.Errorf("got %d after %d attempts, want %d after %d", resp.StatusCode, hits.Load(), tt.wantCode, tt.wantHits)
			}
			if got := resp.Header.Get("X-Weft-Reason"); got != tt.wantReason {
				t.Errorf("x-weft-reason %q, want %q", got, tt.wantReason)
			}
		})
	}
}

// TestMaxConcurrentRetries: with maxConcurrentRetries 1, of four requests
// failing at once only one is retried while its retry is in flight; the
// others get their 503 at once, counted as budget exhaustion.
func TestMaxConcurrentRetries(t *testing.T) {
	const n = 4
	var arrivals atomic.Int64
	barrier := make(chan struct{})
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch a := arrivals.Add(1); {
		case a < n:
			<-barrier // the first attempts fail together
		case a == n:
			close(barrier)
		default:
			time.Sleep(300 * time.Millisecond) // a retry holds its slot
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	m := newMesh(t)
	s := svc("api")
	s.MaxConcurrentRetries = 1
	m.addService(s)
	m.addWorkload(t, "api", startApp(t, app))
	m.addWorkload(t, "api", startApp(t, app))
	m.commit(t)
	m.startOutbound(t, nil)

	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := m.client.Get("http://api/")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("status %d, want 503", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	// One request retried twice, one retry at a time; three refused.
	if got := arrivals.Load(); got != n+2 {
		t.Errorf("%d attempts, want %d", got, n+2)
	}
	want := `# HELP weft_proxy_retry_budget_exhausted_total Retries not sent because the destination's retry budget (or maxConcurrentRetries) was used up; the failed attempt was returned as is.
# TYPE weft_proxy_retry_budget_exhausted_total counter
weft_proxy_retry_budget_exhausted_total{destination_service="api.default"} 3
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "weft_proxy_retry_budget_exhausted_total"); err != nil {
		t.Error(err)
	}
}
