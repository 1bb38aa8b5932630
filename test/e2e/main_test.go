// Run with: go test -race -count=1 ./test/e2e/ -v
//
// Set WEFT_E2E_RACE=1 to also build the weft binary with -race (slower; a
// data race reported by any weft process then fails its test).

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// weftBin is the path of the weft binary built once by TestMain.
var weftBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: finding the module root:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "weft-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	weftBin = filepath.Join(dir, "weft")
	args := []string{"build", "-o", weftBin}
	if os.Getenv("WEFT_E2E_RACE") != "" {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/weft")
	build := exec.Command("go", args...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go %s failed: %v\n%s", strings.Join(args, " "), err, out)
		return 1
	}
	return m.Run()
}

// moduleRoot returns the directory holding weft's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod), nil
		}
	}
	abs, aerr := filepath.Abs(filepath.Join("..", ".."))
	if aerr != nil {
		return "", aerr
	}
	if _, serr := os.Stat(filepath.Join(abs, "go.mod")); serr != nil {
		return "", fmt.Errorf("go env GOMOD: %v; ../../go.mod: %w", err, serr)
	}
	return abs, nil
}
