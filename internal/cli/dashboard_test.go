package cli

import (
	"strings"
	"testing"

	"weft.dev/weft/internal/connfile"
)

func TestDashboardCmd(t *testing.T) {
	g := statTestPlane(t, "[]")
	conn, err := connfile.Read(g.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + conn.API + "/dashboard"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, url + "\n"},
		{[]string{"-o", "json"}, "{\n  \"url\": \"" + url + "\"\n}\n"},
	} {
		out, _, err := apiTestRun(t, g, newDashboardCmd, tt.args...)
		if err != nil || out != tt.want {
			t.Errorf("dashboard %v = %q, %v; want %q", tt.args, out, err, tt.want)
		}
	}
	t.Setenv("PATH", t.TempDir()) // no xdg-open
	if _, _, err := apiTestRun(t, g, newDashboardCmd, "--open"); err == nil || !strings.Contains(err.Error(), "no xdg-open") {
		t.Errorf("dashboard --open without xdg-open: %v", err)
	}
}
