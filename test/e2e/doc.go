// Package e2e holds weft's end-to-end tests: they build the weft binary once
// and start real control planes, sidecars and sample services on loopback.
package e2e
