// Command weft is the whole weft service mesh in one binary: control plane,
// sidecar, CLI and demo. See `weft --help`.
package main

import (
	"os"

	"weft.dev/weft/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
