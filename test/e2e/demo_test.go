package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemo: `weft demo` brings up the whole mesh, traffic flows through the
// canary route to both backend versions, and Ctrl-C (SIGINT) stops every
// process it started.
func TestDemo(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "demo")
	p := startProc(t, "demo", nil, weftBin, "demo", "--data-dir", dataDir)
	// On failure, the logs of the demo's processes say why (they live in
	// the data dir, which the test removes).
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(dataDir, "logs", "*.log"))
		for _, f := range logs {
			b, _ := os.ReadFile(f)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("==== %s (last 4 KB)\n%s", filepath.Base(f), b)
		}
	})

	// Two report lines: the second covers 5 s of steady traffic.
	line := regexp.MustCompile(`last 5s: .*backend-v1 (\d+) calls.*backend-v2 (\d+) calls.*greeter (\d+) calls`)
	var m []string
	eventually(t, 60*time.Second, 500*time.Millisecond, "two traffic reports naming backend-v1, backend-v2 and greeter", func() error {
		if p.exited() {
			return stopErr{fmt.Errorf("demo exited: %v", p.err)}
		}
		out, _ := p.output()
		all := line.FindAllStringSubmatch(out, -1)
		if len(all) < 2 {
			return errors.New("not yet")
		}
		m = all[len(all)-1]
		return nil
	})
	v1, _ := strconv.Atoi(m[1])
	v2, _ := strconv.Atoi(m[2])
	greeter, _ := strconv.Atoi(m[3])
	if v1 == 0 || v2 == 0 || greeter == 0 {
		t.Errorf("traffic report %q: want calls to backend-v1, backend-v2 and greeter", m[0])
	}
	if v1 < v2 {
		t.Errorf("traffic report %q: the route sends 80%% to v1, yet v1 got fewer calls than v2", m[0])
	}

	// The demo's children are its process group's members and the demo's
	// own descendants; after SIGINT none may remain.
	children := descendants(p.pid())
	if len(children) < 6 {
		t.Fatalf("demo runs %d descendant processes, want at least 6 (control, 5 sidecars, apps)", len(children))
	}
	if err := p.signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code, err := p.wait(20 * time.Second)
	if err != nil {
		t.Fatalf("demo did not stop after SIGINT: %v", err)
	}
	if code != 0 {
		t.Errorf("demo exited %d after SIGINT, want 0", code)
	}
	eventually(t, 5*time.Second, 100*time.Millisecond, "no demo process left", func() error {
		var left []int
		for _, pid := range children {
			if alive(pid) {
				left = append(left, pid)
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("still running: %v", left)
		}
		return nil
	})
}

// descendants lists the PIDs whose ancestry reaches pid, from /proc.
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces) in parens.
		rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
		f := strings.Fields(rest)
		if len(f) > 1 {
			ppid, _ := strconv.Atoi(f[1])
			parent[n] = ppid
		}
	}
	var out []int
	for n := range parent {
		for a := parent[n]; a > 1; a = parent[a] {
			if a == pid {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	return !strings.HasPrefix(rest, "Z")
}
