package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestStatCounts drives known traffic through real sidecars — 20 requests
// to a healthy backend, 6 to one that fails every request — and checks that
// `weft stat -o json` counts, per edge, exactly what the caller's proxy
// recorded, and the data API's service view what the callee's did.
func TestStatCounts(t *testing.T) {
	c := startControl(t, "--stats-interval", "1s")
	startBackend(t, c, "v1")
	bp := freePort(t)
	startWorkload(t, c, wlOpts{service: "broken", appPort: bp, cmd: append(backendCmd(bp, "v1"), "--fail-rate", "1"), waitApp: true})
	client := startClient(t, c, "client")
	send := func(url string, n, wantStatus int) {
		// Until the client's proxy knows the service, it answers itself.
		eventually(t, 10*time.Second, 100*time.Millisecond, url+" routable", func() error {
			r, err := client.get(url)
			if err == nil && !strings.Contains(r.body, `"service"`) {
				err = fmt.Errorf("%d %s", r.code, r.body)
			}
			return err
		})
		for range n {
			r, err := client.get(url)
			if err != nil || r.code != wantStatus {
				t.Fatalf("GET %s: %v %v, want %d", url, r.code, err, wantStatus)
			}
		}
	}
	send("http://backend/", 20, 200)
	send("http://broken/", 6, 503)

	// What the client's proxy recorded, probes included, is what the
	// control plane must count.
	ms, err := client.metrics()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]float64{}
	for _, dst := range []string{"backend.default", "broken.default"} {
		all := sum(ms, "http_client_request_duration_seconds_count", map[string]string{"destination_service": dst})
		failed := sum(ms, "http_client_request_duration_seconds_count", map[string]string{"destination_service": dst, "http_response_status_code": "503"})
		want[dst] = [2]float64{all, failed}
	}
	if want["backend.default"][0] < 20 || want["backend.default"][1] != 0 || want["broken.default"][0] < 6 || want["broken.default"][0] != want["broken.default"][1] {
		t.Fatalf("the client proxy recorded %v", want)
	}
	eventually(t, 15*time.Second, 500*time.Millisecond, "weft stat counting every request", func() error {
		r := c.cli("stat", "edges", "--from", "client", "-o", "json")
		if r.code != 0 {
			return stopErr{fmt.Errorf("%s", r)}
		}
		var s statJSON
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
			return stopErr{err}
		}
		got := map[string][2]float64{}
		for _, row := range s.Rows {
			got[row.Destination] = [2]float64{row.Requests, row.Failures}
		}
		for dst, w := range want {
			if got[dst] != w {
				return fmt.Errorf("client → %s: %v requests/failures, want %v (all rows %v)", dst, got[dst], w, got)
			}
		}
		return nil
	})

	var svc struct {
		Node struct {
			Inbound struct{ Requests, Failures float64 }
			Culprit bool
		}
		History []struct{ Requests float64 }
	}
	if err := apiGetJSON(c.dataDir, "/api/v1/stats/services/broken", &svc); err != nil {
		t.Fatal(err)
	}
	// The broken backend's own proxy saw the requests that reached it: the
	// 6 of the loop at least, all failed.
	if in := svc.Node.Inbound; in.Requests < 6 || in.Failures != in.Requests || !svc.Node.Culprit {
		t.Errorf("data API broken: inbound %+v culprit %v, want >= 6 requests, all failed, and the culprit", in, svc.Node.Culprit)
	}
	// The CLI around it, against the real control plane: every check
	// passes, both versions print, the dashboard page needs no token but
	// the data API does.
	if r := c.cli("check"); r.code != 0 || strings.Count(r.stdout, "√") != 5 {
		t.Errorf("weft check on a healthy mesh:\n%s", r)
	}
	if r := c.cli("stat", "service/broken"); r.code != 0 || !strings.Contains(r.stdout, "broken.default (culprit)") || !strings.Contains(r.stdout, "=> broken.default is failing 100% of requests; client.default's errors come from broken.default") {
		t.Errorf("weft stat service/broken:\n%s", r)
	}
	if r := c.cli("top", "--once", "client"); r.code != 0 || !strings.Contains(r.stdout, "client.default   broken.default") {
		t.Errorf("weft top --once client:\n%s", r)
	}
	if r := c.cli("version"); r.code != 0 || !strings.Contains(r.stdout, "Control plane: ") || strings.Contains(r.stdout, "unavailable") {
		t.Errorf("weft version:\n%s", r)
	}
	r := c.cli("dashboard")
	if r.code != 0 || !strings.HasPrefix(strings.TrimSpace(r.stdout), "https://"+addr(c.api)+"/dashboard/#login=") {
		t.Fatalf("weft dashboard:\n%s", r)
	}
	if code, body, err := apiGet(c.dataDir, "/dashboard/", false); err != nil || code != 200 || !strings.Contains(string(body), "<title>weft dashboard</title>") {
		t.Errorf("GET /dashboard/ without a token: %d %q %v", code, body, err)
	}
	if code, _, err := apiGet(c.dataDir, "/dashboard/api/graph", false); err != nil || code != 401 {
		t.Errorf("GET /dashboard/api/graph without a session: %d %v, want 401", code, err)
	}
	if code, _, err := apiGet(c.dataDir, "/api/v1/stats/graph", false); err != nil || code != 401 {
		t.Errorf("GET /api/v1/stats/graph without a token: %d %v, want 401", code, err)
	}

	var hist float64
	for _, p := range svc.History {
		hist += p.Requests
	}
	if hist != svc.Node.Inbound.Requests {
		t.Errorf("data API broken: history sums to %v requests, want %v", hist, svc.Node.Inbound.Requests)
	}
}
