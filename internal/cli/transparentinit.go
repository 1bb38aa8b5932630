package cli

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/proxy/transparent"
)

func newTransparentInitCmd() *cobra.Command {
	var (
		cfg          transparent.Config
		iptables     string
		excludeCIDRs []string
	)
	cmd := &cobra.Command{
		Use:   "transparent-init --namespace NS --service NAME --proxy-uid UID --outbound-port PORT --inbound-port PORT [--app-port PORT]",
		Short: "Install a pod's transparent capture rules and exit (the weft-init container)",
		Long: `Install the iptables NAT rules of transparent interception
(docs/transparent.md) and exit, as the weft-init container of an injected
pod does before the proxy starts (docs/kubernetes/injection.md): the app's
outbound TCP, from every uid but --proxy-uid, goes to --outbound-port on
127.0.0.1, and connections to --app-port go to --inbound-port. The proxy
then runs unprivileged with --transparent --transparent-preinstalled
--transparent-port equal to --outbound-port. Rules a previous run left are
replaced. Needs CAP_NET_ADMIN.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, s := range excludeCIDRs {
				p, err := netip.ParsePrefix(s)
				if err != nil {
					return fmt.Errorf("--exclude-cidrs: %w", err)
				}
				cfg.ExcludeCIDRs = append(cfg.ExcludeCIDRs, p)
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if cfg.ProxyUID == 0 {
				return fmt.Errorf("--proxy-uid: 0 would leave every root process of the pod uncaptured; run the proxy under its own uid")
			}
			stale, err := transparent.Install(cmd.Context(), transparent.Exec{Path: iptables}, cfg)
			if err != nil {
				return err
			}
			out, in := transparent.Chains(cfg.Namespace, cfg.Service)
			fmt.Fprintf(os.Stderr, "transparent capture installed: chains %s, %s (stale rules replaced: %v)\n", out, in, stale)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.Namespace, "namespace", "", "namespace of the workload (names the chains; required)")
	fs.StringVar(&cfg.Service, "service", "", "service of the workload (names the chains; required)")
	fs.IntVar(&cfg.ProxyUID, "proxy-uid", 1337, "uid the proxy runs as: its own connections are never captured")
	fs.IntVar(&cfg.OutboundPort, "outbound-port", 15002, "port of the proxy's transparent listener on 127.0.0.1 (its --transparent-port)")
	fs.IntVar(&cfg.InboundPort, "inbound-port", 15006, "port of the proxy's mTLS inbound listener")
	fs.IntVar(&cfg.AppPort, "app-port", 0, "the app's port: connections to it go to --inbound-port (0: no inbound capture)")
	fs.IntSliceVar(&cfg.ExcludePorts, "exclude-ports", nil, "outbound destination ports never captured (comma-separated or repeated)")
	fs.StringSliceVar(&excludeCIDRs, "exclude-cidrs", nil, "outbound destination IPv4 networks never captured (comma-separated or repeated)")
	fs.StringVar(&iptables, "iptables", "iptables", "the iptables binary (iptables-nft drives nftables)")
	return cmd
}
