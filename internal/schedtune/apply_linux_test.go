package schedtune

import (
	"fmt"
	"os"
	"os/exec"
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
		fmt.Printf("GODEBUG=%s\nsaved=%s\n", os.Getenv("GODEBUG"), os.Getenv(savedVar))
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestApplyReexecs$")
	cmd.Env = append(os.Environ(), "SCHEDTUNE_HELPER=1", "GODEBUG=madvdontneed=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	for _, want := range []string{"GODEBUG=madvdontneed=1," + Setting + "\n", "saved=set:madvdontneed=1\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("helper output lacks %q:\n%s", want, out)
		}
	}
}
