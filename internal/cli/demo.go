package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/demo"
)

func newDemoCmd(g *globalFlags) *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a whole mesh on this machine: control plane, sample services, traffic",
		Long: `Start a control plane in its own data dir, an HTTP frontend, a gRPC greeter
and two versions of a backend that sometimes fails or is slow, each under its
own sidecar, plus a load generator. Ctrl-C stops everything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger(os.Stderr)
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding the weft binary: %w", err)
			}
			dir := g.dataDir
			if !cmd.Flags().Changed("data-dir") {
				if dir, err = os.MkdirTemp("", "weft-demo-"); err != nil {
					return err
				}
				if !keep {
					defer os.RemoveAll(dir)
				}
			}
			dir, _ = filepath.Abs(dir)
			return demo.Run(cmd.Context(), demo.Options{Exe: exe, DataDir: dir, Out: cmd.OutOrStdout(), Logger: log})
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the demo's temporary data dir and logs after it stops")
	return cmd
}
