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
	// /proc/self/exe is the running binary even if its file was replaced
	// since it started.
	if err := syscall.Exec("/proc/self/exe", os.Args, env); err != nil {
		return fmt.Errorf("re-executing with GODEBUG=%s: %w", Setting, err)
	}
	return nil
}
