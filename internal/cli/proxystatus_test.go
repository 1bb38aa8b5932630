package cli

import (
	"strings"
	"testing"
)

func TestProxyStatusNoProxies(t *testing.T) {
	g := statTestPlane(t, "[]")
	out, errOut, err := apiTestRun(t, g, newProxyStatusCmd)
	if err != nil || out != "" || !strings.Contains(errOut, "No proxies are connected to the control plane") {
		t.Errorf("proxy-status with no proxies: stdout %q, stderr %q, %v", out, errOut, err)
	}
}
