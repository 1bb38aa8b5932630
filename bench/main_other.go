//go:build !linux

// Command bench is weft's performance harness; it reads /proc and uses
// Linux process attributes, so it runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench: the harness runs on Linux only (it reads /proc)")
	os.Exit(2)
}
