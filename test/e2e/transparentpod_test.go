package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTransparentPod runs host A the way an injected pod in transparent
// mode runs: `weft transparent-init` installs the rules as root and exits,
// then `weft proxy --transparent --transparent-preinstalled` serves them as
// uid 1337 with no privilege, and an app running as nobody, with no proxy
// settings, reaches hello in host B over mTLS. Stopping the proxy leaves
// the rules: they are the pod's, not the proxy's.
func TestTransparentPod(t *testing.T) {
	h := newHosts(t)
	if err := os.Chmod(filepath.Dir(weftBin), 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "data")
	ctl := startProc(t, "control", nil, "ip", "netns", "exec", h.b, weftBin, "control", "--data-dir", data,
		"--listen", h.ipB+":15010", "--api-listen", h.ipB+":15011")
	eventually(t, 20*time.Second, 100*time.Millisecond, "control plane ready", func() error {
		if ctl.exited() {
			return stopErr{fmt.Errorf("control exited: %v", ctl.err)}
		}
		for _, f := range []string{"control.json", "ca.pem", "join-token"} {
			if _, err := os.Stat(filepath.Join(data, f)); err != nil {
				return err
			}
		}
		return nil
	})
	hello := startProc(t, "hello", nil, "ip", "netns", "exec", h.b, weftBin, "run", "--data-dir", data,
		"--service", "hello", "--address", h.ipB, "--inbound-port", "15006", "--admin-port", "15000", "--app-port", "8080",
		"--", weftBin, "demo-app", "backend", "--listen", "127.0.0.1:8080", "--version", "v1")
	h.waitReady(h.b, hello, 15000)

	h.hostsA = filepath.Join("/etc/netns", h.a)
	if err := os.MkdirAll(h.hostsA, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.hostsA, "hosts"), []byte("127.0.0.1 localhost\n"+h.ipB+" hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// weft-init.
	if out, err := h.exec(h.a, weftBin, "transparent-init", "--namespace", "default", "--service", "client",
		"--proxy-uid", "1337", "--outbound-port", "15002", "--inbound-port", "15006"); err != nil {
		t.Fatalf("transparent-init: %v: %s", err, out)
	}
	rules := h.nat(h.a)
	for _, want := range []string{"--uid-owner 1337 -j RETURN", "-j REDIRECT --to-ports 15002", "-A OUTPUT -p tcp -j WEFT-OUT-client-"} {
		if !strings.Contains(rules, want) {
			t.Fatalf("rules after transparent-init lack %q:\n%s", want, rules)
		}
	}

	// weft-proxy, unprivileged: what it reads must be readable by uid 1337.
	ca, err := os.ReadFile(filepath.Join(data, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(filepath.Dir(weftBin), fmt.Sprintf("ca-%d.pem", os.Getpid()))
	if err := os.WriteFile(caFile, ca, 0o644); err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(filepath.Join(data, "join-token"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProc(t, "client-proxy", []string{"WEFT_JOIN_TOKEN=" + strings.TrimSpace(string(token))},
		"ip", "netns", "exec", h.a, "setpriv", "--reuid", "1337", "--regid", "1337", "--clear-groups",
		weftBin, "proxy", "--control", h.ipB+":15010", "--ca-file", caFile, "--service", "client",
		"--inbound-port", "0", "--outbound-port", "0", "--admin-port", "15000",
		"--transparent", "--transparent-preinstalled", "--transparent-port", "15002")
	h.waitReady(h.a, proxy, 15000)

	// The app: nobody, no proxy settings.
	out, err := h.exec(h.a, "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
		"curl", "-sS", "--noproxy", "*", "--max-time", "10", "http://hello:8080/")
	if err != nil {
		t.Fatalf("the app's request: %v: %s", err, out)
	}
	var br backendReply
	if err := json.Unmarshal([]byte(out), &br); err != nil {
		t.Fatalf("reply %q: %v", out, err)
	}
	if br.Caller != spiffeID("default", "client") {
		t.Errorf("hello saw caller %q, want %q: the request did not go through the captured proxy", br.Caller, spiffeID("default", "client"))
	}

	if err := proxy.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := proxy.wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if nat := h.nat(h.a); !strings.Contains(nat, "WEFT-OUT-client-") {
		t.Errorf("the preinstalled rules were removed by the proxy:\n%s", nat)
	}
}
