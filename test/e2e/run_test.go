package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunExitAndEnv: `weft run` exits with its command's exit code, gives the
// command the proxy environment and forwards SIGTERM.
func TestRunExitAndEnv(t *testing.T) {
	c := startControl(t)

	runArgs := func(service string, outbound, admin int, cmd ...string) []string {
		args := []string{"run", "--data-dir", c.dataDir, "--service", service,
			"--outbound-port", strconv.Itoa(outbound), "--admin-port", strconv.Itoa(admin), "--"}
		return append(args, cmd...)
	}

	t.Run("exit code", func(t *testing.T) {
		for _, code := range []int{7, 0} {
			r := runWeft(t, runArgs("job", freePort(t), freePort(t), "sh", "-c", fmt.Sprintf("exit %d", code))...)
			if r.code != code {
				t.Errorf("weft run -- sh -c 'exit %d' exited %d\n%s", code, r.code, r)
			}
		}
	})

	t.Run("env", func(t *testing.T) {
		out, admin := freePort(t), freePort(t)
		r := runWeft(t, runArgs("job", out, admin, "sh", "-c", "env")...)
		if r.code != 0 {
			t.Fatalf("weft run -- env: %s", r)
		}
		env := map[string]string{}
		for _, l := range strings.Split(r.stdout, "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				env[k] = v
			}
		}
		outURL := "http://" + addr(out)
		for k, want := range map[string]string{
			"http_proxy":         outURL,
			"HTTPS_PROXY":        outURL,
			"grpc_proxy":         outURL,
			"WEFT_OUTBOUND_ADDR": addr(out),
			"WEFT_ADMIN_ADDR":    addr(admin),
		} {
			if got := env[k]; got != want && got != strings.TrimSuffix(want, "/")+"/" {
				t.Errorf("%s=%q in the command's environment, want %q", k, got, want)
			}
		}
		if _, _, err := net.SplitHostPort(env["WEFT_INBOUND_ADDR"]); err != nil {
			t.Errorf("WEFT_INBOUND_ADDR=%q: %v", env["WEFT_INBOUND_ADDR"], err)
		}
		if _, ok := env["WEFT_APP_PORT"]; ok {
			t.Errorf("WEFT_APP_PORT=%q set for a workload without --app-port", env["WEFT_APP_PORT"])
		}
		// weft restarts itself with a scheduler setting in GODEBUG
		// (internal/schedtune); the command gets the user's GODEBUG.
		if got, want := env["GODEBUG"], os.Getenv("GODEBUG"); got != want {
			t.Errorf("GODEBUG=%q in the command's environment, want the user's %q", got, want)
		}
		if v, ok := env["WEFT_USER_GODEBUG"]; ok {
			t.Errorf("WEFT_USER_GODEBUG=%q leaked into the command's environment", v)
		}
	})

	t.Run("SIGTERM forwarded", func(t *testing.T) {
		out, admin := freePort(t), freePort(t)
		script := `trap 'echo got-term; exit 42' TERM; echo started; while :; do sleep 0.1; done`
		p := startProc(t, "job-sigterm", nil, append([]string{weftBin}, runArgs("job", out, admin, "sh", "-c", script)...)...)
		eventually(t, 20*time.Second, 50*time.Millisecond, "command started", func() error {
			if p.exited() {
				return stopErr{fmt.Errorf("weft run exited early: %v", p.err)}
			}
			if o, _ := p.output(); !strings.Contains(o, "started") {
				return fmt.Errorf("no output yet")
			}
			return nil
		})
		// While the command runs, the sidecar is ready.
		if code, body, err := plainGet("http://" + addr(admin) + "/ready"); err != nil || code != 200 {
			t.Errorf("/ready while the command runs: %d %q %v", code, body, err)
		}
		// The sidecar itself runs with the scheduler setting.
		if environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.pid())); err != nil {
			t.Errorf("reading the environment of weft run: %v", err)
		} else if !strings.Contains(string(environ), "schedtrace=2147483647") {
			t.Errorf("weft run's GODEBUG lacks schedtrace=2147483647")
		}
		// and keeps its name after restarting itself with it.
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.pid())); err != nil {
			t.Errorf("reading the name of weft run: %v", err)
		} else if got, want := strings.TrimSpace(string(comm)), filepath.Base(weftBin); got != want {
			t.Errorf("weft run's process is named %q, want %q", got, want)
		}
		if err := p.signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		code, err := p.wait(15 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := p.output(); !strings.Contains(o, "got-term") {
			t.Errorf("the command did not receive SIGTERM; stdout: %q", o)
		}
		if code != 42 {
			t.Errorf("weft run exited %d after SIGTERM, want the command's 42", code)
		}
		// The sidecar stopped with the command.
		if _, _, err := plainGet("http://" + addr(admin) + "/ready"); err == nil {
			t.Errorf("the sidecar's admin port still answers after weft run exited")
		}
	})
}
