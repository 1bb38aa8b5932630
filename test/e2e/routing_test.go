package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// routingMesh starts a control plane, backends v1 and v2 (Services
// backend-v1 and backend-v2 select them) and a client, and waits until the
// client reaches both versions through Service backend.
func routingMesh(t *testing.T) (*control, *workload) {
	t.Helper()
	c := startControl(t)
	startBackend(t, c, "v1")
	startBackend(t, c, "v2")
	client := startClient(t, c, "client")
	waitBothVersions(t, client)
	return c, client
}

// versionCounts sends n GET / requests for backend through client, conc at a
// time, and counts the versions that answered; any other outcome fails.
func versionCounts(t *testing.T, client *workload, n, conc int) map[string]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	var firstErr error
	var wg sync.WaitGroup
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	for range conc {
		wg.Go(func() {
			for range next {
				br, err := client.getBackend("http://backend/")
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				counts[br.Version]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("%d requests: %v (counts %v)", n, firstErr, counts)
	}
	return counts
}

// TestRoutingCanary: the docs' 90/10 canary sends 10% ± 3% of 2,000
// requests to v2; changing it to 50/50 takes effect within 1 s of the
// start of `weft apply`, after which the split is 50% ± 5%.
func TestRoutingCanary(t *testing.T) {
	c, client := routingMesh(t)
	canary := docYAML(t, "traffic/routing.md", docExample("canary"))
	c.apply(versionServices + "---\n" + canary)
	eventually(t, 5*time.Second, 50*time.Millisecond, "90/10 in effect", func() error {
		if got := versionCounts(t, client, 100, 4); got["v2"] > 25 {
			return fmt.Errorf("v2 got %d of 100, want about 10", got["v2"])
		}
		return nil
	})
	const n = 2000
	counts := versionCounts(t, client, n, 4)
	share := float64(counts["v2"]) / n
	t.Logf("90/10: %v over %d requests: v2 %.1f%%", counts, n, 100*share)
	if share < 0.07 || share > 0.13 || counts["v1"]+counts["v2"] != n {
		t.Fatalf("90/10 canary: %v, want v2 at 10%% ± 3%%", counts)
	}

	// Switch to 50/50 and find when it took effect: the first request from
	// which a window of 100 has at least 30 v2 answers (under 90/10 that is
	// more than 6 standard deviations away; under 50/50 4 below the mean).
	even := strings.Replace(strings.Replace(canary, "weight: 90", "weight: 50", 1), "weight: 10", "weight: 50", 1)
	start := time.Now()
	c.apply(versionServices + "---\n" + even)
	type answer struct {
		at time.Time
		v2 bool
	}
	var answers []answer
	const window = 100
	switched := -1
	for len(answers) < 3000 && switched < 0 {
		br, err := client.getBackend("http://backend/")
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, answer{time.Now(), br.Version == "v2"})
		if i := len(answers) - window; i >= 0 {
			v2 := 0
			for _, a := range answers[i:] {
				if a.v2 {
					v2++
				}
			}
			if v2 >= 30 {
				switched = i
			}
		}
	}
	if switched < 0 {
		t.Fatalf("50/50 not in effect after %d requests (%s)", len(answers), time.Since(start))
	}
	took := answers[switched].at.Sub(start)
	t.Logf("50/50 in effect %s after weft apply started", took)
	if took > time.Second {
		t.Errorf("the change to 50/50 took %s, want at most 1s", took)
	}
	counts = versionCounts(t, client, 1000, 4)
	t.Logf("50/50: %v over 1000 requests", counts)
	if counts["v2"] < 450 || counts["v2"] > 550 {
		t.Fatalf("50/50: %v, want v2 at 50%% ± 5%%", counts)
	}
}

// TestRoutingPrecedence applies the docs' table of conflicting rules and
// checks, 10 times per request, that the rule the Gateway API ordering
// names (exact, regex, longest prefix, method, headers, query parameters)
// answers: each rule tags its responses with x-rule.
func TestRoutingPrecedence(t *testing.T) {
	c, client := routingMesh(t)
	c.apply(versionServices + "---\n" + docYAML(t, "traffic/routing.md", docExample("precedence")))
	const ff = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	tests := []struct {
		method, path string
		hdr          []string
		want         string
	}{
		{"GET", "/echo/x", nil, "prefix"},
		{"GET", "/echo/items/x", nil, "longer-prefix"},
		{"GET", "/echo/items/7", nil, "regex"},
		{"GET", "/echo/items/42", nil, "exact"},
		{"POST", "/echo/items/x", nil, "longer-prefix"},
		{"POST", "/echo/x", []string{"x-tenant", "acme"}, "method"},
		{"GET", "/echo/x", []string{"x-tenant", "acme"}, "header"},
		{"GET", "/echo/x?v=2", []string{"x-tenant", "acme"}, "header"},
		{"GET", "/echo/x?v=2", nil, "query"},
		{"GET", "/echo/x?id=12", nil, "query-regex"},
		{"GET", "/echo/x?id=12a", nil, "prefix"},
		{"GET", "/echo/x", []string{"user-agent", ff}, "header-regex"},
	}
	eventually(t, 5*time.Second, 50*time.Millisecond, "precedence route in effect", func() error {
		r, err := client.get("http://backend/echo/items/42")
		if err != nil {
			return err
		}
		if got := r.header.Get("x-rule"); r.code != 200 || got != "exact" {
			return fmt.Errorf("status %d, x-rule %q", r.code, got)
		}
		return nil
	})
	for _, tt := range tests {
		got := map[string]int{}
		for range 10 {
			r, err := client.do(tt.method, "http://backend"+tt.path, tt.hdr...)
			if err != nil {
				t.Fatal(err)
			}
			got[fmt.Sprintf("%d %s", r.code, r.header.Get("x-rule"))]++
		}
		if want := "200 " + tt.want; got[want] != 10 {
			t.Errorf("%s %s %v: answers %v, want 10 × %q", tt.method, tt.path, tt.hdr, got, want)
		}
	}
}

// echoReply is the demo backend's /echo/ answer.
type echoReply struct {
	Method, Host, Path, Query string
	Header                    map[string][]string
}

// TestRoutingFilters applies the docs' filter example: a redirect with a
// prefix replacement, and a rule that rewrites host and path, modifies
// request headers (rule and backendRef) and response headers. Every one of
// 20 requests of each kind must show every effect.
func TestRoutingFilters(t *testing.T) {
	c, client := routingMesh(t)
	c.apply(versionServices + "---\n" + docYAML(t, "traffic/filters.md", docMarked("filters")))
	eventually(t, 5*time.Second, 50*time.Millisecond, "filters in effect", func() error {
		r, err := client.get("http://backend/old/a?x=1")
		if err != nil {
			return err
		}
		if r.code != 301 {
			return fmt.Errorf("status %d", r.code)
		}
		return nil
	})
	// The redirect rule has no backendRefs and needs none: its status does
	// not report it as answering 500.
	g := c.cli("get", "httproute", "backend-filters", "-o", "yaml")
	if out := strings.Join(strings.Fields(g.stdout), " "); g.code != 0 || !strings.Contains(out, "type: ResolvedRefs status: \"True\"") && !strings.Contains(out, "status: \"True\" type: ResolvedRefs") || strings.Contains(out, "answered 500") {
		t.Errorf("weft get httproute backend-filters -o yaml: want ResolvedRefs True and no rule answering 500:\n%s", g)
	}
	for i := range 20 {
		r, err := client.get("http://backend/old/a?x=1")
		if err != nil {
			t.Fatal(err)
		}
		if loc := r.header.Get("Location"); r.code != 301 || loc != "http://backend/echo/new/a?x=1" {
			t.Fatalf("redirect %d: status %d, Location %q; want 301 to http://backend/echo/new/a?x=1", i, r.code, loc)
		}
		r, err = client.get("http://backend/api/items?q=1", "x-debug", "1", "x-trace", "app")
		if err != nil {
			t.Fatal(err)
		}
		var e echoReply
		if err := json.Unmarshal([]byte(r.body), &e); r.code != 200 || err != nil {
			t.Fatalf("rewrite %d: status %d, %v: %.300s", i, r.code, err, r.body)
		}
		if e.Host != "backend.internal" || e.Path != "/echo/v1/items" || e.Query != "q=1" {
			t.Fatalf("rewrite %d: backend saw host %q path %q query %q, want backend.internal /echo/v1/items q=1", i, e.Host, e.Path, e.Query)
		}
		h := e.Header
		if !slices.Equal(h["X-Env"], []string{"prod"}) || !slices.Equal(h["X-Trace"], []string{"app", "weft"}) || !slices.Equal(h["X-Backend"], []string{"v1"}) || h["X-Debug"] != nil {
			t.Fatalf("rewrite %d: backend saw headers %v, want x-env prod, x-trace app+weft, x-backend v1, no x-debug", i, h)
		}
		if got := r.header.Get("x-served-by"); got != "weft" {
			t.Fatalf("rewrite %d: response x-served-by %q, want weft", i, got)
		}
	}
	samples, err := client.metrics()
	if err != nil {
		t.Fatal(err)
	}
	if n := sum(samples, "weft_route_redirects_total", map[string]string{"route": "default/backend-filters/0"}); n < 20 {
		t.Errorf("weft_route_redirects_total = %v, want at least 20:%s", n, describe(samples, "weft_route_redirects_total"))
	}
}
