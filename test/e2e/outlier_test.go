package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

// outlierCounts reads the client's ejections counter and ejected-endpoints
// gauge for service backend.
func outlierCounts(t *testing.T, client *workload) (ejections, ejected float64) {
	t.Helper()
	ms, err := client.metrics()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"destination_service": destService("backend")}
	return sum(ms, "weft_proxy_outlier_ejections_total", want), sum(ms, "weft_proxy_outlier_ejected_endpoints", want)
}

// callVersion sends one request to backend through client and returns the
// answering version and status; weft-generated answers (not a demo
// backend's JSON) fail the test.
func callVersion(t *testing.T, client *workload) (string, int) {
	t.Helper()
	r, err := client.get("http://backend/")
	if err != nil {
		t.Fatal(err)
	}
	var br backendReply
	if err := json.Unmarshal([]byte(r.body), &br); err != nil || br.Version == "" {
		t.Fatalf("status %d %.200q is not a backend's reply", r.code, r.body)
	}
	return br.Version, r.code
}

// TestOutlierEjection (issue #9 item 4): with the policy of
// docs/traffic/outlier-detection.md (3 gateway errors, 2 s base ejection),
// an endpoint failing every request is ejected (metric), traffic stops
// reaching it while it is, and once it recovers it gets traffic again.
func TestOutlierEjection(t *testing.T) {
	c := startControl(t)
	startBackend(t, c, "v1")
	startBackend(t, c, "v2")
	bad := startBackendArgs(t, c, "bad", "--fail-rate", "1", "--fail-for", "8s")
	// The policy first: the default detection would eject the failing
	// endpoint for 30 s.
	c.apply(docYAML(t, "traffic/outlier-detection.md", docMarked("outlier")))
	client := startClient(t, c, "client")
	eventually(t, 10*time.Second, 100*time.Millisecond, "policy in effect", func() error {
		d, err := client.configDump()
		if err != nil {
			return err
		}
		var dump struct {
			XDS struct {
				Services map[string]struct {
					OD struct {
						Gateway int `json:"consecutive_gateway_errors"`
					} `json:"outlier_detection"`
				} `json:"services"`
			} `json:"xds"`
		}
		if err := json.Unmarshal([]byte(d), &dump); err != nil {
			return stopErr{err}
		}
		if got := dump.XDS.Services["backend.default"].OD.Gateway; got != 3 {
			return fmt.Errorf("consecutive_gateway_errors %d, want 3", got)
		}
		return nil
	})

	// Until the first ejection.
	eventually(t, 10*time.Second, 0, "bad endpoint ejected", func() error {
		for range 10 {
			callVersion(t, client)
		}
		if n, _ := outlierCounts(t, client); n < 1 {
			return fmt.Errorf("no ejection yet")
		}
		return nil
	})
	if _, g := outlierCounts(t, client); g != 1 {
		t.Errorf("ejected endpoints gauge %v, want 1", g)
	}
	if d, err := client.configDump(); err != nil {
		t.Error(err)
	} else {
		var dump struct {
			Ejected map[string][]string `json:"ejectedEndpoints"`
		}
		if err := json.Unmarshal([]byte(d), &dump); err != nil || !slices.Equal(dump.Ejected["backend.default"], []string{addr(bad.inbound)}) {
			t.Errorf("config dump ejectedEndpoints %v (%v), want backend.default: [%s]", dump.Ejected, err, addr(bad.inbound))
		}
	}
	// While it is ejected (2 s), traffic does not reach it.
	counts := map[string]int{}
	start := time.Now()
	for time.Since(start) < time.Second {
		v, _ := callVersion(t, client)
		counts[v]++
	}
	t.Logf("during the first ejection: %v", counts)
	if counts["bad"] > 0 {
		t.Errorf("the ejected endpoint got %d requests during its ejection", counts["bad"])
	}
	// It recovers (8 s after start) and returns when its ejection ends.
	took := eventually(t, 20*time.Second, 0, "recovered endpoint back", func() error {
		if v, code := callVersion(t, client); v != "bad" || code != http.StatusOK {
			return fmt.Errorf("%s answered %d", v, code)
		}
		return nil
	})
	n, _ := outlierCounts(t, client)
	t.Logf("recovered endpoint answered 200 again %v later, after %v ejections", took.Round(time.Millisecond), n)
}

// TestOutlierMaxShare (issue #9 items 4, 5): with no policy at all (the
// defaults: 5 gateway errors, at most 50% ejected) and both endpoints
// failing every request, one is ejected, never both: every request still
// reaches a backend.
func TestOutlierMaxShare(t *testing.T) {
	c := startControl(t)
	startBackendArgs(t, c, "a", "--fail-rate", "1")
	startBackendArgs(t, c, "b", "--fail-rate", "1")
	client := startClient(t, c, "client")
	eventually(t, 10*time.Second, 10*time.Millisecond, "both endpoints reached", func() error {
		seen := map[string]bool{}
		for range 20 {
			v, _ := callVersion(t, client)
			seen[v] = true
		}
		if len(seen) < 2 {
			return fmt.Errorf("reached %v", seen)
		}
		return nil
	})
	counts := map[string]int{}
	for i := range 300 {
		v, code := callVersion(t, client)
		if code != http.StatusServiceUnavailable {
			t.Fatalf("request %d: status %d, want the backend's 503", i, code)
		}
		counts[v]++
		if i%50 == 49 {
			if _, g := outlierCounts(t, client); g > 1 {
				t.Fatalf("after %d requests %v endpoints of 2 ejected, want at most 1", i+1, g)
			}
		}
	}
	n, g := outlierCounts(t, client)
	t.Logf("300 requests: %v; %v ejections, %v ejected now", counts, n, g)
	if n < 1 || g != 1 {
		t.Errorf("ejections %v, ejected now %v: want one endpoint ejected by the default detection", n, g)
	}
}
