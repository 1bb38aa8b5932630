package dashboard

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"weft.dev/weft/internal/control/dashboard/browsertest"
	"weft.dev/weft/internal/control/stats"
	"weft.dev/weft/internal/proxy/observe"
)

// syntheticGraph is one interval of a layered mesh of 5 × 40 services in
// which each service calls 7 of the next layer, cut at edges calls;
// svc-4-0 fails half of its requests and its callers pass the failures on.
// bump changes the numbers, not the shape.
func syntheticGraph(edges, bump int) map[stats.Key]stats.Counts {
	inc := map[stats.Key]stats.Counts{}
	name := func(layer, i int) string { return fmt.Sprintf("svc-%d-%d.default", layer, i) }
	for layer := 0; layer < 4; layer++ {
		for j := 0; j < 40; j++ {
			for k := 0; k < 7; k++ {
				if len(inc) == edges {
					return inc
				}
				dst := name(layer+1, (j+7*k)%40)
				c := stats.Counts{Requests: float64(10*(1+j%5) + 2*bump)} // even: counts are whole numbers
				if dst == name(4, 0) {
					c.Failures = c.Requests / 2
				}
				c.Buckets[2], c.Buckets[4] = c.Requests/2, c.Requests/2
				inc[stats.Key{Side: stats.Outbound, Source: name(layer, j), Destination: dst}] = c
			}
		}
	}
	return inc
}

