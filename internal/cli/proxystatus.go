package cli

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"weft.dev/weft/internal/control/xds"
)

func newProxyStatusCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "proxy-status",
		Short: "List the proxies connected to the control plane and their config state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(g.dataDir, g.controlAPI)
			if err != nil {
				return err
			}
			var ps []xds.ProxyStatus
			if err := c.getJSON(cmd.Context(), "/api/v1/proxies", &ps); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PROXY\tSERVICE\tINBOUND\tIDENTITY\tCONNECTED\tCONFIG")
			for _, p := range ps {
				state := "SYNCED"
				if len(p.Nacked) > 0 {
					var msgs []string
					for t, m := range p.Nacked {
						msgs = append(msgs, t[strings.LastIndex(t, ".")+1:]+": "+m)
					}
					sort.Strings(msgs)
					state = "REJECTED " + strings.Join(msgs, "; ")
				} else if len(p.Acked) == 0 {
					state = "PENDING"
				}
				addr := p.Address
				if addr == "" {
					addr = "-"
				}
				fmt.Fprintf(tw, "%s\t%s.%s\t%s\t%s\t%s ago\t%s\n", p.ID, p.Service, p.Namespace, addr, p.Identity, time.Since(p.Connected).Round(time.Second), state)
			}
			return tw.Flush()
		},
	}
}
