package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/demo"
)

func newDemoCmd(g *globalFlags) *cobra.Command {
	var (
		keep   bool
		broken string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a whole mesh on this machine: control plane, sample services, traffic",
		Long: `Start a control plane in its own data dir, an HTTP frontend, a gRPC greeter
and two versions of a backend that sometimes fails or is slow, each under its
own sidecar, plus a load generator. Ctrl-C stops everything.

--break SERVICE makes backend or frontend fail half of its requests on its
own: weft stat, weft top and the dashboard's data API then name it as the
culprit, and its callers as passing its errors on.`,
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
			return demo.Run(cmd.Context(), demo.Options{Exe: exe, DataDir: dir, Out: cmd.OutOrStdout(), Break: broken, Logger: log})
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the demo's temporary data dir and logs after it stops")
	cmd.Flags().StringVar(&broken, "break", "", "make this service fail half of its requests: "+strings.Join(demo.BreakableServices, " or "))
	return cmd
}