// TestBrowserGraph1000Edges draws a 1,000-edge graph in headless Chromium:
// the first render (layout) and a poll's update (fetch, decode, render)
// each take under a second, the culprit is marked and its callers are not,
// and the page breaks no Content-Security-Policy rule.
func TestBrowserGraph1000Edges(t *testing.T) {
	b := browsertest.New(t, 90*time.Second)
	m := startTestMesh(t, Options{})
	now := time.Now()
	for i := 5; i >= 0; i-- {
		m.store.Append(now.Add(-time.Duration(i)*10*time.Second), syntheticGraph(1000, i))
	}
	b.Do("opening the dashboard with a login link",
		chromedp.Navigate(m.srv.URL+"/dashboard/#login="+m.loginToken(t)),
		chromedp.WaitVisible(chromedp.CSS(`#graph svg`)))
	type renderStats struct {
		Renders, Layouts int
		LastMs, UpdateMs float64
		LastKind         string
	}
	first := browsertest.Eval[renderStats](b, `weftDashboard.stats`)
	counts := browsertest.Eval[[]int](b, `[document.querySelectorAll('#graph g.edge').length, document.querySelectorAll('#graph g.node').length, document.querySelectorAll('#services tbody tr').length]`)
	if counts[0] != 1000 || counts[1] != 200 || counts[2] != 200 {
		t.Fatalf("drawn: %d edges, %d nodes, %d table rows; want 1000, 200, 200", counts[0], counts[1], counts[2])
	}
	if first.LastKind != "layout" || first.UpdateMs >= 1000 {
		t.Errorf("first render: %+v, want a layout in under 1000 ms", first)
	}
	b.Screenshot("graph-1000-edges")

	// The next interval: same services and calls, new numbers.
	m.store.Append(time.Now(), syntheticGraph(1000, 40))
	type timing struct {
		Ms       float64
		Kind     string
		UpdateMs float64
		Label    string
	}
	upd := browsertest.Eval[timing](b, `(async () => {
		const t = performance.now();
		await weftDashboard.refresh();
		await new Promise((r) => requestAnimationFrame(() => r()));
		return {ms: performance.now() - t, kind: weftDashboard.stats.lastKind, updateMs: weftDashboard.stats.updateMs,
			label: document.querySelector('#graph g.edge text').textContent};
	})()`)
	if upd.Kind != "update" || upd.Ms >= 1000 {
		t.Errorf("update: %+v, want an in-place update in under 1000 ms", upd)
	}
	t.Logf("1000 edges, 200 services: first render %.0f ms (layout and draw %.0f ms); update %.0f ms to the next frame (fetch+render %.0f ms); an edge label: %q",
		first.UpdateMs, first.LastMs, upd.Ms, upd.UpdateMs, upd.Label)

	culprits := browsertest.Eval[[]string](b, `[...document.querySelectorAll('#graph g.node[data-culprit="true"]')].map((g) => g.dataset.service)`)
	if len(culprits) != 1 || culprits[0] != "svc-4-0.default" {
		t.Errorf("nodes marked culprit: %v, want [svc-4-0.default]", culprits)
	}
	verdict := browsertest.Eval[string](b, `document.querySelector('#verdicts').textContent`)
	if want := "svc-4-0.default is failing 50% of requests"; !strings.Contains(verdict, want) {
		t.Errorf("verdict banner %q, want it to say %q", verdict, want)
	}
	if first := browsertest.Eval[string](b, `document.querySelector('#services tbody tr').dataset.service`); first != "svc-4-0.default" {
		t.Errorf("the services table starts with %s, want the culprit", first)
	}
	type labels struct{ Bad, Shown int }
	l := browsertest.Eval[labels](b, `({bad: document.querySelectorAll('#graph g.edge.bad').length,
		shown: [...document.querySelectorAll('#graph g.edge text')].filter((t) => t.getBBox().width > 0).length})`)
	if l.Bad == 0 || l.Shown != l.Bad {
		t.Errorf("%d edges drawn as failing, %d labels shown: want the failing edges into the culprit, and only their labels", l.Bad, l.Shown)
	}
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

// TestBrowserServicePage opens a service's page: its three charts have
// data, its endpoint, route and proxy state are listed.
func TestBrowserServicePage(t *testing.T) {
	b := browsertest.New(t, 60*time.Second)
	m := startTestMesh(t, Options{})
	now := time.Now()
	for i := 5; i >= 0; i-- {
		c := stats.Counts{Requests: float64(50 + 10*i), Failures: float64(i)}
		c.Buckets[1], c.Buckets[5] = c.Requests-5, 5
		m.store.Append(now.Add(-time.Duration(i)*10*time.Second), map[stats.Key]stats.Counts{
			{Side: stats.Inbound, Source: "frontend.default", Destination: "backend.default", Route: "backend-split"}:  c,
			{Side: stats.Outbound, Source: "frontend.default", Destination: "backend.default", Route: "backend-split"}: c,
		})
	}
	b.Do("opening the backend's page",
		chromedp.Navigate(m.srv.URL+"/dashboard/#login="+m.loginToken(t)),
		chromedp.WaitVisible(chromedp.CSS(`#graph svg`)),
		chromedp.Click(chromedp.CSS(`#graph g.node[data-service="backend.default"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#charts svg`)),
		chromedp.WaitVisible(chromedp.CSS(`#endpoints table`)))
	charts := browsertest.Eval[[]map[string]any](b, `[...document.querySelectorAll('#charts svg')].map((s) => ({label: s.getAttribute('aria-label'), points: +s.dataset.points, paths: s.querySelectorAll('path.series').length}))`)
	if len(charts) != 3 {
		t.Fatalf("charts: %v, want 3", charts)
	}
	for i, want := range []float64{1, 1, 3} {
		if charts[i]["points"].(float64) < 6*want || charts[i]["paths"].(float64) != want {
			t.Errorf("chart %v: want %v series of at least 6 points", charts[i], want)
		}
	}
	text := browsertest.Eval[string](b, `document.querySelector('main').textContent`)
	for _, want := range []string{"backend-1", "spiffe://cluster.local/ns/default/sa/backend", "synced", "backend-split", "HTTPRoute"} {
		if !strings.Contains(text, want) {
			t.Errorf("service page lacks %q", want)
		}
	}
	b.Screenshot("service-backend")
	b.Do("opening the proxies page", chromedp.Navigate(m.srv.URL+"/dashboard/#/proxies"), chromedp.WaitVisible(chromedp.CSS(`#proxies table`)))
	row := browsertest.Eval[string](b, `document.querySelector('#proxies tr[data-proxy="backend-1"]').textContent`)
	for _, want := range []string{"synced", "Service 7", "in 2"} {
		if !strings.Contains(row, want) {
			t.Errorf("proxies row %q lacks %q", row, want)
		}
	}
	b.Screenshot("proxies")
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

// TestBrowserLogin: without a session the page says how to sign in; a
// login link signs in, leaves no token in the address bar and a cookie no
// script can read; the same link a second time is refused.
func TestBrowserLogin(t *testing.T) {
	b := browsertest.New(t, 60*time.Second)
	m := startTestMesh(t, Options{})
	const signedOut = `document.querySelector('main h1')?.textContent === 'Not signed in'`
	b.Do("opening the dashboard signed out", chromedp.Navigate(m.srv.URL+"/dashboard/"))
	b.WaitTrue("the page saying it is not signed in", signedOut, 10*time.Second)
	link := m.srv.URL + "/dashboard/#login=" + m.loginToken(t)
	b.Do("opening a login link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`#graph svg`)))
	type page struct{ Hash, Cookie string }
	if p := browsertest.Eval[page](b, `({hash: location.hash, cookie: document.cookie})`); p.Hash != "#/" || p.Cookie != "" {
		t.Errorf("after login: %+v, want hash #/ and no cookie visible to scripts", p)
	}
	// Another profile has no session: the spent link fails there.
	b2 := b.NewProfile()
	b2.Do("opening the spent link in another browser", chromedp.Navigate(link))
	b2.WaitTrue("the page refusing a spent link", signedOut, 10*time.Second)
	if msg := browsertest.Eval[string](b2, `document.querySelector('#login-error').textContent`); !strings.Contains(msg, "unknown, used or expired") {
		t.Errorf("refused login says %q", msg)
	}
}

// TestBrowserTap opens the tap page of a service from its page: requests
// through its proxy appear in the live table within a few seconds, with
// source → destination, method, path, status, latency, route and
// decisions; the status filter reaches the proxy.
func TestBrowserTap(t *testing.T) {
	b := browsertest.New(t, 60*time.Second)
	m, hub := tapMesh(t, Options{})
	c := stats.Counts{Requests: 40}
	c.Buckets[1] = 40
	m.store.Append(time.Now(), map[stats.Key]stats.Counts{{Side: stats.Inbound, Source: "frontend.default", Destination: "backend.default"}: c})
	b.Do("opening the backend's page and its tap link",
		chromedp.Navigate(m.srv.URL+"/dashboard/#login="+m.loginToken(t)),
		chromedp.WaitVisible(chromedp.CSS(`#graph svg`)),
		chromedp.Navigate(m.srv.URL+"/dashboard/#/service/backend.default"),
		chromedp.WaitVisible(chromedp.CSS(`#tap-link`)),
		chromedp.Click(chromedp.CSS(`#tap-link`)),
		chromedp.WaitVisible(chromedp.CSS(`#tap-table`)))
	b.WaitTrue("the tap stream live", `weftDashboard.page().stats.state === 'live'`, 10*time.Second)
	// Publish requests until the page shows one (the relay subscribes to
	// the proxy just after the stream opens), then time one more.
	publish := func(path string, status int) {
		hub.Publish(&observe.Event{Time: time.Now(), Side: "server", Source: "frontend.default", Destination: "backend.default",
			Method: "GET", Path: path, Status: status, Duration: observe.Millis(12 * time.Millisecond), Route: "default/backend-api/0",
			Decisions: []observe.Decision{{Stage: "route", Detail: "default/backend-api/0"}}})
	}
	for end := time.Now().Add(5 * time.Second); browsertest.Eval[int](b, `document.querySelectorAll('#tap-rows tr').length`) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("no tapped request appeared in the page within 5 s")
		}
		publish("/warm", 200)
	}
	sent := time.Now()
	publish("/api/orders/7", 503)
	b.WaitTrue("the 503 in the table", `!!document.querySelector('#tap-rows tr[data-path="/api/orders/7"]')`, 3*time.Second)
	t.Logf("request to row: %v", time.Since(sent))
	row := browsertest.Eval[string](b, `document.querySelector('#tap-rows tr[data-path="/api/orders/7"]').textContent`)
	for _, want := range []string{"server", "frontend → backend", "GET", "/api/orders/7", "503", "12 ms", "default/backend-api/0", "route=default/backend-api/0"} {
		if !strings.Contains(row, want) {
			t.Errorf("tap row %q lacks %q", row, want)
		}
	}
	if cls := browsertest.Eval[string](b, `document.querySelector('#tap-rows tr[data-path="/api/orders/7"]').className`); cls != "bad" {
		t.Errorf("503 row class %q, want bad", cls)
	}
	b.Screenshot("tap")

	// With status 5xx, the proxy sends only failures.
	b.Do("restarting with --status 5xx",
		chromedp.Click(chromedp.CSS(`#tap-stop`)),
		chromedp.SetValue(chromedp.CSS(`#tap-status`), "5xx"),
		chromedp.Click(chromedp.CSS(`#tap-start`)))
	b.WaitTrue("the filtered stream live", `weftDashboard.page().stats.state === 'live'`, 10*time.Second)
	before := browsertest.Eval[int](b, `weftDashboard.page().stats.events`)
	for end := time.Now().Add(5 * time.Second); browsertest.Eval[int](b, `weftDashboard.page().stats.events`) == before; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("no failure appeared in the filtered tap within 5 s")
		}
		publish("/ok-filtered", 200)
		publish("/fail-filtered", 500)
	}
	if n := browsertest.Eval[int](b, `document.querySelectorAll('#tap-rows tr[data-path="/ok-filtered"]').length`); n != 0 {
		t.Errorf("%d 200s shown with status 5xx", n)
	}
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}
