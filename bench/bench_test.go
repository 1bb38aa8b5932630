//go:build linux

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSmoke runs both suites at smoke size so the harness cannot rot: the
// data plane for ~2 s per variant and protocol mode (direct and weft always;
// nginx, HAProxy and Caddy when installed, skipped otherwise), the control
// plane with 20 proxies. It asserts only that the runs complete and produce
// numbers, never timings.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds weft and runs real processes")
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "weft")
	build := exec.Command("go", "build", "-o", bin, "./cmd/weft")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/weft: %v\n%s", err, out)
	}
	results := filepath.Join(t.TempDir(), "RESULTS.md")
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"-suite", "all", "-smoke", "-weft", bin, "-out", results}, &stdout, &stderr)
	t.Logf("harness log:\n%s", stderr.String())
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	b, err := os.ReadFile(results)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{"## Data plane", "## Control plane", "| direct |", "| weft |", "| 20 |"} {
		if !strings.Contains(text, want) {
			t.Errorf("results lack %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "skipped weft") || strings.Contains(text, "skipped direct") {
		t.Errorf("a required variant was skipped:\n%s", text)
	}
}
