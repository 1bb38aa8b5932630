package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// startShadow starts a demo backend serving service "shadow" with extra
// demo-app flags.
func startShadow(t *testing.T, c *control, flags ...string) *workload {
	t.Helper()
	p := freePort(t)
	return startWorkload(t, c, wlOpts{service: "shadow", appPort: p, cmd: append(backendCmd(p, "shadow"), flags...), waitApp: true})
}

// shadowServed is how many requests the shadow service's inbound proxy has
// answered.
func shadowServed(t *testing.T, w *workload) float64 {
	t.Helper()
	ms, err := w.metrics()
	if err != nil {
		t.Fatal(err)
	}
	return sum(ms, "http_server_request_duration_seconds_count", map[string]string{"destination_service": destService("shadow")})
}

// allOK fails the test unless every outcome is a 200.
func allOK(t *testing.T, what string, os []outcome) {
	t.Helper()
	if ok, err := countOutcomes(os, http.StatusOK, ""); ok != len(os) {
		t.Fatalf("%s: %d of %d requests ok (first error %v)", what, ok, len(os), err)
	}
}

// TestRequestMirror applies the mirroring page's examples verbatim. With the
// first, the mirror service receives >= 95% of 1,000 requests and every
// real request succeeds, and >= 95% of 100 POSTs with a 1 KiB body,
// while one with a 100 KiB body is not mirrored and counted as dropped. With the second (only requests with x-mirror: yes
// are mirrored), 500 mirrored and 500 unmirrored requests run side by side
// against a backend that takes 50 ms, so both see the same machine; with
// the mirror healthy, hanging (every answer 30 s late: 64 copies hang, the
// others are dropped and counted) and failing (every answer 503), every
// real request succeeds and the mirrored requests' p99 latency stays
// within 10% of the unmirrored ones'.
func TestRequestMirror(t *testing.T) {
	c := startControl(t)
	bp := freePort(t)
	startWorkload(t, c, wlOpts{service: "backend", appPort: bp, waitApp: true,
		cmd: append(backendCmd(bp, "v1"), "--slow-rate", "1", "--slow", "50ms")})
	shadow := startShadow(t, c)
	client := startClient(t, c, "client")

	c.apply(docYAML(t, "traffic/mirroring.md", docExample("mirror-route")))
	eventually(t, 10*time.Second, 50*time.Millisecond, "the mirror receives copies", func() error {
		if _, err := client.getBackend("http://backend/"); err != nil {
			return err
		}
		if n := shadowServed(t, shadow); n == 0 {
			return fmt.Errorf("no copy received yet")
		}
		return nil
	})

	t.Run("mirror receives the requests", func(t *testing.T) {
		before := shadowServed(t, shadow)
		const n = 1000
		allOK(t, "mirrored", burst(client, "http://backend/", n, 16))
		var got float64
		eventually(t, 10*time.Second, 100*time.Millisecond, "copies counted", func() error {
			got = shadowServed(t, shadow) - before
			if got < 0.95*n {
				return fmt.Errorf("mirror received %v of %d", got, n)
			}
			return nil
		})
		t.Logf("mirror received %v of %d requests", got, n)
	})

	t.Run("bodies", func(t *testing.T) {
		posts := func() float64 {
			ms, err := shadow.metrics()
			if err != nil {
				t.Fatal(err)
			}
			return sum(ms, "http_server_request_duration_seconds_count", map[string]string{"destination_service": destService("shadow"), "http_request_method": "POST"})
		}
		dropped := func() float64 {
			ms, err := client.metrics()
			if err != nil {
				t.Fatal(err)
			}
			return sum(ms, "weft_proxy_mirror_requests_total", map[string]string{"destination_service": "shadow.default", "outcome": "dropped"})
		}
		post := func(size int) {
			resp, err := client.client.Post("http://backend/", "text/plain", strings.NewReader(strings.Repeat("x", size)))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST of %d bytes: %d", size, resp.StatusCode)
			}
		}
		before, droppedBefore := posts(), dropped()
		const n = 100
		for range n {
			post(1024)
		}
		eventually(t, 10*time.Second, 100*time.Millisecond, "small bodies mirrored", func() error {
			if got := posts() - before; got < 0.95*n {
				return fmt.Errorf("mirror received %v of %d POSTs with a 1 KiB body", got, n)
			}
			return nil
		})
		post(100 << 10)
		if got := dropped() - droppedBefore; got != 1 {
			t.Errorf("a POST with a 100 KiB body: %v copies dropped, want 1", got)
		}
	})

	c.apply(docYAML(t, "traffic/mirroring.md", docMarked("mirror-tagged")))
	eventually(t, 10*time.Second, 50*time.Millisecond, "only tagged requests are mirrored", func() error {
		before := shadowServed(t, shadow)
		allOK(t, "untagged", burst(client, "http://backend/", 20, 4))
		time.Sleep(100 * time.Millisecond) // copies in flight land
		if n := shadowServed(t, shadow) - before; n != 0 {
			return fmt.Errorf("%v of 20 untagged requests mirrored", n)
		}
		return nil
	})

	compare := func(t *testing.T, what string) {
		t.Helper()
		// The p99 of 500 requests on a shared 2-core machine moves by
		// more than 10% between two identical bursts now and then, so a
		// round that misses is run again, up to three: a mirror that
		// really delays the primary misses every round.
		var pm, pp, limit time.Duration
		for round := 1; round <= 3; round++ {
			var mirrored, plain []outcome
			var wg sync.WaitGroup
			wg.Go(func() { mirrored = burst(client, "http://backend/", 500, 8, "x-mirror", "yes") })
			wg.Go(func() { plain = burst(client, "http://backend/", 500, 8) })
			wg.Wait()
			allOK(t, what+", mirrored", mirrored)
			allOK(t, what+", not mirrored", plain)
			pm, pp = percentile(mirrored, 99), percentile(plain, 99)
			t.Logf("%s, round %d: mirrored p50 %s p99 %s; not mirrored p50 %s p99 %s", what, round, percentile(mirrored, 50), pm, percentile(plain, 50), pp)
			if limit = pp + pp/10; pm < limit {
				return
			}
		}
		t.Errorf("%s: mirrored requests' p99 %s, want < %s (unmirrored p99 %s + 10%%) in one of 3 rounds", what, pm, limit, pp)
	}
	t.Run("healthy mirror", func(t *testing.T) { compare(t, "healthy mirror") })
	t.Run("hanging mirror", func(t *testing.T) {
		shadow.proc.stop(5 * time.Second)
		shadow = startShadow(t, c, "--slow-rate", "1", "--slow", "30s")
		eventually(t, 15*time.Second, 100*time.Millisecond, "copies reach the hanging mirror", func() error {
			// 64 copies hang; the next are dropped.
			allOK(t, "tagged", burst(client, "http://backend/", 100, 16, "x-mirror", "yes"))
			ms, err := client.metrics()
			if err != nil {
				return err
			}
			if d := sum(ms, "weft_proxy_mirror_requests_total", map[string]string{"destination_service": "shadow.default", "outcome": "dropped"}); d == 0 {
				return fmt.Errorf("no copy dropped yet: %s", describe(ms, "weft_proxy_mirror_requests_total"))
			}
			return nil
		})
		compare(t, "hanging mirror")
	})
	t.Run("failing mirror", func(t *testing.T) {
		shadow.proc.stop(5 * time.Second)
		shadow = startShadow(t, c, "--fail-rate", "1")
		eventually(t, 20*time.Second, 100*time.Millisecond, "copies reach the failing mirror", func() error {
			allOK(t, "tagged", burst(client, "http://backend/", 10, 4, "x-mirror", "yes"))
			if n := shadowServed(t, shadow); n == 0 {
				return fmt.Errorf("no copy received yet")
			}
			return nil
		})
		compare(t, "failing mirror")
	})
}
