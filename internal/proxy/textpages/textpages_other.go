//go:build !linux

package textpages

// Release does nothing outside Linux.
func Release() (Stats, error) { return Stats{}, nil }
