// Package schedtune starts long-running proxy processes with a Go runtime
// setting that removes most of the runtime's own CPU cost at moderate load.
//
// The Go runtime's monitor thread (sysmon) goes into a deep sleep whenever
// every P is idle, and the next system call wakes it up again; once awake it
// polls every 20 µs for about a millisecond before it backs off. A proxy at
// 1,000 requests/s is idle between requests, so every request woke sysmon
// and paid for a dozen context switches: profiles of the sidecar under the
// benchmark's open-loop load showed sysmon at 30% of the proxy's CPU time.
// With GODEBUG=schedtrace set to a positive value sysmon never deep-sleeps:
// it backs off to polling every 10 ms and stays there. The value chosen is
// the largest the runtime accepts (2147483647 ms, 24.8 days), so the
// scheduler trace it enables is printed at most once every 24.8 days (and
// once at start on a host that has been up longer than that).
//
// GODEBUG is read once, when the process starts, so Apply re-executes the
// binary with the setting added. A user who sets schedtrace in GODEBUG
// (schedtrace=0 turns this off) is left alone.
package schedtune

import "strings"

const (
	// Setting is the GODEBUG entry Apply adds.
	Setting = "schedtrace=2147483647"
	// savedVar keeps the user's GODEBUG (possibly empty) while Setting is
	// added, so the apps weft starts get the user's value back.
	savedVar = "WEFT_USER_GODEBUG"
)

// tunedEnv returns environ with Setting added to GODEBUG, or nil when
// GODEBUG already sets schedtrace.
func tunedEnv(environ []string) []string {
	user, had := lookup(environ, "GODEBUG")
	for _, kv := range strings.Split(user, ",") {
		if strings.HasPrefix(strings.TrimSpace(kv), "schedtrace=") {
			return nil
		}
	}
	out := make([]string, 0, len(environ)+2)
	for _, e := range environ {
		if !strings.HasPrefix(e, "GODEBUG=") && !strings.HasPrefix(e, savedVar+"=") {
			out = append(out, e)
		}
	}
	godebug := Setting
	if user != "" {
		godebug = user + "," + Setting
	}
	saved := "unset"
	if had {
		saved = "set:" + user
	}
	return append(out, "GODEBUG="+godebug, savedVar+"="+saved)
}

// AppEnv returns environ with GODEBUG as the user had it before Apply: the
// environment for processes weft starts on the user's behalf.
func AppEnv(environ []string) []string {
	saved, ok := lookup(environ, savedVar)
	if !ok {
		return environ
	}
	out := make([]string, 0, len(environ))
	for _, e := range environ {
		if !strings.HasPrefix(e, "GODEBUG=") && !strings.HasPrefix(e, savedVar+"=") {
			out = append(out, e)
		}
	}
	if rest, had := strings.CutPrefix(saved, "set:"); had {
		out = append(out, "GODEBUG="+rest)
	}
	return out
}

// lookup returns the value of key in environ; the last entry wins.
func lookup(environ []string, key string) (string, bool) {
	var (
		val   string
		found bool
	)
	for _, e := range environ {
		if v, ok := strings.CutPrefix(e, key+"="); ok {
			val, found = v, true
		}
	}
	return val, found
}
