package authz

import (
	"strings"
	"testing"
)

// FuzzNormalizePath: NormalizePath never panics, and what it returns is
// in normal form (starts with "/", no "//", no dot segment, no "%", "\"
// nor ";"), and normalises to itself, so the path forwarded is the path
// evaluated.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/admin", "//admin", "/a/../admin", "/%2Fadmin", "/%5C..%5Cadmin", "/x/%2e%2e/admin", "/admin;x", "/admin#f", "/%252e", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizePath(in)
		if err != nil {
			return
		}
		if !strings.HasPrefix(out, "/") || strings.Contains(out, "//") || strings.Contains(out, "/./") || strings.Contains(out, "/../") ||
			strings.HasSuffix(out, "/.") || strings.HasSuffix(out, "/..") {
			t.Fatalf("NormalizePath(%q) = %q, not in normal form", in, out)
		}
		again, err := NormalizePath(out)
		if err != nil && !strings.Contains(out, "%") {
			t.Fatalf("NormalizePath(%q) = %q, which it refuses: %v", in, out, err)
		}
		if err == nil && again != out && !strings.ContainsAny(out, "%\\;#") {
			t.Fatalf("NormalizePath(%q) = %q, but NormalizePath(%q) = %q", in, out, out, again)
		}
	})
}
