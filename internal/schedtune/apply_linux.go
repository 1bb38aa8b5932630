package schedtune

import (
	"fmt"
	"os"
	"syscall"
)

// Apply re-executes the running binary, with the same arguments, with
// Setting added to GODEBUG. It returns nil without doing anything when
// GODEBUG already sets schedtrace — after the re-exec, or when the user
// chose a value — and an error only when the exec failed, in which case
// the caller can go on untuned.
func Apply(environ []string) error {
	env := tunedEnv(environ)
	if env == nil {
		return nil
	}
	// Exec the binary by its own path: the kernel names the process after
	// the file executed, and ps should keep showing "weft", not "exe".
	// /proc/self/exe is the fallback, for a binary whose path is gone.
	path, err := os.Executable()
	if err != nil {
		path = "/proc/self/exe"
	}
	if err := syscall.Exec(path, os.Args, env); err != nil {
		return fmt.Errorf("re-executing %s with GODEBUG=%s: %w", path, Setting, err)
	}
	return nil
}
