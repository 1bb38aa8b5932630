package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// statJSON is the part of `weft stat -o json` and of the data API's graph
// the tests read.
type statJSON struct {
	Rows []struct {
		Service, Source, Destination, Route string
		Requests, Failures                  float64
		Culprit                             bool
	} `json:"rows"`
	Nodes []struct {
		Service string `json:"service"`
		Culprit bool   `json:"culprit"`
	} `json:"nodes"`
	Verdicts []struct {
		Culprit string   `json:"culprit"`
		Callers []string `json:"callers"`
		Text    string   `json:"text"`
	} `json:"verdicts"`
}

// culprits lists the services the verdicts name.
func (s statJSON) culprits() []string {
	var out []string
	for _, v := range s.Verdicts {
		out = append(out, v.Culprit)
	}
	return out
}

// apiGet GETs path from the control plane API of dataDir (found through
// its control.json, verified with its ca.pem), with its admin token if
// withToken.
func apiGet(dataDir, path string, withToken bool) (int, []byte, error) {
	var conn struct{ API string }
	b, err := os.ReadFile(filepath.Join(dataDir, "control.json"))
	if err != nil {
		return 0, nil, err
	}
	if err := json.Unmarshal(b, &conn); err != nil {
		return 0, nil, err
	}
	bundle, err := os.ReadFile(filepath.Join(dataDir, "ca.pem"))
	if err != nil {
		return 0, nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(bundle)
	tr := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "weft-control"}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, "https://"+conn.API+path, nil)
	if withToken {
		token, err := os.ReadFile(filepath.Join(dataDir, "admin-token"))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: tr}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// apiGetJSON GETs path with the admin token and decodes the JSON answer.
func apiGetJSON(dataDir, path string, out any) error {
	code, body, err := apiGet(dataDir, path, true)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, code, body)
	}
	return json.Unmarshal(body, out)
}

// TestCulprit: `weft demo --break backend` makes the backend fail half of
// its requests; within 30 s of the demo being up, `weft stat -o json` and
// the data API name backend as the culprit, and not frontend, whose
// errors come from it.
func TestCulprit(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "demo")
	p := startProc(t, "demo", nil, weftBin, "demo", "--break", "backend", "--data-dir", dataDir)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(dataDir, "logs", "*.log"))
			for _, f := range logs {
				b, _ := os.ReadFile(f)
				if len(b) > 3000 {
					b = b[len(b)-3000:]
				}
				t.Logf("==== %s (last 3 KB)\n%s", filepath.Base(f), b)
			}
		}
		_ = p.signal(syscall.SIGINT)
		_, _ = p.wait(20 * time.Second)
	})
	eventually(t, 90*time.Second, 250*time.Millisecond, "the demo running", func() error {
		if p.exited() {
			return stopErr{fmt.Errorf("demo exited: %v", p.err)}
		}
		if out, _ := p.output(); !strings.Contains(out, "Press Ctrl-C") {
			return errors.New("not yet")
		}
		return nil
	})
	out, _ := p.output()
	if !strings.Contains(out, "--break backend: backend fails half of its requests") {
		t.Errorf("the demo does not say what --break did:\n%s", out)
	}

	check := func(what string, s statJSON) error {
		if got := s.culprits(); !slices.Equal(got, []string{"backend.default"}) {
			return fmt.Errorf("%s names %v as culprits, want [backend.default]: %+v", what, got, s.Verdicts)
		}
		// The backend can be named before enough of frontend's failed
		// calls are in the window to tie them to it: wait for both.
		if v := s.Verdicts[0]; !slices.Contains(v.Callers, "frontend.default") || !strings.Contains(v.Text, "frontend.default's") {
			return fmt.Errorf("%s: verdict %+v does not say frontend's errors come from backend", what, v)
		}
		return nil
	}
	var stat statJSON
	took := eventually(t, 30*time.Second, time.Second, "weft stat naming backend", func() error {
		r := runWeft(t, "stat", "-o", "json", "--data-dir", dataDir)
		if r.code != 0 {
			return fmt.Errorf("%s", r)
		}
		stat = statJSON{}
		if err := json.Unmarshal([]byte(r.stdout), &stat); err != nil {
			return stopErr{fmt.Errorf("weft stat -o json: %w\n%s", err, r.stdout)}
		}
		return check("weft stat", stat)
	})
	t.Logf("weft stat named the culprit %s after the demo was up: %s", took.Round(time.Second), stat.Verdicts[0].Text)
	for _, r := range stat.Rows {
		if r.Service == "frontend.default" && (r.Culprit || r.Failures == 0) {
			t.Errorf("frontend row %+v: want failures passed on, not a culprit", r)
		}
	}

	var graph statJSON
	if err := apiGetJSON(dataDir, "/api/v1/stats/graph?window=1m", &graph); err != nil {
		t.Fatal(err)
	}
	if err := check("GET /api/v1/stats/graph", graph); err != nil {
		t.Error(err)
	}
	for _, n := range graph.Nodes {
		if n.Culprit != (n.Service == "backend.default") {
			t.Errorf("graph node %s: culprit = %v", n.Service, n.Culprit)
		}
	}
}
