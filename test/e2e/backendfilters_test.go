package e2e

import (
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"
)

// canaryServed is how many requests the canary's inbound proxy has
// answered.
func canaryServed(t *testing.T, w *workload) float64 {
	t.Helper()
	ms, err := w.metrics()
	if err != nil {
		t.Fatal(err)
	}
	return sum(ms, "http_server_request_duration_seconds_count", map[string]string{"destination_service": destService("canary")})
}

// TestBackendRefFaultMirror applies the backendRef examples of the fault
// injection and mirroring pages verbatim: with an abort on the 20%
// backendRef, 20% ± 4% of 2,000 requests are aborted with fault-injected,
// the rest succeed, and the canary receives none; with a mirror on the 20%
// backendRef, the mirror receives a copy of each request the canary
// serves (within 5%), and none of the requests to the other backend.
func TestBackendRefFaultMirror(t *testing.T) {
	c := startControl(t)
	bp, cp := freePort(t), freePort(t)
	startWorkload(t, c, wlOpts{service: "backend", appPort: bp, cmd: backendCmd(bp, "v1"), waitApp: true})
	canary := startWorkload(t, c, wlOpts{service: "canary", appPort: cp, cmd: backendCmd(cp, "canary"), waitApp: true})
	shadow := startShadow(t, c)
	client := startClient(t, c, "client")

	c.apply(docYAML(t, "traffic/fault-injection.md", docMarked("fault-backendref")))
	eventually(t, 10*time.Second, 50*time.Millisecond, "the canary's share is aborted", func() error {
		os := burst(client, "http://backend/", 50, 4)
		if n, _ := countOutcomes(os, http.StatusServiceUnavailable, "fault-injected"); n == 0 {
			return fmt.Errorf("no abort in 50 requests")
		}
		return nil
	})
	const n = 2000
	before := canaryServed(t, canary)
	os := burst(client, "http://backend/", n, 16)
	aborted, err := countOutcomes(os, http.StatusServiceUnavailable, "fault-injected")
	ok, _ := countOutcomes(os, http.StatusOK, "")
	share := float64(aborted) / n
	t.Logf("backendRef fault: %d of %d aborted (%.1f%%), %d ok", aborted, n, 100*share, ok)
	if math.Abs(share-0.20) > 0.04 || aborted+ok != n {
		t.Errorf("%d aborted and %d ok of %d (first error %v), want 20%% ± 4%% aborted and the rest ok", aborted, ok, n, err)
	}
	if got := canaryServed(t, canary) - before; got != 0 {
		t.Errorf("the canary served %v requests, want 0 (its share is aborted)", got)
	}

	c.apply(docYAML(t, "traffic/mirroring.md", docMarked("mirror-backendref")))
	eventually(t, 10*time.Second, 50*time.Millisecond, "the canary's share is mirrored", func() error {
		os := burst(client, "http://backend/", 50, 4)
		if n, _ := countOutcomes(os, http.StatusOK, ""); n != len(os) || shadowServed(t, shadow) == 0 {
			return fmt.Errorf("%d of %d ok, %v mirrored", n, len(os), shadowServed(t, shadow))
		}
		return nil
	})
	canaryBefore, shadowBefore := canaryServed(t, canary), shadowServed(t, shadow)
	allOK(t, "mirrored", burst(client, "http://backend/", n, 16))
	var served, copies float64
	eventually(t, 10*time.Second, 100*time.Millisecond, "every canary request mirrored", func() error {
		served, copies = canaryServed(t, canary)-canaryBefore, shadowServed(t, shadow)-shadowBefore
		if copies < 0.95*served || copies > served {
			return fmt.Errorf("the canary served %v requests and the mirror got %v copies", served, copies)
		}
		return nil
	})
	t.Logf("backendRef mirror: canary served %v of %d, mirror got %v copies", served, n, copies)
	if share := served / n; math.Abs(share-0.20) > 0.04 {
		t.Errorf("the canary served %v of %d, want 20%% ± 4%%", served, n)
	}
}
