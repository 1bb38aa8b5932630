package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// accessLine is the part of an access log line the tests read.
type accessLine struct {
	Msg         string  `json:"msg"`
	Side        string  `json:"side"`
	RequestID   string  `json:"request_id"`
	Source      string  `json:"source"`
	Destination string  `json:"destination"`
	Path        string  `json:"path"`
	Status      int     `json:"status"`
	DurationMS  float64 `json:"duration_ms"`
}

// accessLines returns the access log lines w's sidecar wrote to stdout.
func (w *workload) accessLines() []accessLine {
	stdout, _ := w.proc.output()
	var out []accessLine
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var l accessLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "access" {
			out = append(out, l)
		}
	}
	return out
}

// TestAccessLogs applies the docs' MeshConfig (mode errors): of N good and
// K failing requests exactly the K failures are logged, once by each
// side, with one request ID shared by both lines and the app; then the
// docs' Service annotation (all) logs every request to that service.
func TestAccessLogs(t *testing.T) {
	c := startControl(t)
	app := startObsApp(t)
	backend := startWorkload(t, c, wlOpts{service: "backend", appPort: app.port, cmd: []string{"sleep", "3600"}})
	client := startClient(t, c, "client")
	eventually(t, 15*time.Second, 50*time.Millisecond, "client reaches backend", func() error {
		return client.send("GET", "http://backend/warm", "", 200)
	})
	if n := len(client.accessLines()) + len(backend.accessLines()); n != 0 {
		t.Fatalf("%d access lines with access logs off, want 0", n)
	}

	c.apply(docYAML(t, "observability/access-logs.md", docMarked("mesh-errors")))
	// The mode arrives with the next push: poll with failing requests.
	eventually(t, 10*time.Second, 100*time.Millisecond, "mode errors in effect", func() error {
		if err := client.send("GET", "http://backend/fail/probe", "", 503); err != nil {
			return err
		}
		if len(client.accessLines()) == 0 {
			return fmt.Errorf("no access line yet")
		}
		return nil
	})
	const N, K = 15, 4
	for i := range N {
		if err := client.send("GET", "http://backend/ok/"+strconv.Itoa(i), "", 200); err != nil {
			t.Fatal(err)
		}
	}
	for i := range K {
		if err := client.send("GET", "http://backend/fail/"+strconv.Itoa(i), "", 503); err != nil {
			t.Fatal(err)
		}
	}
	failLines := func(w *workload, side string) map[string]accessLine {
		out := map[string]accessLine{}
		for _, l := range w.accessLines() {
			if strings.HasPrefix(l.Path, "/fail/") && l.Path != "/fail/probe" {
				if l.Side != side || l.Status != 503 || l.Source != "client.default" || l.Destination != "backend.default" {
					t.Errorf("%s line %+v", side, l)
				}
				out[l.Path] = l
			}
			if strings.HasPrefix(l.Path, "/ok/") {
				t.Errorf("mode errors logged a 200: %+v", l)
			}
		}
		return out
	}
	var cl, sl map[string]accessLine
	eventually(t, 5*time.Second, 50*time.Millisecond, "K lines on each side", func() error {
		cl, sl = failLines(client, "client"), failLines(backend, "server")
		if len(cl) != K || len(sl) != K {
			return fmt.Errorf("client %d, server %d lines for the failures, want %d each", len(cl), len(sl), K)
		}
		return nil
	})
	for path, l := range cl {
		if len(l.RequestID) != 32 {
			t.Errorf("%s: request ID %q, want 32 hex digits", path, l.RequestID)
		}
		if sl[path].RequestID != l.RequestID {
			t.Errorf("%s: client request ID %q, server %q", path, l.RequestID, sl[path].RequestID)
		}
		if got := app.requestID(path); got != l.RequestID {
			t.Errorf("%s: the app saw x-request-id %q, the log %q", path, got, l.RequestID)
		}
	}

	// A caller's own x-request-id is kept.
	if err := client.sendWithID("http://backend/fail/mine", "my-request-42", 503); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, 50*time.Millisecond, "the caller's request ID logged", func() error {
		for _, l := range backend.accessLines() {
			if l.Path == "/fail/mine" {
				if l.RequestID != "my-request-42" {
					return stopErr{fmt.Errorf("request ID %q, want the caller's", l.RequestID)}
				}
				return nil
			}
		}
		return fmt.Errorf("no line for /fail/mine")
	})

	c.apply(docYAML(t, "observability/access-logs.md", docMarked("service-all")))
	eventually(t, 10*time.Second, 100*time.Millisecond, "mode all in effect", func() error {
		if err := client.send("GET", "http://backend/ok/probe-all", "", 200); err != nil {
			return err
		}
		for _, l := range backend.accessLines() {
			if l.Path == "/ok/probe-all" && l.Status == 200 {
				return nil
			}
		}
		return fmt.Errorf("no line for a 200 yet")
	})
}

// sendWithID GETs u through w with an x-request-id and checks the status.
func (w *workload) sendWithID(u, id string, want int) error {
	r, err := w.get(u, "X-Request-Id", id)
	if err != nil {
		return err
	}
	if r.code != want {
		return fmt.Errorf("GET %s: status %d, want %d", u, r.code, want)
	}
	return nil
}
