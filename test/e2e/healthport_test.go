package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestHealthPort checks the health port an injected pod's kubelet probes:
// the proxy's /ready, and the app's own probe (WEFT_APP_PROBES, as the
// injection webhook records it) forwarded to the app over loopback.
func TestHealthPort(t *testing.T) {
	c := startControl(t)
	app, health := freePort(t), freePort(t)
	probes := fmt.Sprintf(`{"app/readiness":{"port":%d,"path":"/"},"gone/liveness":{"port":%d,"path":"/"}}`, app, freePort(t))
	startWorkload(t, c, wlOpts{service: "backend", version: "v1", appPort: app, cmd: backendCmd(app, "v1"), waitApp: true,
		flags: []string{"--health-port", strconv.Itoa(health)}, env: []string{"WEFT_APP_PROBES=" + probes}})
	base := "http://" + addr(health)
	for _, tt := range []struct {
		path string
		want func(int) bool
		desc string
	}{
		{"/ready", func(c int) bool { return c == http.StatusOK }, "200"},
		{"/app-health/app/readiness", func(c int) bool { return c >= 200 && c < 400 }, "the app's 2xx/3xx"},
		{"/app-health/gone/liveness", func(c int) bool { return c == http.StatusBadGateway }, "502 (nothing listens)"},
		{"/app-health/other/liveness", func(c int) bool { return c == http.StatusNotFound }, "404"},
		{"/config_dump", func(c int) bool { return c == http.StatusNotFound }, "404 (admin pages stay on loopback admin)"},
	} {
		var code int
		eventually(t, 5*time.Second, 100*time.Millisecond, tt.path, func() error {
			var err error
			code, _, err = plainGet(base + tt.path)
			return err
		})
		if !tt.want(code) {
			t.Errorf("GET %s: %d, want %s", tt.path, code, tt.desc)
		}
	}
}
