package cli

import (
	"os"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/proxy/sidecar"
	"weft.dev/weft/internal/schedtune"
)

func newProxyCmd(g *globalFlags) *cobra.Command {
	f := &sidecarFlags{}
	cmd := &cobra.Command{
		Use:   "proxy --service NAME [--app-port PORT]",
		Short: "Run only the sidecar proxy of a workload (for systemd units and pods)",
		Long: `Run only the sidecar proxy of a workload; the app is started separately.

On SIGTERM or SIGINT the proxy drains before it exits: it leaves the mesh,
answers with Connection: close (HTTP/2: GOAWAY), and waits until peers have
stopped sending (--drain-quiet without a request, at most --drain-timeout)
and its requests in flight are answered. Stop the app after the proxy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger(os.Stderr)
			if err != nil {
				return err
			}
			opts, err := f.options(g)
			if err != nil {
				return err
			}
			// Restart with the Go scheduler setting that keeps the
			// runtime's own CPU cost low (see internal/schedtune).
			if err := schedtune.Apply(os.Environ()); err != nil {
				log.Warn("running without the scheduler setting", "err", err)
			}
			opts.Logger = log.With("component", "proxy", "service", f.service)
			return sidecar.Run(cmd.Context(), opts)
		},
	}
	f.register(cmd.Flags(), [3]int{15006, 15001, 15020})
	return cmd
}
