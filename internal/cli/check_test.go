package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCheckCmd(t *testing.T) {
	connected := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	synced := fmt.Sprintf(`[{"id":"web-1","service":"web","namespace":"default","connected":%q,"acked":{"t.Listener":"1"}}]`, connected)
	broken := fmt.Sprintf(`[{"id":"web-1","service":"web","namespace":"default","connected":%q,"acked":{"t.Listener":"1"}},`+
		`{"id":"api-2","service":"api","namespace":"default","connected":%q,"nacked":{"type.weft.dev/weft.v1.Service":"bad route"}},`+
		`{"id":"db-3","service":"db","namespace":"default","connected":%q}]`, connected, connected, connected)
	addr := regexp.MustCompile(`https://127\.0\.0\.1:\d+`)
	tmp := regexp.MustCompile(`/[^ ]*/(\d+|dir)\b`)

	var all strings.Builder
	for _, tt := range []struct {
		name     string
		proxies  string
		setup    func(g *globalFlags)
		args     []string
		wantFail bool
	}{
		// The test CA lives one hour: near expiry.
		{name: "synced proxies", proxies: synced, wantFail: true},
		{name: "rejected and pending proxies, a readable token", proxies: broken, wantFail: true, setup: func(g *globalFlags) {
			os.Chmod(filepath.Join(g.dataDir, "admin-token"), 0o644)
		}},
		{name: "no control plane", proxies: "[]", wantFail: true, setup: func(g *globalFlags) {
			g.dataDir = filepath.Join(t.TempDir(), "dir")
		}},
		{name: "json", proxies: "[]", wantFail: true, args: []string{"-o", "json"}},
	} {
		g := statTestPlane(t, tt.proxies)
		os.Chmod(g.dataDir, 0o700)
		if tt.setup != nil {
			tt.setup(g)
		}
		out, _, err := apiTestRun(t, g, newCheckCmd, tt.args...)
		if (err != nil) != tt.wantFail {
			t.Errorf("%s: error %v, want failure %v", tt.name, err, tt.wantFail)
		}
		if err != nil && !strings.Contains(err.Error(), "checks failed") {
			t.Errorf("%s: error %v", tt.name, err)
		}
		out = tmp.ReplaceAllString(addr.ReplaceAllString(out, "https://ADDR"), "/TMP")
		all.WriteString("## " + tt.name + "\n" + out + "\n")
		if tt.name == "json" {
			var rs []checkResult
			if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != len(checkers) {
				t.Errorf("check -o json: %v, %d results", err, len(rs))
			}
		}
	}
	apiTestGolden(t, "check.txt", all.String())
}

func TestCheckClockAndCA(t *testing.T) {
	g := statTestPlane(t, "[]")
	// A clock two minutes ahead of the control plane's.
	rs := runChecks(t.Context(), g, time.Now().Add(2*time.Minute))
	byName := map[string]checkResult{}
	for _, r := range rs {
		byName[r.Name] = r
	}
	if r := byName["clock skew"]; r.OK || !strings.Contains(r.Detail, "differ by 2m") {
		t.Errorf("clock skew: %+v", r)
	}
	// Two days later the test CA has expired.
	rs = runChecks(t.Context(), g, time.Now().Add(48*time.Hour))
	for _, r := range rs {
		if r.Name == "CA valid and not near expiry" && (r.OK || !strings.Contains(r.Detail, "expired on")) {
			t.Errorf("CA: %+v", r)
		}
	}
}
