// Command chartcrds writes the CRDs weft installs (package crd's embedded
// files) into the Helm chart's crds directory: go generate
// ./internal/install.
package main

import (
	"fmt"
	"os"

	"weft.dev/weft/internal/install"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: chartcrds DIR")
		os.Exit(2)
	}
	if err := install.WriteChartCRDs(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "chartcrds: "+err.Error())
		os.Exit(1)
	}
}
