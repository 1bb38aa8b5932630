// Package textpages releases the startup pages of the running executable's
// read-only segments (code and read-only data) from the process's page
// tables.
//
// Starting a weft binary runs the package initialisers of the whole
// command — control plane, CLI and proxy — and Linux maps the executable
// in large folios, so a freshly started sidecar holds 20+ MiB of its 47 MB
// binary in its resident set although its steady state touches a few MiB.
// Release drops those mappings once startup is over: the pages stay in the
// page cache (shared with every other weft process on the host), and the
// ones the proxy still uses fault back in without I/O on first touch. It
// never touches writable or anonymous memory.
package textpages

// Stats reports what Release did.
type Stats struct {
	// Mappings is the number of read-only executable mappings released.
	Mappings int
	// Bytes is their total size (not all of it was resident).
	Bytes uint64
}
