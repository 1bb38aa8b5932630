package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/internal/proxy/observe"
	"weft.dev/weft/internal/proxy/retry"
)

// tapProc is a running `weft tap ... -o json`.
type tapProc struct{ p *proc }

func startTap(t *testing.T, name string, args ...string) *tapProc {
	t.Helper()
	return &tapProc{startProc(t, name, nil, append([]string{weftBin, "tap"}, append(args, "-o", "json")...)...)}
}

// events returns the events printed so far.
func (tp *tapProc) events(t *testing.T) []observe.Event {
	t.Helper()
	stdout, _ := tp.p.output()
	var out []observe.Event
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var e observe.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("weft tap -o json printed %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// find returns the events for path on side.
func (tp *tapProc) find(t *testing.T, side, path string) []observe.Event {
	var out []observe.Event
	for _, e := range tp.events(t) {
		if e.Side == side && e.Path == path {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent waits (up to within) for the event of path on side, failing
// the test if it takes longer.
func (tp *tapProc) waitEvent(t *testing.T, side, path string, within time.Duration) observe.Event {
	t.Helper()
	var e observe.Event
	eventually(t, within, 10*time.Millisecond, "tap event "+side+" "+path, func() error {
		if tp.p.exited() {
			_, stderr := tp.p.output()
			return stopErr{fmt.Errorf("weft tap exited: %v: %s", tp.p.err, stderr)}
		}
		if es := tp.find(t, side, path); len(es) > 0 {
			e = es[0]
			return nil
		}
		return fmt.Errorf("not yet")
	})
	return e
}

// TestTap streams requests through `weft tap -o json` from the caller's and
// the service's proxies: each appears within 1 s with its route and
// decisions; --status filters; bodies appear only once the service opted
// in, and redacted values never appear.
func TestTap(t *testing.T) {
	c := startControl(t)
	app := startObsApp(t)
	backend := startWorkload(t, c, wlOpts{service: "backend", appPort: app.port, cmd: []string{"sleep", "3600"}})
	client := startClient(t, c, "client")
	c.apply(docYAML(t, "observability/tap.md", docMarked("tap-route")))
	eventually(t, 15*time.Second, 50*time.Millisecond, "client reaches backend", func() error {
		return client.send("GET", "http://backend/warm", "", 200)
	})
	admins := []string{"--admin", addr(client.admin), "--admin", addr(backend.admin)}
	all := startTap(t, "tap-all", append([]string{"backend"}, admins...)...)
	failures := startTap(t, "tap-5xx", "backend", "--admin", addr(backend.admin), "--status", "5xx")
	// Both taps are subscribed once a probe shows up in each.
	eventually(t, 10*time.Second, 50*time.Millisecond, "taps subscribed", func() error {
		if err := client.send("GET", "http://backend/fail/probe", "", 503); err != nil {
			return err
		}
		if len(all.find(t, "server", "/fail/probe")) == 0 || len(failures.find(t, "server", "/fail/probe")) == 0 {
			return fmt.Errorf("probe not tapped yet")
		}
		return nil
	})

	const N, K = 8, 3
	var slowest time.Duration
	for i := range N + K {
		path, want := "/api/ok/"+strconv.Itoa(i), http.StatusOK
		if i >= N {
			path, want = "/fail/"+strconv.Itoa(i), http.StatusServiceUnavailable
		}
		sent := time.Now()
		if err := client.send("GET", "http://backend"+path, "", want); err != nil {
			t.Fatal(err)
		}
		ce := all.waitEvent(t, "client", path, time.Second)
		se := all.waitEvent(t, "server", path, time.Second)
		slowest = max(slowest, time.Since(sent))
		if ce.Status != want || se.Status != want || ce.Source != "client.default" || ce.Destination != "backend.default" ||
			se.SourceIdentity != client.spiffeID() || ce.RequestID == "" || ce.RequestID != se.RequestID {
			t.Errorf("%s: client event %+v, server event %+v", path, ce, se)
		}
		const wantRoute = "default/backend-api/0"
		if ce.Route != wantRoute || len(ce.Decisions) == 0 || ce.Decisions[0].Stage != "route" {
			t.Errorf("%s: route %q, decisions %v; want route %q first", path, ce.Route, ce.Decisions, wantRoute)
		}
		if ce.Bodies != nil || se.Bodies != nil {
			t.Errorf("%s: bodies without --bodies", path)
		}
	}
	t.Logf("slowest request-to-event time: %v", slowest)
	eventually(t, time.Second, 20*time.Millisecond, "the 5xx tap has the K failures", func() error {
		var got []string
		for _, e := range failures.events(t) {
			if e.Status < 500 {
				return stopErr{fmt.Errorf("--status 5xx printed a %d (%s)", e.Status, e.Path)}
			}
			if strings.HasPrefix(e.Path, "/fail/") && e.Path != "/fail/probe" {
				got = append(got, e.Path)
			}
		}
		// The server side sees every attempt: the default retry policy
		// retries a GET's 503 retry.Default.Attempts times.
		if want := K * (1 + retry.Default.Attempts); len(got) != want || len(slices.Compact(slices.Clone(got))) != K {
			return fmt.Errorf("failures tapped: %v, want %d (%d requests × %d attempts)", got, want, K, 1+retry.Default.Attempts)
		}
		return nil
	})

	// Bodies: not before the opt-in, redacted after it.
	bodies := startTap(t, "tap-bodies", "backend", "--admin", addr(backend.admin), "--bodies")
	secretReq := `{"user":"ann","password":"req-password-secret","nested":{"api_key":"req-apikey-secret"}}`
	echo := func(path string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://backend"+path, strings.NewReader(secretReq))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer req-bearer-secret")
		req.Header.Set("Cookie", "sid=req-cookie-secret")
		resp, err := client.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	eventually(t, 10*time.Second, 50*time.Millisecond, "bodies tap subscribed", func() error {
		echo("/echo/before")
		if len(bodies.find(t, "server", "/echo/before")) == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	for _, e := range bodies.find(t, "server", "/echo/before") {
		if e.Bodies != nil {
			t.Errorf("bodies shown for a service that did not opt in: %+v", e.Bodies)
		}
	}
	c.apply(docYAML(t, "observability/tap.md", docMarked("tap-bodies")))
	var withBodies observe.Event
	eventually(t, 10*time.Second, 100*time.Millisecond, "bodies after the opt-in", func() error {
		path := "/echo/after-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		echo(path)
		e := bodies.waitEvent(t, "server", path, time.Second)
		if e.Bodies == nil {
			return fmt.Errorf("no bodies yet")
		}
		withBodies = e
		return nil
	})
	b := withBodies.Bodies
	if !strings.Contains(b.Request, `"user":"ann"`) || !strings.Contains(b.Response, `"got":`) {
		t.Errorf("bodies %+v: want the request's user and the response's got", b)
	}
	if b.RequestHeaders.Get("Authorization") != "[REDACTED]" || b.ResponseHeaders.Get("Set-Cookie") != "[REDACTED]" {
		t.Errorf("headers not redacted: %v / %v", b.RequestHeaders, b.ResponseHeaders)
	}
	for _, tp := range []*tapProc{all, failures, bodies} {
		stdout, _ := tp.p.output()
		for _, secret := range []string{"req-password-secret", "req-apikey-secret", "req-bearer-secret", "req-cookie-secret", "resp-token-secret", "resp-cookie-secret"} {
			if strings.Contains(stdout, secret) {
				t.Errorf("%s printed the secret %q", tp.p.name, secret)
			}
		}
	}
}
