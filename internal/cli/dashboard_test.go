package cli

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/internal/connfile"
	"weft.dev/weft/internal/control/dashboard"
)

func TestDashboardCmd(t *testing.T) {
	g, _ := apiTestControlPlaneWith(t, func(mux *http.ServeMux) {
		dashboard.New(dashboard.Options{AdminToken: apiTestToken}).Register(mux)
	})
	conn, err := connfile.Read(g.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(`^` + regexp.QuoteMeta("https://"+conn.API+"/dashboard/#login=") + `[A-Za-z0-9_-]{43}$`)
	out, _, err := apiTestRun(t, g, newDashboardCmd)
	if err != nil || !link.MatchString(strings.TrimSpace(out)) {
		t.Errorf("dashboard = %q, %v; want a login link", out, err)
	}
	out2, _, _ := apiTestRun(t, g, newDashboardCmd)
	if out2 == out {
		t.Errorf("two runs printed the same link %q", out)
	}
	out, _, err = apiTestRun(t, g, newDashboardCmd, "-o", "json", "--login-ttl", "30m")
	var j struct {
		URL     string
		Expires time.Time
	}
	if err != nil || json.Unmarshal([]byte(out), &j) != nil || !link.MatchString(j.URL) || time.Until(j.Expires) < 29*time.Minute {
		t.Errorf("dashboard -o json --login-ttl 30m = %q, %v", out, err)
	}
	if _, _, err := apiTestRun(t, g, newDashboardCmd, "--login-ttl", "3h"); err == nil || !strings.Contains(err.Error(), "ttl") {
		t.Errorf("dashboard --login-ttl 3h: %v, want the control plane's refusal", err)
	}
	t.Setenv("PATH", t.TempDir()) // no xdg-open
	if _, _, err := apiTestRun(t, g, newDashboardCmd, "--open"); err == nil || !strings.Contains(err.Error(), "no xdg-open") {
		t.Errorf("dashboard --open without xdg-open: %v", err)
	}
}
