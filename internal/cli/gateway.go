package cli

import (
	"fmt"
	"net"
	"os"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/proxy/sidecar"
	"weft.dev/weft/internal/schedtune"
)

func newGatewayCmd(g *globalFlags) *cobra.Command {
	f := &sidecarFlags{}
	var name, listen string
	cmd := &cobra.Command{
		Use:   "gateway --name NAME [--namespace NS]",
		Short: "Run an ingress gateway: the proxy of the Gateway resource NAME",
		Long: `Run an ingress gateway: a mesh workload of service NAME with its own SPIFFE
identity (join token scoped to NAME, as for weft run), which listens where
the listeners of the Gateway NAME (gateway.networking.k8s.io/v1, in
--namespace) say and forwards what their attached HTTPRoutes and GRPCRoutes
match to mesh services over mTLS. See docs/gateways.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger(os.Stderr)
			if err != nil {
				return err
			}
			if name == "" {
				return fmt.Errorf("--name is required")
			}
			if listen != "" && net.ParseIP(listen) == nil {
				return fmt.Errorf("--listen-address: %q is not an IP address", listen)
			}
			f.service = name
			opts, err := f.options(g)
			if err != nil {
				return err
			}
			opts.Gateway = &sidecar.GatewayOptions{Address: listen}
			if err := schedtune.Apply(os.Environ()); err != nil {
				log.Warn("running without the scheduler setting", "err", err)
			}
			opts.Logger = log.With("component", "gateway", "gateway", name)
			return sidecar.Run(cmd.Context(), opts)
		},
	}
	f.register(cmd.Flags(), [3]int{0, 0, 15021})
	cmd.Flags().StringVar(&name, "name", "", "name of the Gateway this proxy serves, and of its workload's service (required)")
	cmd.Flags().StringVar(&listen, "listen-address", "0.0.0.0", "host the Gateway's listeners bind")
	for _, hidden := range []string{"service", "app-port", "app-protocol"} {
		_ = cmd.Flags().MarkHidden(hidden)
	}
	return cmd
}
