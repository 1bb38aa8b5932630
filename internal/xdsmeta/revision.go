package xdsmeta

import (
	"strconv"
	"strings"
)

// FormatVersion is the system version of an xDS response built from the
// configuration at store revision rev: "r<rev>-<n>", where n is the
// version of the control plane's resource cache (it changes with every
// update, including the ones that only move endpoints).
func FormatVersion(rev, n uint64) string {
	return "r" + strconv.FormatUint(rev, 10) + "-" + strconv.FormatUint(n, 10)
}

// ParseVersion returns the store revision a FormatVersion names; ok is
// false for any other version string.
func ParseVersion(v string) (rev uint64, ok bool) {
	rest, found := strings.CutPrefix(v, "r")
	if !found {
		return 0, false
	}
	revStr, n, found := strings.Cut(rest, "-")
	if !found {
		return 0, false
	}
	if _, err := strconv.ParseUint(n, 10, 64); err != nil {
		return 0, false
	}
	rev, err := strconv.ParseUint(revStr, 10, 64)
	return rev, err == nil
}
