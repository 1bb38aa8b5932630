package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"weft.dev/weft/internal/control/dashboard/browsertest"
)

// TestDashboard opens the dashboard of `weft demo` in headless Chromium
// with the login link the demo prints: the graph lists the demo's services
// with non-zero rates; the "break backend" button makes backend fail half
// of its requests, and the graph then names backend (or its versions'
// Services) as the culprit, a verdict rising above 25%, while frontend,
// which passes the errors on, is not marked; the backend's page draws its charts; the proxies page lists
// the five proxies synced with their certificates; the tap page shows the
// backend's live requests within seconds. Screenshots of each page
// are kept (see browsertest.ArtifactsEnv).
func TestDashboard(t *testing.T) {
	b := browsertest.New(t, 4*time.Minute)
	dataDir := filepath.Join(t.TempDir(), "demo")
	p := startProc(t, "demo", nil, weftBin, "demo", "--data-dir", dataDir)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(dataDir, "logs", "*.log"))
		for _, f := range logs {
			b, _ := os.ReadFile(f)
			if len(b) > 3000 {
				b = b[len(b)-3000:]
			}
			t.Logf("==== %s (last 3 KB)\n%s", filepath.Base(f), b)
		}
	})
	linkRE := regexp.MustCompile(`Dashboard: (https://\S+/dashboard/#login=\S+)`)
	var link string
	eventually(t, 90*time.Second, 250*time.Millisecond, "the demo printing its dashboard link", func() error {
		if p.exited() {
			return stopErr{fmt.Errorf("demo exited: %v", p.err)}
		}
		out, _ := p.output()
		m := linkRE.FindStringSubmatch(out)
		if m == nil || !strings.Contains(out, "Press Ctrl-C") {
			return errors.New("not yet")
		}
		link = m[1]
		return nil
	})
	b.Do("opening the demo's login link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`#graph svg`)))
	if u := browsertest.Eval[string](b, `location.href`); strings.Contains(u, "login=") {
		t.Errorf("the login token stayed in the address bar: %s", u)
	}

	type node struct {
		Service string
		RPS     float64
		Culprit bool
	}
	nodes := func() []node {
		return browsertest.Eval[[]node](b, `[...document.querySelectorAll('#graph g.node')].map((g) => ({service: g.dataset.service, rps: +g.dataset.rps, culprit: g.dataset.culprit === 'true'}))`)
	}
	demo := []string{"backend.default", "frontend.default", "greeter.default"}
	eventually(t, 45*time.Second, time.Second, "the graph listing the demo's services with traffic", func() error {
		ns := nodes()
		for _, s := range demo {
			i := slices.IndexFunc(ns, func(n node) bool { return n.Service == s })
			if i < 0 || ns[i].RPS <= 0 {
				return fmt.Errorf("graph nodes %+v: want %s with a non-zero rate", ns, s)
			}
		}
		return nil
	})
	b.Screenshot("graph")

	b.Do("breaking backend", chromedp.Click(chromedp.CSS(`#break-backend`)), chromedp.WaitVisible(chromedp.CSS(`#break-backend[aria-pressed="true"]`)))
	if got, _ := os.ReadFile(filepath.Join(dataDir, "break", "backend")); strings.TrimSpace(string(got)) != "0.5" {
		t.Fatalf("break file after the click: %q, want 0.5", got)
	}
	// The demo's HTTPRoute splits backend's calls between the Services
	// backend-v1 and backend-v2, so the graph may name them, backend's own
	// proxies name backend: every culprit is one of them.
	rateRE := regexp.MustCompile(`^(backend(?:-v1|-v2)?)\.default is failing (\d+)% of requests`)
	var verdicts []string
	took := eventually(t, 90*time.Second, time.Second, "the dashboard naming backend, and only backend, as the culprit", func() error {
		vs := browsertest.Eval[[]string](b, `[...document.querySelectorAll('#verdicts p[data-culprit]')].map((p) => p.textContent)`)
		if len(vs) == 0 {
			return errors.New("no verdict")
		}
		broken := false
		for _, v := range vs {
			m := rateRE.FindStringSubmatch(v)
			if m == nil {
				return fmt.Errorf("verdict %q names another service than backend", v)
			}
			// Unbroken, backend fails 8% (5% of v1's share, 20% of v2's).
			if rate, _ := strconv.Atoi(m[2]); m[1] == "backend" && rate >= 25 {
				broken = true
			}
		}
		if !broken {
			return fmt.Errorf("verdicts %q: want backend.default's rate to be that of a broken backend (25%% or more)", vs)
		}
		culprits := 0
		for _, n := range nodes() {
			if n.Culprit && !strings.HasPrefix(n.Service, "backend") {
				return fmt.Errorf("node %s marked culprit", n.Service)
			}
			if n.Culprit {
				culprits++
			}
		}
		if culprits == 0 {
			return errors.New("no backend node marked culprit")
		}
		verdicts = vs
		return nil
	})
	t.Logf("%s after the click: %q", took.Round(time.Second), verdicts)
	if !slices.ContainsFunc(verdicts, func(v string) bool { return strings.Contains(v, "frontend.default's") }) {
		t.Errorf("verdicts %q do not say frontend's errors come from backend", verdicts)
	}
	if row := browsertest.Eval[string](b, `document.querySelector('#services tr[data-service="frontend.default"]').textContent`); !strings.Contains(row, "passes on errors from backend") {
		t.Errorf("frontend's row %q: want it to pass on errors from backend", row)
	}
	b.Screenshot("graph-backend-broken")

	b.Do("opening backend's page", chromedp.Click(chromedp.CSS(`#graph g.node[data-service="backend.default"]`)), chromedp.WaitVisible(chromedp.CSS(`#charts svg`)))
	eventually(t, 30*time.Second, time.Second, "backend's charts with at least two intervals", func() error {
		pts := browsertest.Eval[[]int](b, `[...document.querySelectorAll('#charts svg')].map((s) => s.querySelectorAll('path.series').length ? +s.dataset.points : 0)`)
		if len(pts) != 3 || slices.Min(pts) < 2 {
			return fmt.Errorf("chart points %v, want 3 charts with 2 or more", pts)
		}
		return nil
	})
	text := browsertest.Eval[string](b, `document.querySelector('main').textContent`)
	for _, want := range []string{"spiffe://cluster.local/ns/default/sa/backend", "synced", "HTTPRoute"} {
		if !strings.Contains(text, want) {
			t.Errorf("backend's page lacks %q", want)
		}
	}
	b.Screenshot("service-backend")

	b.Do("opening the proxies page", chromedp.Click(chromedp.CSS(`nav a[data-page="proxies"]`)), chromedp.WaitVisible(chromedp.CSS(`#proxies table`)))
	rows := browsertest.Eval[[]string](b, `[...document.querySelectorAll('#proxies tbody tr')].map((r) => r.textContent)`)
	if len(rows) != 5 {
		t.Errorf("proxies page rows %q, want the demo's 5 proxies", rows)
	}
	for _, r := range rows {
		if !strings.Contains(r, "synced") || !strings.Contains(r, "in 23h") {
			t.Errorf("proxy row %q: want synced, its certificate expiring in 23h", r)
		}
	}
	b.Screenshot("proxies")

	// The tap page relays the backend's proxies' live requests: the demo's
	// traffic shows up within a few seconds, with its route decisions.
	b.Do("opening the backend's tap page", chromedp.Navigate(strings.Split(link, "#")[0]+"#/tap/backend.default"), chromedp.WaitVisible(chromedp.CSS(`#tap-table`)))
	start := time.Now()
	b.WaitTrue("tapped requests in the page", `document.querySelectorAll('#tap-rows tr[data-side="server"]').length >= 3`, 10*time.Second)
	t.Logf("tap page: first requests shown %v after opening", time.Since(start))
	tapped := browsertest.Eval[[]string](b, `[...document.querySelectorAll('#tap-rows tr[data-side="server"]')].slice(0, 3).map((r) => r.textContent)`)
	for _, r := range tapped {
		if !strings.Contains(r, "frontend → backend") {
			t.Errorf("tap row %q: want a call from frontend to backend", r)
		}
	}
	b.Screenshot("tap-backend")
	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}
