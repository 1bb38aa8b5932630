package schedtune

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestApplyReexecs runs this test binary as a child that calls Apply: the
// child re-executes itself once and then reports the environment it runs
// with.
func TestApplyReexecs(t *testing.T) {
	if os.Getenv("SCHEDTUNE_HELPER") == "1" {
		if err := Apply(os.Environ()); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		comm, _ := os.ReadFile("/proc/self/comm")
		fmt.Printf("GODEBUG=%s\nsaved=%s\ncomm=%s", os.Getenv("GODEBUG"), os.Getenv(savedVar), comm)
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestApplyReexecs$")
	cmd.Env = append(os.Environ(), "SCHEDTUNE_HELPER=1", "GODEBUG=madvdontneed=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	// The process keeps its name: the kernel names it after the file
	// executed (at most 15 bytes of it).
	name := filepath.Base(os.Args[0])
	if len(name) > 15 {
		name = name[:15]
	}
	for _, want := range []string{"GODEBUG=madvdontneed=1," + Setting + "\n", "saved=set:madvdontneed=1\n", "comm=" + name + "\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("helper output lacks %q:\n%s", want, out)
		}
	}
}
